"""Parsers for the downloaded files: IDX (gz), CIFAR python batches (tar.gz) and
the Olivetti faces .mat. Each checks what it reads and raises FormatError (naming
the file and what was expected vs found) instead of handing on a short array."""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile
import zlib

import numpy as np

from .types import FormatError

# ---------------------------------------------------------------------------- IDX

IDX_UBYTE = 0x08  # the only element type MNIST and Fashion-MNIST use


def read_idx(path, shape: tuple[int | None, ...]) -> np.ndarray:
    """A gzipped IDX file as a uint8 array, checked against `shape` (None = any).

    Header: two zero bytes, the type code (0x08 = ubyte), the number of dims, then
    one big-endian uint32 per dim; the data must hold exactly prod(dims) bytes.
    """
    raw = _gunzip(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise FormatError(path, f"not an IDX file (magic number {raw[:4].hex() or 'missing'}, "
                                f"expected 0000{IDX_UBYTE:02x}{len(shape):02x})")
    if raw[2] != IDX_UBYTE or raw[3] != len(shape):
        raise FormatError(path, f"IDX magic number {raw[:4].hex()}: expected type 0x08 (ubyte) "
                                f"with {len(shape)} dims, found type 0x{raw[2]:02x} with "
                                f"{raw[3]} dims")
    head = 4 + 4 * len(shape)
    if len(raw) < head:
        raise FormatError(path, f"IDX header cut short: {len(raw)} bytes, expected {head}")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", len(shape), 4))
    for want, got in zip(shape, dims):
        if want is not None and want != got:
            raise FormatError(path, f"IDX dims {dims}, expected {_fmt_shape(shape)}")
    body = len(raw) - head
    if body != int(np.prod(dims)):
        raise FormatError(path, f"IDX dims {dims} need {int(np.prod(dims))} data bytes, found "
                                f"{body} (the file is truncated or has trailing bytes)")
    return np.frombuffer(raw, np.uint8, offset=head).reshape(dims)


def read_idx_pair(images_path, labels_path, side: int = 28, classes: int = 10):
    """Images (N, side, side) and labels (N,) that must agree in N and range."""
    X = read_idx(images_path, (None, side, side))
    y = read_idx(labels_path, (None,))
    if len(X) != len(y):
        raise FormatError(labels_path, f"{len(y)} labels for the {len(X)} images in {images_path}")
    _check_labels(labels_path, y, classes)
    return X, y


def _gunzip(path) -> bytes:
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read()
    except (EOFError, OSError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise FormatError(path, f"cannot decompress ({type(exc).__name__}: {exc}); the gzip "
                                "stream is truncated or corrupted") from None


def _fmt_shape(shape) -> str:
    return "(" + ", ".join("N" if d is None else str(d) for d in shape) + ")"


def _check_labels(path, y: np.ndarray, classes: int, where: str = "") -> None:
    if y.size and (int(y.min()) < 0 or int(y.max()) >= classes):
        raise FormatError(path, f"{where}labels range over [{int(y.min())}, {int(y.max())}], "
                                f"expected [0, {classes - 1}]")


# -------------------------------------------------------------------------- CIFAR

CIFAR_DIR = "cifar-10-batches-py"
CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST = ("test_batch",)


def read_cifar10(path):
    """The CIFAR-10 python tarball -> (X_train, y_train, X_test, y_test), X uint8
    (N, 3, 32, 32) in the file's channel-major order, y uint8 labels 0..9."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = {m.name: m for m in tar.getmembers()}
            train = [_cifar_batch(path, tar, members, b) for b in CIFAR_TRAIN]
            test = [_cifar_batch(path, tar, members, b) for b in CIFAR_TEST]
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise FormatError(path, f"cannot read the tar.gz ({type(exc).__name__}: {exc}); it is "
                                "truncated or corrupted") from None
    Xtr, ytr = (np.concatenate(a) for a in zip(*train))
    Xte, yte = (np.concatenate(a) for a in zip(*test))
    return Xtr, ytr, Xte, yte


def _cifar_batch(path, tar, members, batch: str):
    name = f"{CIFAR_DIR}/{batch}"
    if name not in members:
        raise FormatError(path, f"no member {name!r} in the archive (found: "
                                f"{', '.join(sorted(members)[:8]) or 'nothing'})")
    try:
        d = _SafeUnpickler(io.BytesIO(tar.extractfile(members[name]).read()),
                           encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise FormatError(path, f"member {name!r} is not a CIFAR batch pickle ({exc})") from None
    d = {k.decode() if isinstance(k, bytes) else k: v for k, v in dict(d).items()}
    X = np.asarray(d.get("data"))
    y = np.asarray(d.get("labels"), dtype=np.int64)
    if X.dtype != np.uint8 or X.ndim != 2 or X.shape[1] != 3 * 32 * 32 or len(y) != len(X):
        raise FormatError(path, f"member {name!r}: data {X.dtype} {X.shape} with {len(y)} labels, "
                                "expected uint8 (N, 3072) with N labels")
    _check_labels(path, y, 10, where=f"member {name!r}: ")
    return X.reshape(-1, 3, 32, 32), y.astype(np.uint8)


class _SafeUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays and plain containers, nothing else.

    The files are checksum-verified before this runs; refusing every other global
    means even a swapped file cannot run code when unpickled.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("_codecs", "encode"),  # how Python 3 writes bytes into a protocol-2 pickle
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


# ------------------------------------------------------------------------- faces

FACE_SIDE = 64
FACES_PER_PERSON = 10


def read_faces_mat(path):
    """olivettifaces.mat -> (faces uint8-valued float (N, 64, 64) upright, labels (N,)).

    The .mat holds `faces` as (4096, N) columns of column-major 64x64 images (hence
    the transpose, as scikit-learn's fetch_olivetti_faces does); N = 400 = 40 people
    x 10 images, each person's images contiguous.
    """
    from scipy.io import loadmat

    try:
        mat = loadmat(path)
    except Exception as exc:  # scipy raises ValueError, TypeError, OSError, MatReadError...
        raise FormatError(path, f"cannot read the .mat file ({type(exc).__name__}: {exc}); it is "
                                "truncated or corrupted") from None
    faces = mat.get("faces")
    if faces is None or faces.ndim != 2 or faces.shape[0] != FACE_SIDE ** 2 \
            or faces.shape[1] == 0 or faces.shape[1] % FACES_PER_PERSON:
        got = "no 'faces' array" if faces is None else f"'faces' of shape {faces.shape}"
        raise FormatError(path, f"{got}, expected (4096, N) with N a multiple of 10 (400)")
    n = faces.shape[1]
    images = faces.T.reshape(n, FACE_SIDE, FACE_SIDE).transpose(0, 2, 1)
    return np.asarray(images, dtype=np.float64), np.arange(n) // FACES_PER_PERSON


def area_resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix averaging the input cells each output cell covers
    (exact area weights, so 64 -> 25 needs no integer ratio)."""
    edges = np.linspace(0.0, n_in, n_out + 1)
    lo, hi = edges[:-1, None], edges[1:, None]
    cells = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, cells + 1) - np.maximum(lo, cells), 0.0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def resize_images(images: np.ndarray, side: int) -> np.ndarray:
    """(N, H, W) -> (N, side, side) by area averaging (R @ img @ R^T)."""
    rows = area_resize_matrix(images.shape[1], side)
    cols = area_resize_matrix(images.shape[2], side)
    return np.einsum("ih,nhw,jw->nij", rows, images, cols, optimize=True)
