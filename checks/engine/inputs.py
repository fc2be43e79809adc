"""The inputs model for tensor projects (DESIGN §3b): a split that is a torch Dataset instead of a table.

A `TensorSplit` wraps the Dataset a project gives (make_dataset(split), an image folder, a
LightningDataModule's loaders) and answers what the checks ask of it: its length, an item, its labels,
a content hash per item, and seeded DataLoaders with the project's collate that yield batches exactly as
the model receives them. The calling convention lives here too: how a model is fed a batch (a tensor,
a tuple, a dict) and how a batch moves to a device.

Table projects never come here: they keep the float matrix of RunContext.X.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from ..findings import SkipCheck
from ..project.usercode import UserCodeError, call_user

LOADER_BATCH = 256        # items per batch when checks stream a split (not the training batch size)
HOLDOUT_FRACTION = 0.2    # as for tables: valid held out of train when the project gives none


# --- the calling convention ----------------------------------------------------------------------

def input_tensors(x) -> list[tuple[str, Any]]:
    """The tensors of an item or a batch, named: a tensor -> [("x", t)], a tuple -> x[0], x[1], ...,
    a dict -> its keys. Non-tensor members (strings, lengths as ints) are left out."""
    import torch

    if isinstance(x, torch.Tensor):
        return [("x", x)]
    if isinstance(x, dict):
        return [(str(k), v) for k, v in x.items() if isinstance(v, torch.Tensor)]
    if isinstance(x, (tuple, list)):
        return [(f"x[{i}]", v) for i, v in enumerate(x) if isinstance(v, torch.Tensor)]
    return []


def to_device(x, device: str):
    """A batch (tensor, tuple, list or dict of tensors) on `device`; other values as they are."""
    import torch

    if isinstance(x, torch.Tensor):
        return x.to(device, non_blocking=True)
    if isinstance(x, dict):
        return {k: to_device(v, device) for k, v in x.items()}
    if isinstance(x, tuple):
        return tuple(to_device(v, device) for v in x)
    if isinstance(x, list):
        return [to_device(v, device) for v in x]
    return x


def feed(model, xb):
    """model(x), model(*x) for a tuple, model(**x) for a dict (DESIGN §3b)."""
    if isinstance(xb, dict):
        return model(**xb)
    if isinstance(xb, tuple):
        return model(*xb)
    return model(xb)


def batch_size_of(xb) -> int:
    """The number of examples in a batch: the first dimension of its first tensor."""
    tensors = input_tensors(xb)
    if not tensors or tensors[0][1].dim() == 0:
        return 1
    return int(tensors[0][1].shape[0])


def replace_inputs(xb, fn: Callable):
    """The batch with fn applied to each of its tensors (same structure)."""
    import torch

    if isinstance(xb, torch.Tensor):
        return fn(xb)
    if isinstance(xb, dict):
        return {k: replace_inputs(v, fn) for k, v in xb.items()}
    if isinstance(xb, (tuple, list)):
        return type(xb)(replace_inputs(v, fn) for v in xb)
    return xb


def modality_of(x) -> str:
    """"images" for a float (C,H,W) tensor with C in 1, 3, 4; "tokens" for integer ids (1-D, or a dict
    with input_ids); "tensor" otherwise."""
    import torch

    if isinstance(x, dict) and isinstance(x.get("input_ids"), torch.Tensor):
        return "tokens"
    tensors = input_tensors(x)
    if not tensors:
        return "tensor"
    t = tensors[0][1]
    if t.is_floating_point() and t.dim() == 3 and t.shape[0] in (1, 3, 4) and min(t.shape[1:]) >= 4:
        return "images"
    if not t.is_floating_point() and not t.is_complex() and t.dtype != torch.bool and t.dim() == 1:
        return "tokens"
    return "tensor"


# --- items -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TargetKind:
    """What a split's y is: "class" (an index), "value" (a float) or "sequence" (a tensor per item)."""

    kind: str


def split_item(item, where: str):
    """(x, y) of a Dataset item, or a UserCodeError saying what an item must be."""
    if isinstance(item, (tuple, list)) and len(item) == 2:
        return item[0], item[1]
    shown = type(item).__name__ + (f" of length {len(item)}" if isinstance(item, (tuple, list)) else "")
    raise UserCodeError(f"{where} returned an item that is a {shown}; each item must be a pair (x, y): x a tensor, "
                        f"a tuple or a dict of tensors, y a class index, a float or a tensor", "")


def label_value(y):
    """A scalar label as a Python number, or None when y is a sequence (a tensor with elements)."""
    import numpy as np
    import torch

    if isinstance(y, torch.Tensor):
        if y.dim() == 0 or y.numel() == 1 and y.dim() <= 1:
            return y.reshape(()).item()
        return None
    if isinstance(y, np.ndarray):
        return y.reshape(()).item() if y.size == 1 else None
    if isinstance(y, (bool, int, float, np.integer, np.floating)):
        return y.item() if hasattr(y, "item") else y
    return None


def content_hash(x) -> bytes:
    """A digest of an item's input tensors (dtype, shape and bytes): equal inputs, equal digest."""
    import torch

    digest = hashlib.blake2b(digest_size=16)
    for name, t in input_tensors(x):
        t = t.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())  # any dtype, bfloat16 too
    return digest.digest()


# --- a split ----------------------------------------------------------------------------------------

class TensorSplit:
    """One split of a tensor project: a torch Dataset of (x, y) items, the project's collate, and what
    the checks read from it (computed once)."""

    def __init__(self, name: str, dataset, collate: Callable | None, source: str, config, seed: int = 0,
                 class_names: list | None = None):
        self.name, self.dataset, self.collate, self.source = name, dataset, collate, source
        self.config, self.seed = config, seed
        self.class_names = class_names
        self._labels = None
        self._hashes = None

    def __len__(self) -> int:
        try:
            return len(self.dataset)
        except TypeError:
            raise UserCodeError(f"{self.source} returned a Dataset without __len__; mltriage needs a map-style "
                                f"Dataset (with __len__ and __getitem__)", "") from None

    def __repr__(self) -> str:
        return f"TensorSplit({self.name}, {len(self)} items)"

    def item(self, i: int):
        """The raw (x, y) of item i, as the Dataset returns it (CPU)."""
        raw = call_user(self.config, f"{self.source}[{i}]", self.dataset.__getitem__, int(i))
        return split_item(raw, f"{self.source}[{int(i)}]")

    def iter_items(self, indices=None) -> Iterator[tuple[int, Any, Any]]:
        """(i, x, y) for the given indices (default: all), in order, one at a time (streaming)."""
        for i in (range(len(self)) if indices is None else indices):
            x, y = self.item(int(i))
            yield int(i), x, y

    def collate_items(self, items: list):
        """A batch from (x, y) items with the project's collate (else torch's default_collate)."""
        from torch.utils.data import default_collate

        if self.collate is not None:
            out = call_user(self.config, "collate", self.collate, items)
            return split_item(out, "[model] collate")
        try:
            out = default_collate(items)
        except (RuntimeError, TypeError) as exc:
            shapes = sorted({tuple(t.shape) for x, _ in items[:50] for _, t in input_tensors(x)})[:4]
            raise UserCodeError(
                f"the {self.name} items cannot be stacked into a batch ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:120]}); shapes seen: {shapes}. Items of different shapes need a "
                f"[model] collate = \"collate\" that pads them (collate(batch) -> (xb, yb))", "") from None
        return out[0], out[1]

    def batch(self, indices, device: str = "cpu"):
        """(xb, yb) for these item indices, collated and on `device`."""
        xb, yb = self.collate_items([self.item(int(i)) for i in indices])
        return to_device(xb, device), to_device(yb, device)

    def loader(self, indices=None, batch_size: int | None = None) -> Iterator[tuple[Any, Any]]:
        """Collated CPU batches (xb, yb) over the indices (default: all), in order: exactly what the model
        receives, with the project's collate."""
        import numpy as np

        order = np.arange(len(self)) if indices is None else np.asarray(indices)
        size = batch_size or LOADER_BATCH
        for start in range(0, len(order), size):
            yield self.batch(order[start:start + size])

    # --- labels ----------------------------------------------------------------------------------
    def raw_labels(self) -> list:
        """Each item's y as a Python number (None for sequence targets). Reads `targets` when the Dataset
        has them (ImageFolder and torchvision datasets: no image is decoded), else every item."""
        if self._labels is None:
            known = _dataset_targets(self.dataset, len(self))
            self._labels = known if known is not None else [label_value(y) for _, _, y in self.iter_items()]
        return self._labels

    def target_kind(self) -> str:
        _, y = self.item(0)
        value = label_value(y)
        if value is None:
            return "sequence"
        return "class" if isinstance(value, (bool, int)) else "value"

    def labels(self):
        """Encoded labels: int64 class indices, or float32 values; SkipCheck for sequence targets."""
        import numpy as np

        values = self.raw_labels()
        if any(v is None for v in values[:1]) or self.target_kind() == "sequence":
            raise SkipCheck("sequence targets (one label per position): per-example label checks do not apply")
        if all(isinstance(v, (bool, int)) for v in values):
            return np.asarray(values, dtype=np.int64)
        return np.asarray(values, dtype=np.float32)

    def hashes(self) -> list[bytes]:
        """The content hash of every item's input (streaming; kept: 16 bytes per item)."""
        if self._hashes is None:
            self._hashes = [content_hash(x) for _, x, _ in self.iter_items()]
        return self._hashes


def unwrap_subsets(dataset):
    """(the Dataset under any torch Subsets, the indices into it or None)."""
    indices = None
    while hasattr(dataset, "dataset") and hasattr(dataset, "indices"):  # torch Subset (possibly nested)
        sub = list(dataset.indices)
        indices = sub if indices is None else [sub[i] for i in indices]
        dataset = dataset.dataset
    return dataset, indices


def dataset_metadata(dataset, n: int):
    """The `metadata` DataFrame a Dataset exposes (one row per item), through Subsets; None otherwise."""
    import pandas as pd

    base, indices = unwrap_subsets(dataset)
    meta = getattr(base, "metadata", None)
    if not isinstance(meta, pd.DataFrame):
        return None
    if indices is not None and len(meta) == len(base):
        meta = meta.iloc[indices]
    return meta.reset_index(drop=True) if len(meta) == n else None


def _dataset_targets(dataset, n: int):
    """A Dataset's `targets` (torchvision datasets, ImageFolder), through Subsets, when present and
    complete; None otherwise."""
    dataset, indices = unwrap_subsets(dataset)
    targets = getattr(dataset, "targets", None)
    if targets is None:
        return None
    try:
        values = [label_value(t) for t in list(targets)]
    except Exception:  # noqa: BLE001 - an odd `targets` attribute: read the items instead
        return None
    if indices is not None:
        values = [values[i] for i in indices]
    if len(values) != n or any(v is None for v in values):
        return None
    return values


# --- where splits come from -------------------------------------------------------------------------

def check_dataset(dataset, where: str):
    """A map-style Dataset (__getitem__ and __len__), or a UserCodeError saying what must be returned."""
    if dataset is None or isinstance(dataset, (str, bytes)) or not hasattr(dataset, "__getitem__") \
            or not hasattr(dataset, "__len__"):
        raise UserCodeError(f"{where} returned {type(dataset).__name__}, not a Dataset: it must return a "
                            f"torch.utils.data.Dataset (or any object with __len__ and __getitem__) whose items "
                            f"are (x, y) pairs", "")
    return dataset


class ImageFolderDataset:
    """A folder in ImageFolder layout read as torchvision's ImageFolder + ToTensor reads it: classes are
    the sorted sub-folder names, items (float (C,H,W) in [0, 1], class index) in sorted path order, RGB.
    Written here with PIL so that image folders need no torchvision (whose PyPI wheels need CUDA
    libraries a CPU-only PyTorch lacks)."""

    def __init__(self, root):
        from pathlib import Path

        from ..project.config import IMAGE_SUFFIXES

        self.root = Path(root)
        self.classes = sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        self.samples = [(str(f), k) for k, name in enumerate(self.classes)
                        for f in sorted((self.root / name).rglob("*"))
                        if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
        self.targets = [k for _, k in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        import numpy as np
        import torch
        from PIL import Image

        path, label = self.samples[i]
        with Image.open(path) as img:
            array = np.asarray(img.convert("RGB"), dtype=np.uint8)
        return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0), label


class TableImageDataset:
    """A table whose column `images` holds image file paths (relative to the table's folder): items are
    (float (C,H,W) in [0, 1], class index or value); the other columns are the items' metadata."""

    def __init__(self, df, column: str, target: str, folder, classes: list | None):
        from pathlib import Path

        import pandas as pd

        self.folder = Path(folder)
        self.paths = df[column].astype("string").fillna("").tolist()
        labels = df[target]
        self.classes = classes
        if classes is not None:
            index = {str(c): i for i, c in enumerate(classes)}
            self.targets = [index.get(str(v.item() if hasattr(v, "item") else v), -1) for v in labels.tolist()]
        else:
            self.targets = pd.to_numeric(labels, errors="coerce").astype(float).tolist()
        self.metadata = df.drop(columns=[column, target]).reset_index(drop=True)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        import numpy as np
        import torch
        from PIL import Image

        path = self.folder / self.paths[i]
        with Image.open(path) as img:
            array = np.asarray(img.convert("RGB"), dtype=np.uint8)
        return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0), self.targets[i]


def image_folder_dataset(path):
    """An ImageFolder-layout folder as a Dataset of (float (C,H,W) in [0, 1], class index)."""
    return ImageFolderDataset(path)


def holdout(dataset, labels: list | None, seed: int):
    """(train, valid) Subsets of a Dataset, a seeded 20% held out (stratified when labels are classes)."""
    import numpy as np
    from torch.utils.data import Subset

    n = len(dataset)
    index = np.arange(n)
    stratify = None
    if labels is not None and all(isinstance(v, (bool, int)) for v in labels):
        values, counts = np.unique(np.asarray(labels), return_counts=True)
        if counts.min() >= 2 and len(values) <= n * HOLDOUT_FRACTION:
            stratify = np.asarray(labels)
    from sklearn.model_selection import train_test_split

    train_idx, valid_idx = train_test_split(index, test_size=HOLDOUT_FRACTION, random_state=seed, shuffle=True,
                                            stratify=stratify)
    return Subset(dataset, sorted(train_idx.tolist())), Subset(dataset, sorted(valid_idx.tolist()))


class TensorRows:
    """Some items of a TensorSplit, indexable like the rows of an array (X[idx], X[:n], len(X)), so the
    model machinery that takes a float matrix for tables takes these for tensor projects."""

    def __init__(self, split: TensorSplit, indices=None):
        import numpy as np

        self.split = split
        self.indices = np.arange(len(split)) if indices is None else np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, key) -> "TensorRows":
        return TensorRows(self.split, self.indices[key])

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self),)

    def batch(self, positions, device: str = "cpu"):
        """(xb, yb) of the rows at these positions (0..len-1), collated, on device."""
        return self.split.batch(self.indices[positions], device)

    def batches(self, size: int, device: str = "cpu"):
        """(xb, yb) over all rows in order, `size` at a time."""
        for start in range(0, len(self), size):
            yield self.split.batch(self.indices[start:start + size], device)


def is_tensor_rows(X) -> bool:
    return isinstance(X, TensorRows)
