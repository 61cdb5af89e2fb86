"""Datasets downloaded once into the cache: where they come from, the SHA-256
each file must have, and how each becomes a Dataset.

The checksums are the ones public code pins for these exact files (none were
computed here, where the network is closed):
- MNIST: tensorflow/datasets url_checksums/mnist.txt (URL, size, sha256), the
  same four digests Keras-style loaders and the ossci mirror users pin;
- Fashion-MNIST: tensorflow/datasets url_checksums/fashion_mnist.txt;
- CIFAR-10 python: keras.datasets.cifar10 (file_hash), torchvision's prototype
  Cifar10 (_SHA256) and tensorflow/datasets url_checksums/cifar10.csv;
- Olivetti: scikit-learn's fetch_olivetti_faces RemoteFileMetadata (figshare copy
  of Sam Roweis' olivettifaces.mat).
"""

from __future__ import annotations

import numpy as np

from . import formats, prep
from .types import DataError, Dataset, RemoteFile

_CVDF = "https://storage.googleapis.com/cvdf-datasets/mnist/"  # TFDS's MNIST mirror
_OSSCI = "https://ossci-datasets.s3.amazonaws.com/mnist/"  # torchvision's MNIST mirror
_LECUN = "http://yann.lecun.com/exdb/mnist/"  # the original, often unreachable
_ZALANDO = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"


def _mnist_file(name: str, sha256: str, size: int) -> RemoteFile:
    return RemoteFile(name, _CVDF + name, sha256, size, mirrors=(_OSSCI + name, _LECUN + name))


MNIST_FILES = (
    _mnist_file("train-images-idx3-ubyte.gz",
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
    _mnist_file("train-labels-idx1-ubyte.gz",
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
    _mnist_file("t10k-images-idx3-ubyte.gz",
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
    _mnist_file("t10k-labels-idx1-ubyte.gz",
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
)

FASHION_FILES = (
    RemoteFile("train-images-idx3-ubyte.gz", _ZALANDO + "train-images-idx3-ubyte.gz",
               "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880),
    RemoteFile("train-labels-idx1-ubyte.gz", _ZALANDO + "train-labels-idx1-ubyte.gz",
               "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515),
    RemoteFile("t10k-images-idx3-ubyte.gz", _ZALANDO + "t10k-images-idx3-ubyte.gz",
               "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102),
    RemoteFile("t10k-labels-idx1-ubyte.gz", _ZALANDO + "t10k-labels-idx1-ubyte.gz",
               "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148),
)

CIFAR10_FILES = (
    RemoteFile("cifar-10-python.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
               "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce", 170498071),
)

# The byte size of the figshare copy is not pinned anywhere we found; the SHA-256 is.
OLIVETTI_FILES = (
    RemoteFile("olivettifaces.mat", "https://ndownloader.figshare.com/files/5976027",
               "b612fb967f2dc77c9c62d3e1266e0c73d5fca46a4b8906c18e454d41af987794", None,
               mirrors=("https://cs.nyu.edu/~roweis/data/olivettifaces.mat",)),
)


def _idx_dataset(name: str, files: dict, source: str, cite: str) -> Dataset:
    """MNIST-format data: official 60,000 / 10,000 split, pixels scaled to [0, 1]."""
    Xtr, ytr = formats.read_idx_pair(files["train-images-idx3-ubyte.gz"],
                                     files["train-labels-idx1-ubyte.gz"])
    Xte, yte = formats.read_idx_pair(files["t10k-images-idx3-ubyte.gz"],
                                     files["t10k-labels-idx1-ubyte.gz"])
    return Dataset(
        name, prep.f32(Xtr[:, None] / 255.0), prep.labels(ytr), prep.f32(Xte[:, None] / 255.0),
        prep.labels(yte), task="classification", input_shape=(1, 28, 28), num_classes=10,
        output_size=10, preprocessing=f"pixels scaled to [0, 1] (/255), no centering ({cite})",
        source=source,
        split=f"the official split: {len(Xtr)} train / {len(Xte)} test (seed unused)",
    )


def mnist(files, *, seed: int = 0) -> Dataset:
    """Full MNIST (Martens 2010 Table 1 autoencoder; Gargiani et al. 2020 and Wang
    et al. 2024 classifiers): the official split, pixels in [0, 1]."""
    return _idx_dataset("mnist", files, "MNIST IDX files (" + _CVDF + ")",
                        "as in Martens 2010 and Gargiani et al. 2020")


def fashion_mnist(files, *, seed: int = 0) -> Dataset:
    """Fashion-MNIST (Gargiani et al. 2020 conv net; Motokawa 2020 LeNet): the
    official split, pixels in [0, 1]."""
    return _idx_dataset("fashion_mnist", files, "Fashion-MNIST IDX files (" + _ZALANDO + ")",
                        "as in Gargiani et al. 2020 and Motokawa 2020")


def cifar10(files, *, seed: int = 0) -> Dataset:
    """CIFAR-10 python batches (Gargiani et al. 2020 conv net): data_batch_1..5
    train (50,000), test_batch test (10,000); X (N, 3, 32, 32) scaled to [0, 1]
    (/255), no per-channel normalization (the paper states none)."""
    Xtr, ytr, Xte, yte = formats.read_cifar10(files["cifar-10-python.tar.gz"])
    return Dataset(
        "cifar10", prep.f32(Xtr / 255.0), prep.labels(ytr), prep.f32(Xte / 255.0), prep.labels(yte),
        task="classification", input_shape=(3, 32, 32), num_classes=10, output_size=10,
        preprocessing="pixels scaled to [0, 1] (/255), channels first, no mean/std normalization",
        source="CIFAR-10 python version (https://www.cs.toronto.edu/~kriz/cifar.html)",
        split=f"the official split: data_batch_1..5 = {len(Xtr)} train / test_batch = "
              f"{len(Xte)} test (seed unused)",
    )


def olivetti_faces(files, *, seed: int = 0, side: int = 25) -> Dataset:
    """Olivetti faces for the FACES autoencoder of Martens 2010 (Table 1).

    NOT Martens' FACES set: that one is 25x25 images from Hinton and Salakhutdinov's
    (2006) augmented Olivetti set (rotated, scaled, cropped copies; 103,500 for
    training, hence Martens' K = 5175 = 5%). Here the
    400 plain 64x64 images are area-averaged down to side x side (25 by default)
    and min-max scaled to [0, 1] as scikit-learn does; per person a seeded 8 train
    / 2 test (320 / 80). Labels (40 people) are kept for task="classification".
    """
    if isinstance(side, bool) or not isinstance(side, (int, np.integer)) or not 1 <= side <= 64:
        raise DataError(f"olivetti_faces: side must be an integer in [1, 64], got {side!r}")
    images, people = formats.read_faces_mat(files["olivettifaces.mat"])
    images = formats.resize_images(images, int(side))
    lo, hi = images.min(), images.max()
    images = (images - lo) / (hi - lo if hi > lo else 1.0)
    per_person = formats.FACES_PER_PERSON * 4 // 5
    tr, te = prep.stratified_split(people, per_person, prep.stream(seed, "olivetti_faces"))
    X = images[:, None]
    n = int(people.max()) + 1
    return Dataset(
        "olivetti_faces", prep.f32(X[tr]), prep.labels(people[tr]), prep.f32(X[te]),
        prep.labels(people[te]), task="classification", input_shape=(1, side, side),
        num_classes=n, output_size=n,
        preprocessing=(f"64x64 Olivetti faces area-averaged to {side}x{side}, min-max scaled to "
                       "[0, 1]; NOT the augmented FACES set of Martens 2010"),
        source="olivettifaces.mat (Sam Roweis; scikit-learn's figshare copy)",
        split=f"per person a seeded {per_person} train / {formats.FACES_PER_PERSON - per_person} "
              f"test: {len(tr)} / {len(te)}",
    )
