"""What a RunContext knows of a tensor project (DESIGN §3b): its splits as TensorSplits, their labels, the
classes, the modality of the inputs. Mixed into RunContext; table projects never reach these paths.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

from ..findings import SkipCheck
from ..project.config import ProjectError
from ..project.usercode import UserCodeError, call_user
from .inputs import (TensorRows, TensorSplit, check_dataset, dataset_metadata, holdout, image_folder_dataset,
                     label_value, modality_of, split_item)

SPLITS = ("train", "valid", "test")
TENSOR_TARGET = "label"  # the column name the tensor splits' label frames use


class TensorProjectMixin:
    """The tensor-project half of RunContext (self.config, self.seed, self.shared, self.function, ...)."""

    @property
    def is_tensor(self) -> bool:
        return self.config.is_tensor

    # --- the splits -----------------------------------------------------------------------------
    @cached_property
    def tensor_splits(self) -> dict[str, TensorSplit]:
        """train, valid (held out of train when the project has none) and test when there is one."""
        cfg = self.config
        if cfg.datamodule:
            datasets, collate = self._datamodule_datasets()
            source = f"[model] datamodule = \"{cfg.datamodule}\""
        else:
            datasets = self._function_or_folder_datasets()
            collate = self.function("collate")
            source = (f"[model] dataset = \"{cfg.dataset}\"" if cfg.dataset else "[data] train (image folder)")
        if "train" not in datasets:
            raise ProjectError(f"{cfg.path}: {source} gave no train split. It must return a Dataset for "
                               f"\"train\" (and may raise KeyError for a split it does not have).")
        names = self._class_names(datasets["train"])
        splits = {name: TensorSplit(name, ds, collate, f"{source} ({name})", cfg, self.seed, names)
                  for name, ds in datasets.items()}
        if "valid" not in splits:
            train = splits["train"]
            labels = train.raw_labels() if train.target_kind() == "class" else None
            tr, va = holdout(train.dataset, labels, self.seed)
            splits["train"] = TensorSplit("train", tr, collate, train.source, cfg, self.seed, names)
            splits["valid"] = TensorSplit("valid", va, collate, f"{train.source}, 20% held out", cfg,
                                          self.seed, names)
        for split in splits.values():
            if len(split) == 0:
                raise ProjectError(f"{cfg.path}: {split.source} is empty (len 0). Give it at least a few items.")
        return {k: splits[k] for k in SPLITS if k in splits}

    def _function_or_folder_datasets(self) -> dict[str, Any]:
        cfg = self.config
        make = self.function("dataset")
        if make is None and cfg.images:
            return self._table_image_datasets()
        out = {}
        for name in SPLITS:
            if make is not None:
                ds = self._call_make_dataset(make, name)
            else:
                path = getattr(cfg, name)
                ds = image_folder_dataset(path) if path is not None and path.is_dir() else None
            if ds is not None:
                out[name] = ds
        return out

    def _table_image_datasets(self) -> dict[str, Any]:
        """[data] images = "path": each split is a table of image paths, its target and metadata."""
        from ..io.readers import read_table
        from .inputs import TableImageDataset

        cfg = self.config
        if not cfg.target:
            raise ProjectError(f"{cfg.path}: [data] images needs [data] target, the column holding the label.")
        frames = {name: read_table(getattr(cfg, name), f"[data] {name}") for name in SPLITS
                  if getattr(cfg, name) not in (None, Path())}
        for name, df in frames.items():
            for column in (cfg.images, cfg.target):
                if column not in df.columns:
                    raise ProjectError(f"{cfg.path}: [data] {'images' if column == cfg.images else 'target'} = "
                                       f"\"{column}\" is not a column of the {name} split ({getattr(cfg, name)}).")
        classes = cfg.classes
        if classes is None and cfg.task != "regression":
            values = frames["train"][cfg.target].dropna().unique().tolist()
            classes = sorted(values, key=lambda v: (isinstance(v, str), v)) if len(values) <= 50 else None
        return {name: TableImageDataset(df, cfg.images, cfg.target, getattr(cfg, name).parent, classes)
                for name, df in frames.items()}

    def _call_make_dataset(self, make, split: str):
        """make_dataset(split): None for a split it raises KeyError/ValueError for (DESIGN §3b); any other
        failure of the train split stops the run with a message naming the function."""
        where = f"[model] dataset = \"{self.config.dataset}\""
        try:
            ds = call_user(self.config, f"make_dataset(\"{split}\")", make, split, passthrough=(KeyError, ValueError))
        except (KeyError, ValueError):
            if split == "train":
                raise ProjectError(f"{self.config.path}: {where} raised for \"train\"; it must return the "
                                   f"training Dataset.") from None
            return None
        except UserCodeError as exc:
            raise ProjectError(f"{self.config.path}: {where} failed for split \"{split}\": {exc}\n"
                               f"make_dataset(split) must return a torch Dataset of (x, y) items for \"train\", "
                               f"\"valid\" and \"test\" (raise KeyError for a split it does not have)."
                               f"\n\n{exc.user_traceback}".rstrip()) from None
        try:
            ds = check_dataset(ds, f"make_dataset(\"{split}\")")
            if len(ds):
                split_item(call_user(self.config, f"make_dataset(\"{split}\")[0]", ds.__getitem__, 0),
                           f"make_dataset(\"{split}\")[0]")
            return ds
        except UserCodeError as exc:
            raise ProjectError(f"{self.config.path}: {where}: {exc}. make_dataset(split) must return a "
                               f"torch.utils.data.Dataset whose items are (x, y) pairs.\n\n"
                               f"{exc.user_traceback}".rstrip()) from None

    def _datamodule_datasets(self):
        """The splits of a LightningDataModule: setup(), then its loaders' datasets (and collate_fn)."""
        cfg = self.config
        where = f"[model] datamodule = \"{cfg.datamodule}\""
        cls = self.function("datamodule")
        try:
            dm = call_user(cfg, "datamodule", cls)
            if hasattr(dm, "setup"):
                call_user(cfg, "datamodule.setup", dm.setup, "fit")
            out, collate = {}, None
            for name, method in (("train", "train_dataloader"), ("valid", "val_dataloader"),
                                 ("test", "test_dataloader")):
                loader = self._datamodule_loader(dm, method, name)
                if loader is None:
                    continue
                out[name] = check_dataset(getattr(loader, "dataset", None), f"{cfg.datamodule}.{method}()")
                if name == "train":
                    collate = _custom_collate(loader)
            return out, collate
        except UserCodeError as exc:
            raise ProjectError(f"{cfg.path}: {where} failed: {exc}\nA LightningDataModule must build its "
                               f"Datasets in setup() and return DataLoaders from train_dataloader() and "
                               f"val_dataloader().\n\n{exc.user_traceback}".rstrip()) from None

    def _datamodule_loader(self, dm, method: str, name: str):
        fn = getattr(dm, method, None)
        defined_by = getattr(getattr(type(dm), method, None), "__module__", "") or ""
        if fn is None or defined_by.split(".")[0] in ("lightning", "pytorch_lightning"):
            return None  # the base class's placeholder: this module does not define the loader
        if name == "test" and hasattr(dm, "setup"):
            call_user(self.config, "datamodule.setup", dm.setup, "test")
        try:
            return call_user(self.config, f"datamodule.{method}", fn, passthrough=(NotImplementedError,))
        except NotImplementedError:  # LightningDataModule's default for loaders a module does not define
            return None

    def _class_names(self, train_dataset) -> list | None:
        if self.config.classes is not None:
            return list(self.config.classes)
        names = getattr(train_dataset, "classes", None)
        if isinstance(names, (list, tuple)) and names and all(isinstance(n, (str, int)) for n in names):
            return list(names)
        return None

    def tensor_split(self, split: str) -> TensorSplit:
        try:
            return self.tensor_splits[split]
        except KeyError:
            raise SkipCheck(f"no {split} split: make_dataset raised KeyError for it") from None

    def tensor_rows(self, split: str) -> TensorRows:
        return TensorRows(self.tensor_split(split))

    # --- what the items are ---------------------------------------------------------------------
    @cached_property
    def modality(self) -> str:
        """"table", or for a tensor project "images", "tokens" or "tensor" (from the first train item)."""
        if not self.is_tensor:
            return "table"
        x, _ = self.tensor_split("train").item(0)
        return modality_of(x)

    @cached_property
    def target_kind(self) -> str:
        """"class", "value" or "sequence" (tensor projects); tables: "class" or "value" by the task."""
        if not self.is_tensor:
            return "class" if self.is_classification else "value"
        return self.tensor_split("train").target_kind()

    def tensor_frame(self, split: str):
        """A tensor split as a table of its labels (column "label"): what the problem, metrics and
        error steps read as "the rows". Sequence targets have no label column."""
        import pandas as pd

        s = self.tensor_split(split)
        frame = pd.DataFrame(index=range(len(s)))
        if self.target_kind != "sequence":
            values = s.raw_labels()
            names = s.class_names
            if names is not None and self.target_kind == "class":
                values = [names[v] if isinstance(v, int) and 0 <= v < len(names) else v for v in values]
            frame[TENSOR_TARGET] = values
        return frame

    def tensor_slice_frame(self, split: str):
        """(frame, numeric columns, categorical columns) to slice a tensor split by (errors.weak_slices):
        its label, metadata the Dataset exposes (a `metadata` DataFrame, one row per item), and simple
        input statistics — brightness and contrast of images, length of token sequences — never raw
        pixel or id values."""
        def compute():
            import pandas as pd

            s = self.tensor_split(split)
            frame = self.tensor_frame(split).reset_index(drop=True)
            categorical = [TENSOR_TARGET] if TENSOR_TARGET in frame.columns else []
            meta = dataset_metadata(s.dataset, len(frame))
            if meta is not None:
                for c in meta.columns:
                    frame[f"meta:{c}"] = meta[c].to_numpy()
                    numeric_col = pd.api.types.is_numeric_dtype(meta[c]) and not pd.api.types.is_bool_dtype(meta[c])
                    (None if numeric_col else categorical.append(f"meta:{c}"))
            stats = _input_statistics(s, self.modality)
            for name, values in stats.items():
                frame[name] = values
            numeric = [c for c in frame.columns if c not in categorical and c != TENSOR_TARGET]
            return frame, numeric, categorical

        return self.shared(("RunContext.tensor_slice_frame", split), compute)

    def sequence_tokens(self, split: str = "train", limit: int = 200_000):
        """The target ids of a split's sequence targets, flattened (at most `limit`, in item order)."""
        def compute():
            import numpy as np
            import torch

            out, total = [], 0
            for _, _, y in self.tensor_split(split).iter_items():
                values = torch.as_tensor(y).reshape(-1).numpy()
                out.append(values)
                total += len(values)
                if total >= limit:
                    break
            return np.concatenate(out)[:limit] if out else np.zeros(0, dtype=np.int64)

        return self.shared(("RunContext.sequence_tokens", split, limit), compute)

    def tensor_classes(self) -> list:
        """Class labels for a tensor project: [data] classes, the Dataset's `classes`, else 0..max label."""
        names = self.tensor_split("train").class_names
        if names is not None:
            return names
        if self.target_kind == "sequence":
            return list(range(self.output_width()))
        labels = [v for s in self.tensor_splits.values() for v in s.raw_labels() if isinstance(v, int)]
        return list(range(max(labels) + 1)) if labels else []

    def tensor_y(self, split: str):
        if self.target_kind == "sequence":
            raise SkipCheck("sequence targets (one label per position): per-example labels do not apply")
        import numpy as np

        y = self.tensor_split(split).labels()
        if self.is_classification:
            n = len(self.classes)
            return np.where((y >= 0) & (y < n), y, -1).astype(np.int64)
        return y

    def output_width(self) -> int:
        """The last dimension of the model's output on one train batch (sequence models: the vocabulary)."""
        def compute():
            import torch

            from .inputs import feed

            model = self.first_model()
            xb, _ = self.tensor_split("train").batch(range(min(2, len(self.tensor_split("train")))))
            was = model.training
            model.eval()
            with torch.no_grad():
                out = feed(model, xb)
            model.train(was)
            tensor = out if isinstance(out, torch.Tensor) else getattr(out, "logits", None)
            if tensor is None and isinstance(out, (tuple, list)) and out:
                tensor = out[0]
            if not isinstance(tensor, torch.Tensor):
                raise UserCodeError("the model's forward() returned no tensor", "")
            return int(tensor.shape[-1])

        return self.shared(("RunContext.output_width",), compute)

    def example_size(self) -> int:
        """n_inputs for a tensor project's build_model(n_inputs, n_outputs): the size of one item's x."""
        from .inputs import input_tensors

        x, _ = self.tensor_split("train").item(0)
        tensors = input_tensors(x)
        return int(tensors[0][1].numel()) if tensors else 0


def _input_statistics(split: TensorSplit, modality: str) -> dict[str, list[float]]:
    """Per item: brightness (mean) and contrast (std) of an image; length of a token sequence."""
    from .inputs import input_tensors

    stats: dict[str, list[float]] = {}
    if modality not in ("images", "tokens"):
        return stats
    for _, x, _ in split.iter_items():
        t = input_tensors(x)[0][1]
        if modality == "images":
            stats.setdefault("brightness", []).append(float(t.float().mean()))
            stats.setdefault("contrast", []).append(float(t.float().std()))
        else:
            stats.setdefault("length", []).append(float(t.shape[0]))
    return stats


def _custom_collate(loader):
    """A DataLoader's collate_fn unless it is torch's default."""
    from torch.utils.data import default_collate

    fn = getattr(loader, "collate_fn", None)
    if fn is None or fn is default_collate or getattr(fn, "__name__", "") == "default_collate":
        return None
    return fn


__all__ = ["TensorProjectMixin", "TENSOR_TARGET", "label_value"]
