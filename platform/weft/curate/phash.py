"""Perceptual hash (pHash) of an image: 64 bits that survive resizing, re-encoding and light
cropping, compared by Hamming distance."""

from __future__ import annotations

import numpy as np
from PIL import Image

_N = 32  # the image is reduced to N x N grey pixels
_K = 8  # the K x K lowest frequencies give the 64 bits


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * np.sqrt(2 / n)
    m[0] /= np.sqrt(2)
    return m


_DCT = _dct_matrix(_N)


def phash(img: Image.Image) -> int:
    """64-bit pHash as a signed int64 (so it fits Arrow's int64): each bit says whether a
    low-frequency DCT coefficient is above the median of the 64."""
    grey = np.asarray(img.convert("L").resize((_N, _N), Image.Resampling.LANCZOS), dtype=np.float64)
    low = (_DCT @ grey @ _DCT.T)[:_K, :_K].ravel()  # (64,)
    bits = low > np.median(low[1:])
    value = int(np.packbits(bits).view(">u8")[0])
    return value - (1 << 64) if value >= 1 << 63 else value


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise Hamming distance between int64 hashes, elementwise."""
    x = np.bitwise_xor(a.astype(np.int64), b.astype(np.int64)).view(np.uint64)
    return np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)
