"""Load and validate `mltriage.toml` (DESIGN §3, contract) into typed objects.

Every mistake becomes a ProjectError whose message names the file, the key and what to do; the
CLI prints it and exits 2. Nothing here imports pandas or torch.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The names a project file may use come from the shared vocabulary (re-exported for tui/ and tests).
from ..vocab import (CLASSIFICATION_METRICS, METRICS, OPTIMIZERS, REGRESSION_METRICS,  # noqa: F401
                     SLICE_METRICS, TASKS)
# The schema and its validators live in schema.py; every name is importable from here as before.
from .schema import (MAX_STATUS_VALUES, PROJECT_FILE, SCHEMA, SLICE_SCHEMA, TOP_LEVEL,  # noqa: F401
                     ProjectError, _check_table, _choice, _resolve, closest, did_you_mean)
DEFAULT_BUDGET_SECONDS = 60.0


@dataclass
class SliceSpec:
    name: str
    where: str
    metric: str = "accuracy"
    min: float | None = None
    max: float | None = None


@dataclass
class ProjectConfig:
    path: Path                      # the mltriage.toml file
    root: Path                      # its folder; relative paths resolve against it
    name: str
    task: str | None = None
    metric: str | None = None
    train: Path = Path()
    valid: Path | None = None
    test: Path | None = None
    unlabeled: Path | None = None      # [data] unlabeled: a pool of rows without labels (errors.similar_unlabeled)
    target: str = ""
    features: list[str] | None = None
    ignore: list[str] = field(default_factory=list)
    text: list[str] | None = None
    classes: list[Any] | None = None
    model_code: str | None = None
    build: str | None = None
    featurize: str | None = None
    loss: str | None = None
    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int = 64
    epochs: int = 10
    train_step: str | None = None
    predict: str | None = None
    checkpoint: Path | None = None
    # tensor projects (DESIGN §3b)
    images: str | None = None          # [data] images: the table column holding image file paths
    engine: str = "auto"               # [data] engine: pandas | duckdb | dask | auto (DESIGN §3, data beyond memory)
    scheduler: str | None = None       # [data] scheduler: the Dask scheduler (engine = "dask"); absent: local
    dataset: str | None = None         # make_dataset(split) -> torch Dataset; replaces featurize
    collate: str | None = None         # collate_fn for mltriage's DataLoaders
    lightning: str | None = None       # a LightningModule class: model, loss and optimizer come from it
    datamodule: str | None = None      # a LightningDataModule class: the splits come from it
    decode: str | None = None          # decode(ids) -> str, to show token inputs as text
    scheduler: str | None = None       # make_scheduler(optimizer) -> an lr scheduler, stepped per batch
    training_log: Path | None = None
    monitor: Path | None = None        # [artifacts] monitor: a monitor file or folder (DESIGN §9)
    predictions: Path | None = None
    previous_predictions: Path | None = None
    slices: list[SliceSpec] = field(default_factory=list)
    budget_seconds: float = DEFAULT_BUDGET_SECONDS
    check_skip: list[str] = field(default_factory=list)             # [checks] skip: never run these
    check_max_status: dict[str, str] = field(default_factory=dict)  # [checks.max_status]: id -> cap
    logs_only: bool = False            # [artifacts] without [data]: the logs of a run are the whole project

    @property
    def has_model(self) -> bool:
        return self.model_code is not None and (self.build is not None or self.lightning is not None)

    @property
    def is_tensor(self) -> bool:
        """A tensor project (DESIGN §3b): a Dataset, a LightningDataModule, or a folder of images."""
        return bool(self.dataset or self.datamodule or self.image_folder or self.images)

    @property
    def image_folder(self) -> bool:
        """[data] train is a folder in ImageFolder layout (one sub-folder of images per class)."""
        return self.train is not None and self.train != Path() and self.train.is_dir() \
            and not is_parquet_dataset(self.train)

    @property
    def state_dir(self) -> Path:
        return self.root / ".mltriage"


def find_project_file(target: str | Path = ".") -> Path:
    """The mltriage.toml for a folder or a file path; ProjectError when there is none."""
    path = Path(target).expanduser()
    if path.is_dir():
        path = path / PROJECT_FILE
    if not path.exists():
        raise ProjectError(
            f"No project file at {path.resolve()}.\n"
            f"Point mltriage at a folder that holds {PROJECT_FILE} (or the file itself), or create one "
            f"with `mltriage init --data <your training file> --target <label column>`."
        )
    if path.is_dir():
        raise ProjectError(f"{path.resolve()} is a folder, not a project file.")
    if not path.is_file():  # a FIFO or a device would block the read forever
        raise ProjectError(f"{path.resolve()} is not a regular file (a pipe or a device?). Point mltriage at "
                           f"the {PROJECT_FILE} file or its folder.")
    if path.suffix.lower() in (".csv", ".tsv", ".parquet", ".pq", ".jsonl", ".ndjson", ".npz"):
        raise ProjectError(f"{path.resolve()} is a data file, not a project file. Point mltriage at the folder "
                           f"holding {PROJECT_FILE}, or write one with `mltriage init --data {path}`.")
    return path


def parse_toml(file: Path) -> dict[str, Any]:
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ProjectError(f"{file}: cannot be read ({exc.strerror}).") from None
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark (Windows editors write one) is not an error
    except UnicodeDecodeError:
        raise ProjectError(f"{file}: is not UTF-8 text. Save it as UTF-8.") from None
    if not text.strip():
        raise ProjectError(
            f"{file}: is empty. It needs at least:\n\n[data]\ntrain = \"data/train.csv\"\ntarget = \"label\"\n\n"
            f"`mltriage init --data FILE` writes a starter file."
        )
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProjectError(f"{file}: is not valid TOML: {exc}. Fix the syntax at that line.") from None
    except RecursionError:
        raise ProjectError(f"{file}: nests arrays or tables too deeply to be a project file.") from None


def load_project(target: str | Path = ".") -> ProjectConfig:
    """Read and validate the project file. Raises ProjectError with a user-facing message."""
    file = find_project_file(target).resolve()
    root = file.parent
    doc = parse_toml(file)
    for key in doc:
        if key not in TOP_LEVEL:
            raise ProjectError(
                f"{file}: unknown section [{key}].{did_you_mean(key, TOP_LEVEL)}\n"
                f"Valid sections: {', '.join('[' + s + ']' for s in SCHEMA)} and [[slices]]."
            )
    for section, schema in SCHEMA.items():
        _check_table(file, section, doc.get(section, {}), schema)
    project, data = doc.get("project", {}), doc.get("data", {})
    model, artifacts, budget = doc.get("model", {}), doc.get("artifacts", {}), doc.get("budget", {})

    cfg = ProjectConfig(path=file, root=root, name=project.get("name") or root.name)
    _load_model_section(cfg, file, root, model)  # its own mistakes first: they say what the project is
    # With a Dataset or a LightningDataModule the splits come from project code (DESIGN §3b); a folder of
    # images (ImageFolder layout) holds its labels in its sub-folder names: neither needs a target column.
    from_code = isinstance(model, dict) and any(k in model for k in ("dataset", "datamodule"))
    # A project may be the logs of a run alone (issue 16): [artifacts] with a training log or a monitor file
    # and no [data]; the training checks read the log, every other check says it needs data.
    cfg.logs_only = not data and not from_code and any(k in artifacts for k in ("training_log", "monitor"))
    for key in ("train", "target"):
        if cfg.logs_only:
            break
        if key in data or from_code:
            continue
        if key == "target" and _is_image_folder(root, data.get("train")):
            continue
        example = 'train = "data/train.csv"' if key == "train" else 'target = "label"'
        raise ProjectError(f"{file}: [data] {key} is required. Add it, for example:\n\n[data]\n{example}\n\n"
                           f"(A PyTorch Dataset instead of a table: [model] dataset = \"make_dataset\", "
                           f"see docs/project-file.md.)")

    cfg.task = _choice(file, "[project] task", project.get("task"), TASKS)
    cfg.metric = _choice(file, "[project] metric", project.get("metric"), METRICS)
    if cfg.task and cfg.metric:
        allowed = CLASSIFICATION_METRICS if cfg.task == "classification" else REGRESSION_METRICS
        if cfg.metric not in allowed:
            raise ProjectError(
                f"{file}: [project] metric = \"{cfg.metric}\" does not fit task = \"{cfg.task}\". "
                f"Use one of: {', '.join(allowed)}."
            )
    cfg.train = _resolve(root, file, "[data] train", data["train"]) if "train" in data else Path()
    cfg.valid = _resolve(root, file, "[data] valid", data.get("valid"))
    cfg.test = _resolve(root, file, "[data] test", data.get("test"))
    cfg.unlabeled = _resolve(root, file, "[data] unlabeled", data.get("unlabeled"))  # errors.similar_unlabeled
    if cfg.unlabeled and cfg.unlabeled.suffix.lower() not in TABLE_SUFFIXES and not is_parquet_dataset(cfg.unlabeled):
        raise ProjectError(f"{file}: [data] unlabeled = \"{data['unlabeled']}\" is not a table file "
                           f"({', '.join(TABLE_SUFFIXES)} or a Parquet folder) of the training feature columns.")
    _check_split_folders(file, cfg)
    cfg.target = data.get("target", "")
    cfg.images = data.get("images")
    cfg.engine = _choice(file, "[data] engine", data.get("engine", "auto"), ENGINES)
    cfg.scheduler = data.get("scheduler")
    if cfg.scheduler is not None and cfg.engine != "dask":
        raise ProjectError(f"{file}: [data] scheduler is set but engine = \"{cfg.engine}\". The scheduler is for "
                           f"engine = \"dask\": add it, or remove scheduler.")
    cfg.features = data.get("features")
    cfg.ignore = list(data.get("ignore", []))
    cfg.text = data.get("text")
    cfg.classes = data.get("classes")
    if cfg.classes is not None:
        if len(cfg.classes) < 2:
            raise ProjectError(f"{file}: [data] classes must list at least two classes.")
        if len({str(c) for c in cfg.classes}) != len(cfg.classes):
            raise ProjectError(f"{file}: [data] classes lists the same class twice: {cfg.classes}.")
    if cfg.target in cfg.ignore or (cfg.features and cfg.target in cfg.features) or \
            (cfg.text and cfg.target in cfg.text):
        raise ProjectError(f"{file}: the target column '{cfg.target}' is also listed in [data] features, "
                           f"ignore or text. Remove it from there.")
    _check_column_lists(file, cfg)

    cfg.training_log = _resolve(root, file, "[artifacts] training_log", artifacts.get("training_log"))
    cfg.predictions = _resolve(root, file, "[artifacts] predictions", artifacts.get("predictions"))
    cfg.previous_predictions = _resolve(root, file, "[artifacts] previous_predictions",
                                        artifacts.get("previous_predictions"))
    # the monitor file may not exist yet: the run that writes it may start after the project file
    cfg.monitor = _resolve(root, file, "[artifacts] monitor", artifacts.get("monitor"), must_exist=False)
    cfg.slices = _load_slices(file, doc.get("slices", []))
    if "seconds" in budget:
        if budget["seconds"] <= 0:
            raise ProjectError(f"{file}: [budget] seconds must be positive, got {budget['seconds']}.")
        cfg.budget_seconds = float(budget["seconds"])
    _load_checks_section(cfg, file, doc.get("checks", {}))
    return cfg


ENGINES = ("auto", "pandas", "duckdb", "dask")
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".jsonl", ".ndjson", ".npz")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


def _is_image_folder(root: Path, value) -> bool:
    """ImageFolder layout: a folder whose sub-folders (one per class) hold image files."""
    if not isinstance(value, str) or not value.strip():
        return False
    folder = (root / value).expanduser()
    if not folder.is_dir():
        return False
    for sub in sorted(p for p in folder.iterdir() if p.is_dir())[:5]:
        if any(f.suffix.lower() in IMAGE_SUFFIXES for f in sub.iterdir()):
            return True
    return False


def is_parquet_dataset(folder: Path) -> bool:
    """A folder holding Parquet files (possibly in hive-style partition sub-folders): one table."""
    try:
        return folder.is_dir() and any(p.suffix.lower() in (".parquet", ".pq") for p in folder.rglob("*"))
    except OSError:
        return False


def _check_split_folders(file: Path, cfg: ProjectConfig) -> None:
    """A split may be a folder only as an image folder (ImageFolder layout), and then all of them are."""
    folders = {k: getattr(cfg, k) for k in ("train", "valid", "test")
               if getattr(cfg, k) is not None and getattr(cfg, k) != Path() and getattr(cfg, k).is_dir()}
    for key, path in list(folders.items()):
        if is_parquet_dataset(path):  # a folder of Parquet files: one table (DESIGN §3, data beyond memory)
            del folders[key]
            continue
        if not _is_image_folder(cfg.root, str(path)):
            raise ProjectError(f"{file}: [data] {key} points to the folder {path}, which is not an image folder "
                               f"(one sub-folder of images per class, as torchvision's ImageFolder reads). "
                               f"Name a data file, or arrange the images as {path}/<class>/<image>.png.")
    if folders and len(folders) != len([k for k in ("train", "valid", "test") if getattr(cfg, k) not in (None, Path())]):
        raise ProjectError(f"{file}: [data] mixes image folders and data files across splits "
                           f"({', '.join(folders)} are folders). Give every split the same form.")


def _load_checks_section(cfg: ProjectConfig, file: Path, checks: dict) -> None:
    """[checks] skip and [checks.max_status] (DESIGN §3). Whether the ids exist is checked where the
    registry is known (engine/serve.py), which also knows the checks of plugins."""
    skip = list(checks.get("skip", []))
    repeated = sorted({c for c in skip if skip.count(c) > 1})
    if repeated:
        raise ProjectError(f"{file}: [checks] skip lists {', '.join(map(repr, repeated))} more than once.")
    caps = checks.get("max_status", {})
    for cid, status in caps.items():
        if not isinstance(status, str) or status not in MAX_STATUS_VALUES:
            raise ProjectError(
                f"{file}: [checks.max_status] \"{cid}\" = {status!r} is not a status to cap at. Use one of: "
                f"{', '.join(MAX_STATUS_VALUES)}.{did_you_mean(str(status), MAX_STATUS_VALUES)}")
    both = sorted(set(skip) & set(caps))
    if both:
        raise ProjectError(f"{file}: {', '.join(map(repr, both))} is both skipped and capped in [checks]. "
                           f"Keep one of the two.")
    cfg.check_skip = skip
    cfg.check_max_status = dict(caps)


def _check_column_lists(file: Path, cfg: ProjectConfig) -> None:
    """features/ignore/text: no repeated column, and features, when given, names at least one."""
    if cfg.features is not None and not cfg.features:
        raise ProjectError(f"{file}: [data] features = [] lists no column. Remove the key to use every column "
                           f"except the target and ignore, or name the feature columns.")
    for key in ("features", "ignore", "text"):
        names = getattr(cfg, key) or []
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ProjectError(f"{file}: [data] {key} lists {', '.join(map(repr, repeated))} more than once. "
                               f"Name each column once.")


def _load_model_section(cfg: ProjectConfig, file: Path, root: Path, model: dict) -> None:
    if not model:
        return
    code = model.get("code")
    if code is not None and not code.strip():
        raise ProjectError(f"{file}: [model] code is empty. Name a file next to {PROJECT_FILE} (code = "
                           f"\"model.py\") or a dotted module name, or remove the [model] section.")
    if code is not None and (code.endswith(".py") or "/" in code):
        _resolve(root, file, "[model] code", code)
    if code is None and any(k in model for k in ("build", "featurize", "train_step", "predict", "dataset",
                                                 "collate", "lightning", "datamodule", "decode", "scheduler")):
        raise ProjectError(f"{file}: [model] names functions but no code. Add code = \"model.py\" "
                           f"(a file next to {PROJECT_FILE}) or a dotted module name.")
    if code is not None and not any(k in model for k in ("build", "featurize", "predict", "lightning",
                                                         "dataset", "datamodule")):
        raise ProjectError(f"{file}: [model] code is set but build is missing. Add build = \"build_model\", "
                           f"the function build_model(n_inputs, n_outputs) that returns the model.")
    cfg.model_code = code
    cfg.build = model.get("build")
    cfg.featurize = model.get("featurize")
    cfg.loss = model.get("loss")
    cfg.optimizer = model.get("optimizer", "adam")
    for key in ("lr",):
        if key in model and model[key] <= 0:
            raise ProjectError(f"{file}: [model] {key} must be positive, got {model[key]}.")
    for key in ("batch_size", "epochs"):
        if key in model and model[key] < 1:
            raise ProjectError(f"{file}: [model] {key} must be at least 1, got {model[key]}.")
    cfg.lr = float(model.get("lr", 1e-3))
    cfg.batch_size = int(model.get("batch_size", 64))
    cfg.epochs = int(model.get("epochs", 10))
    cfg.train_step = model.get("train_step")
    cfg.predict = model.get("predict")
    cfg.checkpoint = _resolve(root, file, "[model] checkpoint", model.get("checkpoint"))
    for key in ("dataset", "collate", "lightning", "datamodule", "decode", "scheduler"):
        setattr(cfg, key, model.get(key))
    if cfg.dataset and cfg.datamodule:
        raise ProjectError(f"{file}: [model] names both dataset and datamodule. Keep one: the splits come "
                           f"either from make_dataset(split) or from the LightningDataModule.")
    if cfg.lightning and cfg.build:
        raise ProjectError(f"{file}: [model] names both build and lightning. With lightning the model is the "
                           f"LightningModule itself: remove build (or lightning).")
    if cfg.featurize and (cfg.dataset or cfg.datamodule):
        raise ProjectError(f"{file}: [model] featurize does not apply with a Dataset (dataset/datamodule): "
                           f"the Dataset returns the tensors the model takes. Remove featurize.")


def _load_slices(file: Path, slices: Any) -> list[SliceSpec]:
    if not isinstance(slices, list):
        raise ProjectError(f"{file}: slices must be written as [[slices]] tables.")
    result = []
    for i, table in enumerate(slices, start=1):
        where = f"slices #{i}"
        _check_table(file, where, table, SLICE_SCHEMA)
        for key in ("name", "where"):
            if key not in table:
                raise ProjectError(f"{file}: [[slices]] #{i} needs a {key} (name = \"...\", where = \"...\").")
        metric = table.get("metric", "accuracy")
        _choice(file, f"[[slices]] '{table['name']}' metric", metric, SLICE_METRICS)
        if "min" not in table and "max" not in table:
            raise ProjectError(f"{file}: [[slices]] '{table['name']}' needs a threshold: min = ... "
                               f"(for scores like accuracy) or max = ... (for errors like rmse).")
        result.append(SliceSpec(name=table["name"], where=table["where"], metric=metric,
                                min=table.get("min"), max=table.get("max")))
    names = [s.name for s in result]
    for n in names:
        if names.count(n) > 1:
            raise ProjectError(f"{file}: two [[slices]] are named '{n}'. Give each a unique name.")
    return result
