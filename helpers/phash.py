"""A perceptual hash (pHash) for finding near-duplicate images, written out in full.

Image search returns the same photo many times: resized, re-compressed,
slightly cropped. A byte hash (SHA-256) only catches exact copies. A
perceptual hash summarises what the picture *looks like* in 64 bits, so two
versions of one photo differ in a few bits while different photos differ in
about half of them (~32).

The recipe: grey, shrink to 32x32 (throws away detail and size), take the 2-D
discrete cosine transform (DCT), keep the 8x8 lowest frequencies (the coarse
layout of light and dark), and write one bit per coefficient: above or below
their median.
"""

from __future__ import annotations

import threading

import numpy as np

HASH_SIDE = 8  # 8x8 = 64 bits
SHRINK = 32


def dct_matrix(n: int) -> np.ndarray:
    """The orthonormal DCT-II basis as an n x n matrix: `D @ x` transforms a column vector."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    d = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * i + 1) * k / (2 * n))
    d[0] /= np.sqrt(2.0)
    return d


_DCT = dct_matrix(SHRINK)


def dct2(block: np.ndarray) -> np.ndarray:
    """2-D DCT of a square block: transform the columns, then the rows."""
    return _DCT @ block @ _DCT.T


def phash(rgb: np.ndarray) -> int:
    """64-bit perceptual hash of an RGB (or grey) uint8 image, as a Python int."""
    import cv2

    grey = rgb if rgb.ndim == 2 else cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey.astype(np.float32), (SHRINK, SHRINK), interpolation=cv2.INTER_AREA)
    low = dct2(small)[:HASH_SIDE, :HASH_SIDE].ravel()
    median = np.median(low[1:])  # the DC term (overall brightness) would skew the median
    value = 0
    for bit in low > median:
        value = (value << 1) | int(bit)
    return value


def to_hex(h: int) -> str:
    return f"{h:016x}"


def from_hex(s: str) -> int:
    return int(s, 16)


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two hashes."""
    return bin(a ^ b).count("1")


class HashIndex:
    """SHA-256 and pHash of every image a domain folder already holds, safe to share between threads.

    `claim` is the one place a new image is accepted or rejected, under a lock,
    so two threads downloading copies of one photo cannot both keep it.
    """

    def __init__(self, threshold: int = 6):
        self.threshold = threshold
        self._lock = threading.Lock()
        self._sha: dict[str, str] = {}  # sha256 -> label (path or url) of the first image with it
        self._hashes = np.zeros(0, np.uint64)
        self._labels: list[str] = []

    def __len__(self) -> int:
        return len(self._labels)

    def add_sha(self, sha: str, label: str) -> None:
        """Remember bytes we have seen (also of rejected images), so exact copies are named as such."""
        with self._lock:
            self._sha.setdefault(sha, label)

    def add(self, sha: str, h: int, label: str) -> None:
        with self._lock:
            self._add(sha, h, label)

    def _add(self, sha: str, h: int, label: str) -> None:
        self._sha.setdefault(sha, label)
        self._hashes = np.append(self._hashes, np.uint64(h))
        self._labels.append(label)

    def seen_sha(self, sha: str) -> str | None:
        with self._lock:
            return self._sha.get(sha)

    def nearest(self, h: int) -> tuple[int, str | None]:
        """(distance, label) of the closest kept image, or (65, None) when the index is empty."""
        with self._lock:
            return self._nearest(h)

    def _nearest(self, h: int) -> tuple[int, str | None]:
        if not self._labels:
            return 65, None
        diff = np.bitwise_xor(self._hashes, np.uint64(h))
        dist = np.unpackbits(diff.view(np.uint8)).reshape(-1, 64).sum(axis=1)  # popcount, any NumPy version
        i = int(dist.argmin())
        return int(dist[i]), self._labels[i]

    def claim(self, sha: str, h: int, label: str) -> tuple[str, str]:
        """Accept a new image or say why not: ("ok", ""), ("duplicate", first) or ("near_duplicate", note)."""
        with self._lock:
            if sha in self._sha:
                return "duplicate", f"same bytes as {self._sha[sha]}"
            self._sha[sha] = label
            dist, other = self._nearest(h)
            if dist <= self.threshold:
                return "near_duplicate", f"pHash distance {dist} to {other}"
            self._add(sha, h, label)
            return "ok", ""
