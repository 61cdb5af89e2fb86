"""A CURVES-style generator: random smooth curves drawn into 28x28 images.

A STAND-IN, NOT THE ORIGINAL DATA. Hinton and Salakhutdinov (2006, supporting
material) made their synthetic CURVES set from curves through randomly chosen 2-D
points, rendered to 28x28 intensities in [0, 1]; Martens (2010, Table 1) trains the
CURVES autoencoder on 20,000 of them and tests on 10,000. We cannot ship their
files, so this draws the same kind of image from the seed: a smooth curve through
three random points (a quadratic Bezier; `points=4` draws a cubic Bezier from four
random control points instead), stroked with an anti-aliased pen. Numbers from it
are comparable between optimizers here, not with the papers' tables.

Speed: everything is vectorized over a chunk of images; each curve is sampled at
128 points and each sample splats a separable tent pen onto its 4x4 pixel
neighbourhood, with one np.bincount per chunk.
"""

from __future__ import annotations

import numpy as np

from . import prep
from .types import DataError, Dataset

SIZE = 28
N_TRAIN, N_TEST = 20_000, 10_000  # Martens 2010, Table 1
SAMPLES = 128  # points per curve: spacing stays under ~0.6 px for the longest curves
RADIUS = 1.5  # pen radius in pixels: a ~3 px stroke with soft edges
MARGIN = 3.0  # keep the random points this far inside the frame
MIN_GAP = 5.0  # consecutive points at least this far apart: no dots, only strokes
CHUNK = 2048


def _draw_points(rng: np.random.Generator, m: int, points: int, size: int) -> np.ndarray:
    """m sets of random points (m, points, 2) inside the frame, consecutive ones at
    least MIN_GAP apart (sets that are not are drawn again, from the same stream)."""
    pts = rng.uniform(MARGIN, size - 1 - MARGIN, size=(m, points, 2))
    while True:
        bad = (np.linalg.norm(np.diff(pts, axis=1), axis=2) < MIN_GAP).any(axis=1)
        if not bad.any():
            return pts
        pts[bad] = rng.uniform(MARGIN, size - 1 - MARGIN, size=(int(bad.sum()), points, 2))


def _control_points(pts: np.ndarray) -> np.ndarray:
    """Bezier control points from random points (m, k, 2).

    k = 3: the quadratic through all three (middle control 2*P1 - (P0 + P2)/2 puts
    the curve through P1 at t = 1/2). k = 4: the points are the cubic's controls.
    """
    if pts.shape[1] == 3:
        mid = 2.0 * pts[:, 1] - 0.5 * (pts[:, 0] + pts[:, 2])
        return np.stack([pts[:, 0], mid, pts[:, 2]], axis=1)
    return pts


def _bernstein(degree: int, t: np.ndarray) -> np.ndarray:
    """(S, degree + 1) Bernstein basis at the parameters t."""
    from math import comb

    k = np.arange(degree + 1)
    coef = np.array([comb(degree, int(i)) for i in k], dtype=np.float64)
    return coef * t[:, None] ** k * (1.0 - t[:, None]) ** (degree - k)


def _pen(coord: np.ndarray, w: np.ndarray, size: int):
    """Pixel indices (m, S, 4) around each sample coordinate and the 1-D tent
    weights there, zero outside the frame (indices clipped to stay valid)."""
    idx = np.floor(coord).astype(np.int32)[..., None] - 1 + np.arange(4, dtype=np.int32)
    k = np.maximum(np.float32(0), 1 - np.abs(idx - coord[..., None]) * np.float32(1 / RADIUS))
    k[(idx < 0) | (idx >= size)] = 0
    if w is not None:
        k *= w[..., None]
    return np.clip(idx, 0, size - 1), k


def _render_chunk(ctrl: np.ndarray, basis: np.ndarray, size: int) -> np.ndarray:
    """Images (m, size*size) for curves with Bezier controls ctrl (m, d+1, 2)."""
    m = ctrl.shape[0]
    pts = np.matmul(basis, ctrl)  # (m, S, 2) as (x, y) in pixel units
    # Weight each sample by the curve length it stands for (trapezoid rule), so the
    # ink per unit length is the same where the parameter runs fast or slow.
    seg = np.linalg.norm(np.diff(pts, axis=1), axis=2)  # (m, S-1)
    w = np.zeros(pts.shape[:2], dtype=np.float32)
    w[:, 1:] += 0.5 * seg
    w[:, :-1] += 0.5 * seg
    # A separable pen (tent(dx) * tent(dy)) on the 4x4 pixels around each sample:
    # no square roots, and a diagonal stroke comes out only ~6% dimmer than an
    # axis-aligned one (2*sqrt(2)/3 of its ink), which is harmless for a stand-in.
    cx, kx = _pen(pts[..., 0], w, size)
    cy, ky = _pen(pts[..., 1], None, size)
    rows = np.arange(m, dtype=np.int32)[:, None, None] * (size * size) + cy * size  # (m, S, 4)
    flat = rows[..., :, None] + cx[..., None, :]  # (m, S, 4, 4)
    ink = ky[..., :, None] * kx[..., None, :]
    acc = np.bincount(flat.ravel(), weights=ink.ravel(), minlength=m * size * size)
    # A straight axis-aligned stroke's line integral of the pen through its centre
    # is RADIUS: dividing by it gives 1 on the centre line; crossings saturate at 1.
    return np.minimum(acc / RADIUS, 1.0).reshape(m, size * size)


def render(n: int, rng: np.random.Generator, *, points: int = 3, size: int = SIZE) -> np.ndarray:
    """n curve images, float32 (n, size*size) with intensities in [0, 1]."""
    if points not in (3, 4):
        raise DataError(f"curves: points must be 3 (a curve through 3 random points) or 4 "
                        f"(a cubic Bezier), got {points!r}")
    degree = points - 1
    basis = _bernstein(degree, np.linspace(0.0, 1.0, SAMPLES)).astype(np.float32)
    out = np.empty((n, size * size), dtype=np.float32)
    for lo in range(0, n, CHUNK):
        m = min(CHUNK, n - lo)
        pts = _draw_points(rng, m, points, size)
        ctrl = _control_points(pts).astype(np.float32)  # float32 halves the memory traffic
        out[lo:lo + m] = _render_chunk(ctrl, basis, size)
    return out


def curves(files, *, seed: int = 0, n_train: int = N_TRAIN, n_test: int = N_TEST,
           points: int = 3) -> Dataset:
    """The CURVES stand-in for the autoencoder of Martens 2010 (Table 1).

    Task "reconstruction": targets are the inputs. Default sizes 20,000 train /
    10,000 test as in Martens' Table 1; n_train and n_test make it smaller.
    """
    for key, v in (("n_train", n_train), ("n_test", n_test)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise DataError(f"curves: {key} must be an integer >= 1, got {v!r}")
    rng = prep.stream(seed, "curves")
    X = render(int(n_train) + int(n_test), rng, points=points)
    Xtr, Xte = X[:n_train], X[n_train:]
    return Dataset(
        "curves", Xtr, Xtr, Xte, Xte, task="reconstruction", input_shape=(SIZE * SIZE,),
        num_classes=None, output_size=SIZE * SIZE,
        preprocessing=(f"generated STAND-IN for CURVES: curves through {points} random points, "
                       "anti-aliased, intensities in [0, 1], flattened 28x28; y = X"),
        source="generated (CURVES-style; not the Hinton & Salakhutdinov 2006 files)",
        split=f"{n_train} train / {n_test} test i.i.d. images from the seed",
    )
