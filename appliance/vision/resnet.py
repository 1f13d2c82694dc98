"""dlib's face-recognition ResNet (dlib_face_recognition_resnet_model_v1.dat), run with numpy.

The same network and the same weights as `dlib.face_recognition_model_v1`, read from the same
model file, computed with numpy's BLAS matrix multiply instead of dlib's own loops. The
dlib-bin wheels are built without a BLAS (`dlib.DLIB_USE_BLAS` is False), so dlib multiplies
its convolution matrices with plain C++ loops; OpenBLAS (inside numpy) does the same product
several times faster, and releases the GIL while it works, so the keypad's scan thread and
the relay's timer keep running during a pass. The descriptors agree with dlib's to float32
rounding (tests/vision/test_resnet.py compares them on real faces).

The network (dlib's examples/dnn_face_recognition_ex.cpp, the model's published definition):

    input 150x150 RGB, (pixel - channel mean) / 256
    con 32 7x7/2, affine, relu, max_pool 3x3/2
    level 4: 3 x residual(32)
    level 3: residual_down(64), 3 x residual(64)
    level 2: residual_down(128), 2 x residual(128)
    level 1: residual_down(256), 2 x residual(256)
    level 0: residual_down(256)
    average over the image, fc 128 (no bias)

    residual(N)      = relu(x + affine(con N 3x3(relu(affine(con N 3x3(x))))))
    residual_down(N) = relu(avg_pool 2x2/2(x) + affine(con N 3x3(relu(affine(con N 3x3/2(x))))))

dlib pads a stride-1 convolution by half the kernel and a stride-2 one (and the pools) not at
all; where a residual's two branches differ in size or channels, dlib adds them into the
larger shape with the smaller zero-extended (its `add_prev_`), and this does the same.

The file is dlib's serialisation of the trained network: the loss layer's details, then one
version number per layer from the outside in, then the input layer, then each layer's details
from the input outwards. Only the layer details are needed here; they are read in order and
checked against the definition above, so a different or damaged file is refused by name.
"""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CHIP_SIZE = 150
_MEANS = np.array([122.782, 117.001, 104.298], dtype=np.float32)
MAX_TENSOR = 4_000_000  # floats; the largest in the model is 590k (256 x 256 x 3 x 3 + 256)
# (filters, residual_down blocks, residual blocks) of levels 4 to 0
LEVELS = ((32, 0, 3), (64, 1, 3), (128, 1, 2), (256, 1, 2), (256, 1, 0))


class ResNetFileError(ValueError):
    """The model file is not the network this module runs (or it is damaged)."""


class _Reader:
    """dlib's serialisation primitives (dlib/serialize.h), read from a binary file. Tensors
    are read straight into their own (aligned) arrays, so loading holds the weights once,
    never the whole file besides them."""

    def __init__(self, f: io.BufferedIOBase) -> None:
        self.f = f

    @property
    def pos(self) -> int:
        return self.f.tell()

    def _read(self, n: int) -> bytes:
        at = self.pos
        chunk = self.f.read(n)
        if len(chunk) != n:
            raise ResNetFileError(f"model file ends early at byte {at}")
        return chunk

    def at_end(self) -> bool:
        at = self.pos
        more = self.f.read(1)
        self.f.seek(at)
        return not more

    def next_is(self, raw: bytes) -> bool:
        at = self.pos
        ahead = self.f.read(len(raw))
        self.f.seek(at)
        return ahead == raw

    def integer(self) -> int:
        """Control byte (low nibble: bytes that follow, 0x80: negative), then little endian."""
        at = self.pos
        head = self._read(1)[0]
        size = head & 0x0F
        if head & 0x70 or size > 8:
            raise ResNetFileError(f"bad integer at byte {at}")
        value = int.from_bytes(self._read(size), "little")
        return -value if head & 0x80 else value

    def number(self) -> float:
        """A mantissa and a power-of-two exponent, each an integer as above."""
        mantissa, exponent = self.integer(), self.integer()
        if exponent >= 32000:  # dlib's codes for inf, -inf, nan
            raise ResNetFileError(f"non-finite number before byte {self.pos}")
        return float(np.ldexp(float(mantissa), exponent))

    def flag(self) -> bool:
        at = self.pos
        ch = self._read(1)
        if ch not in (b"0", b"1"):
            raise ResNetFileError(f"bad boolean at byte {at}")
        return ch == b"1"

    def text(self) -> str:
        return self._read(self.integer()).decode("latin-1")

    def tensor(self) -> np.ndarray:
        """dlib tensor, version 2: four sizes, then little-endian float32 values."""
        if self.integer() != 2:
            raise ResNetFileError(f"unknown tensor version before byte {self.pos}")
        shape = tuple(self.integer() for _ in range(4))
        if min(shape) < 0 or int(np.prod(shape)) > MAX_TENSOR:
            raise ResNetFileError(f"tensor of {shape} before byte {self.pos}")
        values = np.empty(shape, dtype=np.float32)
        at = self.pos
        if values.size and self.f.readinto(values.reshape(-1).data) != values.nbytes:
            raise ResNetFileError(f"model file ends early at byte {at}")
        if sys.byteorder != "little":
            values.byteswap(inplace=True)
        return values

    def alias(self) -> tuple[int, ...]:
        """dlib alias_tensor, version 1: only the shape of a view into a params tensor."""
        if self.integer() != 1:
            raise ResNetFileError(f"unknown alias-tensor version before byte {self.pos}")
        return tuple(self.integer() for _ in range(4))


@dataclass
class _Conv:
    filters: int
    size: int
    stride: int
    weights: np.ndarray  # (filters, channels * size * size), the affine after it folded in
    bias: np.ndarray  # (filters, 1)


def _layer_details(r: _Reader, version: str) -> tuple[str, dict[str, Any]]:
    """One layer's details after its version string: (kind, fields)."""
    if version in ("con_4", "con_5", "con_6"):
        params = r.tensor()
        f: dict[str, Any] = dict(
            filters=r.integer(), nr=r.integer(), nc=r.integer(), sy=r.integer(), sx=r.integer()
        )
        f.update(py=r.integer(), px=r.integer())
        f["filters_shape"], f["bias_shape"] = r.alias(), r.alias()  # views into params
        for _ in range(4):
            r.number()  # learning-rate and weight-decay multipliers
        f["use_bias"] = r.flag() if version != "con_4" else True
        if version == "con_6":
            r.flag()  # use_relu (fused relu, unused in this network)
        f["params"] = params
        return "con", f
    if version in ("affine_", "affine_2"):
        params = r.tensor().reshape(-1)
        gamma_n, beta_n = int(np.prod(r.alias())), int(np.prod(r.alias()))
        if gamma_n + beta_n != params.size:
            raise ResNetFileError(f"affine layer's sizes do not add up before byte {r.pos}")
        mode = r.integer()
        disabled = r.flag() if version == "affine_2" else False
        gamma, beta = params[:gamma_n], params[gamma_n:]
        return "affine", dict(gamma=gamma, beta=beta, mode=mode, disabled=disabled)
    if version in ("relu_", "relu_2"):
        disabled = r.flag() if version == "relu_2" else False
        return "relu", dict(disabled=disabled)
    if version in ("max_pool_2", "avg_pool_2"):
        pool: dict[str, Any] = dict(nr=r.integer(), nc=r.integer(), sy=r.integer(), sx=r.integer())
        pool.update(py=r.integer(), px=r.integer())
        return version[:-2], pool
    if version == "add_prev_":
        return "add_prev", {}
    if version in ("fc_2", "fc_3"):
        fc: dict[str, Any] = dict(outputs=r.integer(), inputs=r.integer())
        params = r.tensor()
        r.alias(), r.alias()  # weights / biases: views into params
        fc["bias_mode"] = r.integer()
        for _ in range(4):
            r.number()
        if version == "fc_3":
            r.flag()
        fc["params"] = params
        return "fc", fc
    raise ResNetFileError(f"unexpected layer {version!r} at byte {r.pos}")


def _read_layers(r: _Reader) -> list[tuple[str, dict[str, Any]]]:
    if r.integer() != 1 or r.text() not in ("loss_metric_", "loss_metric_2"):
        raise ResNetFileError("not a dlib metric-learning network (no loss_metric_ first)")
    r.number(), r.number()  # margin, distance threshold (training only)
    # one version number per layer, outside in, until the input layer's name
    while True:
        mark = r.pos
        if r.next_is(b"\x01\x15input_rgb_image_sized"):
            break
        r.integer()
        if r.pos - mark > 9 or r.pos > 4096:
            raise ResNetFileError("no input_rgb_image_sized layer where expected")
    r.text()
    means = [r.number(), r.number(), r.number()]
    if not np.allclose(means, _MEANS, atol=1e-3) or (r.integer(), r.integer()) != (150, 150):
        raise ResNetFileError("input layer is not 150x150 RGB with dlib's channel means")
    layers: list[tuple[str, dict[str, Any]]] = []
    first = True
    while not r.at_end():
        kind, fields = _layer_details(r, r.text())
        r.flag(), r.flag(), r.flag()  # setup called, gradient stale, output disabled
        r.tensor(), r.tensor(), r.tensor()  # x_grad, cached output, params_grad/grad_final
        if first:  # the layer on the input also stores its sample expansion factor
            r.integer()
            first = False
        layers.append((kind, fields))
    return layers


def _architecture() -> list[tuple[str, int, int]]:
    """The layer sequence (kind, filters, stride) the file must hold, input first."""
    seq: list[tuple[str, int, int]] = [("con", 32, 2), ("affine", 0, 0), ("relu", 0, 0)]
    seq.append(("max_pool", 3, 2))

    def block(n: int, stride: int, down: bool) -> None:
        seq.extend([("con", n, stride), ("affine", 0, 0), ("relu", 0, 0)])
        seq.extend([("con", n, 1), ("affine", 0, 0)])
        if down:
            seq.append(("avg_pool", 2, 2))
        seq.extend([("add_prev", 0, 0), ("relu", 0, 0)])

    for n, down_blocks, blocks in LEVELS:
        for _ in range(down_blocks):
            block(n, 2, True)
        for _ in range(blocks):
            block(n, 1, False)
    seq.extend([("avg_pool", 0, 1), ("fc", 128, 0)])
    return seq


def _conv_from(fields: dict[str, Any], affine: dict[str, Any]) -> _Conv:
    n, k, stride = int(fields["filters"]), int(fields["nr"]), int(fields["sy"])
    pad = int(fields["py"])
    if pad != (k // 2 if stride == 1 else 0) or fields["nc"] != k or fields["sx"] != stride:
        raise ResNetFileError(f"convolution {n}x{k}x{k}/{stride} padded {pad}: not dlib's")
    params = np.asarray(fields["params"]).reshape(-1)
    w = params[: params.size - n] if fields["use_bias"] else params
    b = params[params.size - n :] if fields["use_bias"] else np.zeros(n, np.float32)
    if w.size != n * fields["filters_shape"][1] * k * k:
        raise ResNetFileError(f"convolution {n}x{k}x{k}: {w.size} weights do not fit it")
    w = w.reshape(n, -1)
    gamma = np.asarray(affine["gamma"]).reshape(-1)
    beta = np.asarray(affine["beta"]).reshape(-1)
    if gamma.size != n or beta.size != n or affine["disabled"]:
        raise ResNetFileError(f"affine after convolution {n}x{k}x{k} does not fit it")
    # the affine (dlib's batch norm, frozen) folded in, in place: the weights are held once
    w *= gamma[:, None]
    b *= gamma
    b += beta
    return _Conv(n, k, stride, w, b.reshape(n, 1))


class ResNetEncoder:
    """128-d face descriptors from 150x150 aligned chips (dlib.get_face_chip's output)."""

    def __init__(self, path: str | Path) -> None:
        try:
            with open(path, "rb") as f:
                layers = _read_layers(_Reader(f))
        except OSError as exc:
            raise ResNetFileError(f"cannot read {path}: {exc.strerror}") from exc
        want = _architecture()
        if [k for k, *_ in want] != [k for k, _ in layers]:
            raise ResNetFileError(f"{path}: the layers are not dlib's face-recognition ResNet")
        self._convs: list[_Conv] = []
        for i, (kind, fields) in enumerate(layers):
            if kind == "con":
                conv = _conv_from(fields, layers[i + 1][1])
                if (conv.filters, conv.stride) != want[i][1:]:
                    raise ResNetFileError(f"{path}: layer {i} is not the expected convolution")
                self._convs.append(conv)
            elif kind == "relu" and fields["disabled"]:
                raise ResNetFileError(f"{path}: layer {i} (relu) is disabled")
            elif kind in ("max_pool", "avg_pool"):
                size, stride = want[i][1:]
                if fields["py"] != 0 or (size and (fields["nr"], fields["sy"]) != (size, stride)):
                    raise ResNetFileError(f"{path}: layer {i} is not the expected pooling")
        fc = layers[-1][1]
        if (fc["outputs"], fc["inputs"], fc["bias_mode"]) != (128, 256, 1):
            raise ResNetFileError(f"{path}: the last layer is not a 256 -> 128 fc without bias")
        self._fc = np.ascontiguousarray(np.asarray(fc["params"]).reshape(256, 128))

    # ---- forward pass -----------------------------------------------------------------------
    @staticmethod
    def _conv(x: np.ndarray, c: _Conv) -> np.ndarray:
        """x (C, H, W) float32 -> (filters, H', W'): im2col, then one matrix product."""
        channels, h, w = x.shape
        k, s = c.size, c.stride
        if s == 1:  # dlib pads a stride-1 convolution by half the kernel, with zeros
            p = k // 2
            padded = np.zeros((channels, h + 2 * p, w + 2 * p), np.float32)
            padded[:, p : p + h, p : p + w] = x
            x = padded
        ho, wo = (x.shape[1] - k) // s + 1, (x.shape[2] - k) // s + 1
        # the (C, k, k, ho, wo) view of every window, then one copy into the column matrix
        # (as_strided: sliding_window_view's argument checks cost ~1.5 ms a pass)
        sc, sh, sw = x.strides
        win = np.lib.stride_tricks.as_strided(
            x, (channels, k, k, ho, wo), (sc, sh, sw, sh * s, sw * s), writeable=False
        )
        cols = win.reshape(channels * k * k, ho * wo)
        out = c.weights @ cols
        out += c.bias
        return out.reshape(c.filters, ho, wo)

    @staticmethod
    def _windows(x: np.ndarray, size: int, stride: int) -> list[np.ndarray]:
        """The size x size strided views whose element-wise max / mean is the pooling."""
        _, h, w = x.shape
        ho, wo = (h - size) // stride + 1, (w - size) // stride + 1
        return [
            x[:, dy : dy + (ho - 1) * stride + 1 : stride, dx : dx + (wo - 1) * stride + 1 : stride]
            for dy in range(size)
            for dx in range(size)
        ]

    @classmethod
    def _max_pool(cls, x: np.ndarray, size: int, stride: int) -> np.ndarray:
        views = cls._windows(x, size, stride)
        out = views[0].copy()
        for v in views[1:]:
            np.maximum(out, v, out=out)
        return out

    @classmethod
    def _avg_pool(cls, x: np.ndarray, size: int, stride: int) -> np.ndarray:
        views = cls._windows(x, size, stride)
        out = views[0].copy()
        for v in views[1:]:
            out += v
        out *= np.float32(1 / (size * size))
        return out

    @staticmethod
    def _add_relu(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """relu(a + b) with dlib's add_prev_: where the two differ in size or channels, the
        sum is in the larger shape with the smaller zero-extended. `b` may be overwritten."""
        if a.shape == b.shape:
            b += a
            out = b
        else:
            shape = tuple(max(i, j) for i, j in zip(a.shape, b.shape, strict=True))
            out = np.zeros(shape, np.float32)
            out[: a.shape[0], : a.shape[1], : a.shape[2]] += a
            out[: b.shape[0], : b.shape[1], : b.shape[2]] += b
        return np.maximum(out, 0, out=out)

    def descriptor(self, chip: np.ndarray) -> np.ndarray:
        """The 128-d descriptor (float32) of one 150x150x3 uint8 RGB chip."""
        chip = np.asarray(chip)
        if chip.shape != (CHIP_SIZE, CHIP_SIZE, 3) or chip.dtype != np.uint8:
            raise ValueError(f"face chip must be 150x150x3 uint8, got {chip.shape} {chip.dtype}")
        x = np.ascontiguousarray(chip.transpose(2, 0, 1), dtype=np.float32)
        x -= _MEANS[:, None, None]
        x *= np.float32(1 / 256)
        convs = iter(self._convs)
        x = self._conv(x, next(convs))
        x = self._max_pool(np.maximum(x, 0, out=x), 3, 2)
        for _, down_blocks, blocks in LEVELS:
            for down in [True] * down_blocks + [False] * blocks:
                y = self._conv(x, next(convs))
                y = self._conv(np.maximum(y, 0, out=y), next(convs))
                x = self._add_relu(self._avg_pool(x, 2, 2) if down else x, y)
        pooled = x.mean(axis=(1, 2), dtype=np.float32)
        return pooled @ self._fc
