"""Owns loading the dlib models once, only those the configured pipeline uses."""

from __future__ import annotations

import importlib.util
import logging
import threading
from functools import cache
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SHAPE_5 = "shape_predictor_5_face_landmarks.dat"
ENCODER = "dlib_face_recognition_resnet_model_v1.dat"

_lock = threading.Lock()


class ModelError(RuntimeError):
    """A dlib model file is missing or unreadable."""


@cache
def models_dir() -> Path:
    """Folder of face_recognition_models' .dat files, found without importing the package.

    (Importing it pulls in pkg_resources, which costs memory and a deprecation warning.)
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("package face_recognition_models is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def model_path(name: str) -> Path:
    path = models_dir() / name
    if not path.is_file():
        raise ModelError(f"dlib model file {path} is missing")
    return path


class _Serialised:
    """A dlib callable that one thread at a time may run. dlib's HOG detector keeps the
    image it scans in itself and releases the GIL while scanning: two threads in it at once
    (the door's watcher and an enrollment on the admin page, say) got each other's boxes, or
    none (measured: 114 of 300 concurrent calls returned wrong boxes)."""

    def __init__(self, fn: Any) -> None:
        self._fn = fn
        self._lock = threading.Lock()

    def __call__(self, *args: Any) -> Any:
        with self._lock:
            return self._fn(*args)


class Models:
    """Lazily loaded dlib objects; each is built at most once per instance (thread-safe)."""

    def __init__(self) -> None:
        self._detector: Any = None
        self._shape5: Any = None
        self._encoder: Any = None

    @property
    def detector(self) -> Any:
        if self._detector is None:
            with _lock:
                if self._detector is None:
                    import dlib

                    self._detector = _Serialised(dlib.get_frontal_face_detector())
        return self._detector

    @property
    def shape5(self) -> Any:
        if self._shape5 is None:
            with _lock:
                if self._shape5 is None:
                    import dlib

                    self._shape5 = dlib.shape_predictor(str(model_path(SHAPE_5)))
                    log.info("event=model_loaded model=shape5")
        return self._shape5

    @property
    def encoder(self) -> Any:
        """dlib's face-recognition ResNet, run by numpy (resnet.py) from dlib's model file."""
        if self._encoder is None:
            with _lock:
                if self._encoder is None:
                    from .resnet import ResNetEncoder, ResNetFileError

                    path = model_path(ENCODER)
                    try:
                        self._encoder = ResNetEncoder(path)
                    except ResNetFileError as exc:
                        raise ModelError(f"dlib model file {path}: {exc}") from exc
                    log.info("event=model_loaded model=resnet_encoder")
        return self._encoder

    @property
    def loaded(self) -> list[str]:
        names = ("detector", "shape5", "encoder")
        return [n for n in names if getattr(self, f"_{n}") is not None]


@cache
def shared_models() -> Models:
    """One set of models per process (dlib objects are read-only once loaded)."""
    return Models()
