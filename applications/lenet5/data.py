"""Data preparation for the LeNet-5 BigDL application.

Pure numpy / scipy / scikit-learn: no pyspark or BigDL import, so the unit tests can
exercise it without a JVM, and Spark executors can import it (the app ships this file
with ``SparkContext.addPyFile``) to build their share of the training set locally.

Two sources:

* MNIST IDX files (``train-images-idx3-ubyte`` ... optionally ``.gz``) in a directory;
* otherwise scikit-learn's bundled ``load_digits()`` (1,797 real 8x8 digits, offline),
  split into train/validation, upscaled to MNIST's 28x28 layout, and the training part
  augmented to any requested size with seeded random affine transforms.

Every array handed to BigDL is float32 of shape (1, 28, 28), normalised with a mean/std,
and labels are 1-based (``LABEL_OFFSET``), which is what BigDL's ClassNLLCriterion and
Top1Accuracy expect.
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass

import numpy as np

# BigDL (Torch heritage) numbers classes from 1: label k means output column k.
LABEL_OFFSET = 1
NUM_CLASSES = 10
IMAGE_SIZE = 28

IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned byte, 3 dimensions
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned byte, 1 dimension

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# Mean/std of the MNIST training images on a 0..1 scale (the usual constants; BigDL's
# own mnist.py uses the same values times 255).
MNIST_MEAN = 0.13066047740239506
MNIST_STD = 0.3081078

DIGITS_VAL_FRACTION = 0.2
# Augmented training samples when the flags name no size; both engines' apps use it.
DEFAULT_DIGITS_TRAIN_SIZE = 6144
# An 8x8 digit is upscaled into a 20x20 box centred in 28x28, like MNIST's layout.
DIGITS_BOX = 20

# Augmentation ranges (kept mild: the digits must stay recognisable).
AUG_MAX_ROTATION_DEG = 15.0
AUG_SCALE_RANGE = (0.85, 1.15)
AUG_MAX_SHIFT_PX = 3.0


# --------------------------------------------------------------------------- IDX / MNIST


def _open_maybe_gzip(path: str) -> bytes:
    with open(path, "rb") as fh:
        raw = fh.read()
    # Decide by content, not by name: a .gz file starts with 0x1f 0x8b.
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{path}: corrupt gzip data ({exc})") from exc
    return raw


def read_idx(path: str, expected_magic: int) -> np.ndarray:
    """Parse one IDX file (plain or gzip) into a uint8 array.

    Raises ValueError on a wrong magic number or a truncated/oversized payload.
    """
    raw = _open_maybe_gzip(path)
    if len(raw) < 4:
        raise ValueError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    (magic,) = struct.unpack(">i", raw[:4])
    if magic != expected_magic:
        raise ValueError(f"{path}: bad IDX magic number {magic}, expected {expected_magic}")
    ndim = raw[3]
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise ValueError(f"{path}: truncated IDX header")
    dims = struct.unpack(">" + "I" * ndim, raw[4:header_len])
    expected = int(np.prod(dims, dtype=np.int64))
    payload = len(raw) - header_len
    if payload != expected:
        raise ValueError(
            f"{path}: IDX payload has {payload} bytes, dimensions {dims} need {expected}"
            + (" (truncated file)" if payload < expected else "")
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(dims)


def find_mnist_files(data_dir: str) -> dict[str, str] | None:
    """Return the four MNIST file paths in ``data_dir`` (plain or .gz), or None."""
    if not data_dir or not os.path.isdir(data_dir):
        return None
    found: dict[str, str] = {}
    for key, name in MNIST_FILES.items():
        for candidate in (name, name + ".gz"):
            path = os.path.join(data_dir, candidate)
            if os.path.isfile(path):
                found[key] = path
                break
        else:
            return None
    return found


def load_mnist_split(data_dir: str, split: str, limit: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST ``split`` ("train" or "test") as raw uint8 (n, 28, 28) and 0-based labels."""
    files = find_mnist_files(data_dir)
    if files is None:
        raise ValueError(f"{data_dir}: does not hold the four MNIST IDX files")
    images = read_idx(files[f"{split}_images"], IDX_IMAGES_MAGIC)
    labels = read_idx(files[f"{split}_labels"], IDX_LABELS_MAGIC)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(
            f"{data_dir}: {split} images {images.shape} and labels {labels.shape} disagree"
        )
    if limit > 0:
        images, labels = images[:limit], labels[:limit]
    return images, labels


def normalize_mnist(images_u8: np.ndarray) -> np.ndarray:
    """uint8 (n, 28, 28) -> normalised float32 (n, 1, 28, 28)."""
    x = images_u8.astype(np.float32) / 255.0
    return ((x - MNIST_MEAN) / MNIST_STD).astype(np.float32)[:, None, :, :]


def mnist_partition(
    data_dir: str, split: str, limit: int, partition: int, num_partitions: int
) -> tuple[np.ndarray, np.ndarray]:
    """This partition's contiguous share of MNIST ``split`` (capped to ``limit`` if > 0).

    Each executor reads the files itself, so the driver never ships the images.
    Returns normalised features (k, 1, 28, 28) and 1-based labels.
    """
    images, labels = load_mnist_split(data_dir, split, limit)
    start, count = partition_range(len(images), num_partitions, partition)
    sl = slice(start, start + count)
    return normalize_mnist(images[sl]), labels[sl].astype(np.int64) + LABEL_OFFSET


def check_mnist(data_dir: str, limit: int = 0) -> tuple[int, int]:
    """Parse all four files once (on the driver, before Spark starts) so a bad file fails
    fast with a clear message; returns (train samples after the cap, test samples)."""
    train, _ = load_mnist_split(data_dir, "train", limit)
    test, _ = load_mnist_split(data_dir, "test")
    if train.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or test.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"{data_dir}: MNIST images must be 28x28, got {train.shape[1:]}")
    return len(train), len(test)


# ------------------------------------------------------------------------ sklearn digits


@dataclass(frozen=True)
class DigitsSplit:
    """Seeded stratified split of sklearn's digits, upscaled to 28x28 on a 0..1 scale."""

    train_images: np.ndarray  # (n_train, 28, 28) float32, un-augmented sources
    train_labels: np.ndarray  # (n_train,) 0-based
    val_images: np.ndarray  # (n_val, 28, 28) float32
    val_labels: np.ndarray  # (n_val,) 0-based
    mean: float  # statistics of train_images, used to normalise both sets
    std: float


def upscale_digits(images8: np.ndarray) -> np.ndarray:
    """(n, 8, 8) digits on sklearn's 0..16 scale -> (n, 28, 28) float32 on 0..1."""
    from scipy import ndimage

    x = np.asarray(images8, dtype=np.float32) / 16.0
    factor = DIGITS_BOX / x.shape[-1]
    box = ndimage.zoom(x, (1, factor, factor), order=3)  # cubic: smoother strokes
    box = np.clip(box, 0.0, 1.0)
    pad = (IMAGE_SIZE - DIGITS_BOX) // 2
    out = np.zeros((len(x), IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    out[:, pad : pad + DIGITS_BOX, pad : pad + DIGITS_BOX] = box
    return out


def digits_split(seed: int, val_fraction: float = DIGITS_VAL_FRACTION) -> DigitsSplit:
    """Deterministic (per seed) stratified train/validation split of load_digits()."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    tr_x, va_x, tr_y, va_y = train_test_split(
        digits.images,
        digits.target,
        test_size=val_fraction,
        random_state=seed,
        stratify=digits.target,
    )
    train = upscale_digits(tr_x)
    val = upscale_digits(va_x)
    return DigitsSplit(
        train_images=train,
        train_labels=np.asarray(tr_y, dtype=np.int64),
        val_images=val,
        val_labels=np.asarray(va_y, dtype=np.int64),
        mean=float(train.mean()),
        std=float(train.std()),
    )


def _affine(image: np.ndarray, angle_deg: float, scale: float, shift: np.ndarray) -> np.ndarray:
    """Rotate/scale about the centre, then shift; output pixel -> input pixel mapping."""
    from scipy import ndimage

    theta = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    inv = rot.T / scale  # inverse of (scale * rot)
    centre = (np.array(image.shape, dtype=np.float64) - 1.0) / 2.0
    offset = centre - inv @ (centre + shift)
    return ndimage.affine_transform(image, inv, offset=offset, order=1, mode="constant", cval=0.0)


def augmentation_plan(seed: int, total: int, n_sources: int) -> np.ndarray:
    """Per-sample augmentation parameters for the whole training set.

    Row i = (source index, angle, scale, shift_y, shift_x). Drawn for all ``total``
    samples from one seeded generator, so sample i is the same whatever the number of
    partitions (a trial may be resumed with other Spark settings) and each partition
    only transforms its own rows.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x1E7E75]))
    plan = np.empty((total, 5), dtype=np.float64)
    plan[:, 0] = rng.integers(0, n_sources, size=total)
    plan[:, 1] = rng.uniform(-AUG_MAX_ROTATION_DEG, AUG_MAX_ROTATION_DEG, size=total)
    plan[:, 2] = rng.uniform(*AUG_SCALE_RANGE, size=total)
    plan[:, 3:5] = rng.uniform(-AUG_MAX_SHIFT_PX, AUG_MAX_SHIFT_PX, size=(total, 2))
    return plan


def augment(
    split: DigitsSplit, seed: int, total: int, start: int, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """Samples [start, start+count) of the seeded augmented training set.

    Only ``split.train_images`` are transformed; validation images are never used.
    Returns normalised float32 (count, 1, 28, 28) and 1-based labels.
    """
    if not 0 <= start <= start + count <= total:
        raise ValueError(f"range [{start}, {start + count}) outside 0..{total}")
    plan = augmentation_plan(seed, total, len(split.train_images))[start : start + count]
    out = np.empty((count, 1, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    labels = np.empty(count, dtype=np.int64)
    for i, (src, angle, scale, dy, dx) in enumerate(plan):
        k = int(src)
        out[i, 0] = _affine(split.train_images[k], angle, scale, np.array([dy, dx]))
        labels[i] = split.train_labels[k]
    np.clip(out, 0.0, 1.0, out=out)
    out = (out - split.mean) / split.std
    return out.astype(np.float32), labels + LABEL_OFFSET


def digits_train_partition(
    split: DigitsSplit, seed: int, total: int, partition: int, num_partitions: int
) -> tuple[np.ndarray, np.ndarray]:
    """The share of the augmented digits training set that belongs to one partition.

    ``split`` is computed once on the driver and broadcast (importing scikit-learn costs
    ~2 s per Python worker; the split itself is ~5 MB).
    """
    start, count = partition_range(total, num_partitions, partition)
    return augment(split, seed, total, start, count)


def digits_validation(split: DigitsSplit) -> tuple[np.ndarray, np.ndarray]:
    """The held-out original digits (upscaled, never augmented), normalised, 1-based labels."""
    x = ((split.val_images - split.mean) / split.std).astype(np.float32)[:, None, :, :]
    return x, split.val_labels + LABEL_OFFSET


# ------------------------------------------------------------------------------- helpers


def partition_range(total: int, num_partitions: int, index: int) -> tuple[int, int]:
    """(start, count) of partition ``index`` when ``total`` items are split evenly."""
    if num_partitions <= 0 or not 0 <= index < num_partitions:
        raise ValueError(f"partition {index} of {num_partitions}")
    base, extra = divmod(total, num_partitions)
    start = index * base + min(index, extra)
    return start, base + (1 if index < extra else 0)
