"""Presentation attacks for the liveness figures: a still photo, a hand-held print, and a
real clip replayed on a simulated phone screen (moiré from the screen's pixel grid, glare,
brightness clipping, refresh banding). Every parameter is drawn per presentation from a
seeded generator, within the ranges stated here."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

DOOR_FPS = 10.0  # the door camera's default rate (camera.fps)


def clip_frames(path: Path, fps: float = DOOR_FPS, limit: int | None = None) -> list[np.ndarray]:
    """RGB frames of a video, taken at about `fps` (every k-th frame of the file)."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise RuntimeError(f"cannot open video {path}")
    src_fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    step = max(1, round(src_fps / fps))
    out: list[np.ndarray] = []
    i = 0
    while limit is None or len(out) < limit:
        ok, bgr = cap.read()
        if not ok:
            break
        if i % step == 0:
            out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        i += 1
    cap.release()
    return out


def still(img: np.ndarray, n: int) -> list[np.ndarray]:
    """A photo held perfectly still: the same frame n times."""
    return [img] * n


def handheld(img: np.ndarray, n: int, seed: int) -> list[np.ndarray]:
    """A printed photo held in a hand: per frame a random shift (sd 5 px), rotation (sd 2
    deg), scale (sd 2 %), a slight perspective tilt (sd 1.5 % of the side) and sensor noise
    (sd 3)."""
    rng = np.random.default_rng(seed)
    h, w = img.shape[:2]
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    frames = []
    for _ in range(n):
        m = cv2.getRotationMatrix2D(
            (w / 2 + rng.normal(0, 5), h / 2 + rng.normal(0, 5)),
            rng.normal(0, 2.0),
            1.0 + rng.normal(0, 0.02),
        )
        moved = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
        dst = (src + rng.normal(0, 0.015 * min(w, h), src.shape)).astype(np.float32)
        moved = cv2.warpPerspective(
            moved, cv2.getPerspectiveTransform(src, dst), (w, h), borderMode=cv2.BORDER_REPLICATE
        )
        noisy = moved.astype(np.float32) + rng.normal(0, 3.0, moved.shape)
        frames.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return frames


@dataclass(frozen=True)
class Screen:
    """One simulated phone screen filmed by the door camera."""

    angle: float  # degrees the phone is turned against the camera's rows
    scale: float  # video pixels per camera pixel (how large the replayed face appears)
    panel: float  # screen (panel) pixels per camera pixel: the beat of the two grids = moiré
    gain: float  # display brightness x camera exposure (> 1 clips the highlights)
    glare_xy: tuple[float, float]  # glare centre, fraction of the frame
    glare_r: float  # glare radius, fraction of the frame's width
    glare_amp: float  # glare strength (grey levels at its centre)
    band_period: float  # refresh band period, fraction of the frame height
    band_depth: float  # refresh band depth (fraction of brightness)
    band_speed: float  # band phase advance per frame (periods)
    moire: bool = True
    glare: bool = True
    clip: bool = True
    banding: bool = True

    @staticmethod
    def draw(rng: np.random.Generator, **only: bool) -> Screen:
        return Screen(
            angle=float(rng.uniform(-6, 6)),
            scale=float(rng.uniform(0.95, 1.08)),
            panel=float(rng.uniform(1.6, 2.8)),
            gain=float(rng.uniform(1.1, 1.35)),
            glare_xy=(float(rng.uniform(0.25, 0.75)), float(rng.uniform(0.2, 0.6))),
            glare_r=float(rng.uniform(0.12, 0.3)),
            glare_amp=float(rng.uniform(40, 110)),
            band_period=float(rng.uniform(0.08, 0.3)),
            band_depth=float(rng.uniform(0.06, 0.15)),
            band_speed=float(rng.uniform(0.1, 0.4)),
            **only,
        )


def _mask(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Brightness of each colour channel at panel coordinates (u, v): every panel pixel is
    three vertical R, G, B stripes with a dark gap below; mean brightness kept at 1."""
    sub = np.floor(3.0 * (u - np.floor(u))).astype(np.int8)
    row = np.where(v - np.floor(v) > 0.75, 0.35, 1.0).astype(np.float32)
    out = np.full(u.shape + (3,), 0.08, np.float32)
    for c in range(3):
        out[..., c] = np.where(sub == c, 1.0, 0.08)
    out *= row[..., None]
    return out / ((1.0 + 2 * 0.08) / 3.0 * (0.75 + 0.25 * 0.35))


def screen_replay(frames: Sequence[np.ndarray], screen: Screen, seed: int) -> Iterator[np.ndarray]:
    """What the door camera sees when `frames` play on `screen` held in front of it.

    Each camera pixel is the mean of 2x2 point samples of the panel (a sensor pixel is not a
    perfect low-pass filter of the panel's sub-pixel grid: what leaks through is the moiré),
    then display gain (clipping), rolling refresh bands, a glare spot, the lens blur and
    sensor noise."""
    rng = np.random.default_rng(seed)
    for i, frame in enumerate(frames):
        h, w = frame.shape[:2]
        yy, xx = np.mgrid[:h, :w].astype(np.float32)
        cos, sin = np.cos(np.radians(screen.angle)), np.sin(np.radians(screen.angle))
        acc = np.zeros((h, w, 3), np.float32)
        for oy, ox in ((-0.25, -0.25), (-0.25, 0.25), (0.25, -0.25), (0.25, 0.25)):
            x, y = xx + ox - w / 2, yy + oy - h / 2
            xs = ((cos * x - sin * y) * screen.scale + w / 2).astype(np.float32)  # video px
            ys = ((sin * x + cos * y) * screen.scale + h / 2).astype(np.float32)
            sample = cv2.remap(
                frame.astype(np.float32), xs, ys, cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT, borderValue=(20, 20, 20),
            )  # fmt: skip
            if screen.moire:
                sample = sample * _mask(xs * screen.panel / screen.scale,
                                        ys * screen.panel / screen.scale)  # fmt: skip
            acc += sample
        img = acc / 4.0
        if screen.clip:
            img = img * screen.gain
        if screen.banding:
            y = np.arange(h, dtype=np.float32)[:, None, None] / h
            phase = screen.band_speed * i
            band = 1.0 - screen.band_depth * (
                0.5 + 0.5 * np.sin(2 * np.pi * (y / screen.band_period + phase))
            )
            img = img * band
        if screen.glare:
            gx, gy = screen.glare_xy[0] * w, screen.glare_xy[1] * h
            r2 = 2.0 * (screen.glare_r * w) ** 2
            spot = np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / r2)
            img = img + screen.glare_amp * spot[..., None]
        img = np.asarray(cv2.GaussianBlur(img, (0, 0), 0.6))  # the door camera's own lens
        img = img + rng.normal(0, 2.0, img.shape).astype(np.float32)
        yield np.clip(img, 0, 255).astype(np.uint8)


def as_list(it: Iterator[Any]) -> list[Any]:
    return list(it)
