"""Root causes first (issue 15, item 2): group the findings of one run by what most likely caused them.

One planted bug often shows up in many checks: a softmax before CrossEntropyLoss makes the tiny-batch
test, the plateau, underfitting, the baseline comparison and the per-class recall fail together. The
catalog knows these links; `KNOCK_ONS` writes them down as root check id -> the checks it explains,
each with the reason in words. `assign_causes` applies them to the findings of one run and sets
`finding.caused_by` (DESIGN §5 extension) on the knock-ons, so that the text, Markdown and app views
list the likely causes first ("Start here") with their knock-ons folded under them.

The grouping is conservative:
- a knock-on is folded only when its root was found in the same run at `warn` or `fail`;
- only `warn`, `fail` and `info` findings are folded (a pass needs no explanation, an `error` or a
  `skipped` says something about mltriage, not the model), except a crash of the project's code that a
  flagged root has measured the cause of (CRASH_LINKS: ids past an embedding's rows);
- a link may require other findings of the run (`requires`: e.g. slice tests are folded under a broken
  output layer only when the model is no better than the baseline overall) or a property of the
  knock-on's evidence (`when`: a learning-rate sweep whose loss never fell tells nothing about the lr
  when the model itself is broken; one whose loss fell is its own finding);
- roots are tried in `ROOT_ORDER` (the most structural first) and a finding that already explains
  others is never folded, so every `caused_by` points at a root that is itself shown: one level only.

Pure functions over a list of findings (Finding objects or their JSON dicts); nothing here runs a check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

FOLDABLE = ("warn", "fail", "info")   # statuses a knock-on may have
ROOT_STATUSES = ("warn", "fail")      # statuses a root must have to explain anything
START_HERE = ("fail", "warn")         # what the "Start here" list holds (roots and lone findings)


@dataclass(frozen=True)
class Link:
    knock_on: str
    reason: str
    requires: tuple[str, ...] = ()                    # other checks that must be flagged (warn/fail) too
    when: Callable[[dict], bool] | None = None       # a test on the knock-on's evidence


def _sweep_did_not_fall(evidence: dict) -> bool:
    return evidence.get("fell") is False


def _links(reason: str, *ids: str, requires: tuple[str, ...] = (), when=None) -> list[Link]:
    return [Link(i, reason, requires, when) for i in ids]


# What a model that cannot learn shows everywhere downstream (used by several roots below).
_CANNOT_LEARN = ("sanity.loss_at_init", "sanity.overfit_small_batch", "sanity.input_independent",
                 "training.plateau", "training.underfitting", "training.early_stopping",
                 "metrics.vs_baseline", "metrics.generalization_gap", "metrics.per_class",
                 "metrics.confusion")
# Outcome checks that fail for any model no better than the baseline: folded only when
# metrics.vs_baseline is flagged in the same run.
_OUTCOMES = ("metrics.calibration", "metrics.split_consistency", "errors.confident_mistakes",
             "errors.weak_slices", "errors.slice_tests", "errors.regressions")

KNOCK_ONS: dict[str, list[Link]] = {
    "architecture.output_layer": [
        *_links("an output activation before the loss caps what the model can learn", *_CANNOT_LEARN,
                "training.overfitting", "training.vanishing_gradients", "architecture.saturation"),
        *_links("the sweep's loss never fell: the output layer, not the lr, stops learning",
                "training.lr_range", when=_sweep_did_not_fall),
        *_links("a model capped by its output layer fails these for that reason", *_OUTCOMES,
                requires=("metrics.vs_baseline",)),
    ],
    "architecture.dead_units": [
        *_links("dead units pass no signal and no gradient, so the model cannot learn", *_CANNOT_LEARN,
                "sanity.gradient_flow", "training.vanishing_gradients", "training.update_ratio",
                "architecture.init_scale", "architecture.saturation"),
        *_links("the sweep's loss never fell: the dead units, not the lr, stop learning",
                "training.lr_range", when=_sweep_did_not_fall),
        *_links("a model with dead units fails these for that reason", *_OUTCOMES,
                requires=("metrics.vs_baseline",)),
    ],
    "sanity.loss_shapes": [
        *_links("a loss that broadcasts predictions against targets trains towards the batch mean",
                *_CANNOT_LEARN),
        *_links("the sweep's loss never fell: the loss compares the wrong shapes",
                "training.lr_range", when=_sweep_did_not_fall),
        *_links("a model trained on a broadcast loss fails these for that reason", *_OUTCOMES,
                requires=("metrics.vs_baseline",)),
    ],
    "data.feature_scale": [
        *_links("unscaled inputs make activations and gradients far larger than the initialisation "
                "assumes", "training.divergence", "training.exploding_gradients", "training.oscillation",
                "architecture.dead_units", "architecture.saturation", "sanity.loss_at_init",
                "sanity.overfit_small_batch", "sanity.gradient_flow"),
        *_links("a sweep on unscaled inputs finds the lr that offsets the input scale, not one for the fixed "
                "model", "training.lr_range"),
    ],
    "sanity.input_batch": [
        *_links("inputs the model cannot read (scrambled channels, raw values, missing values) leave it nothing "
                "to learn from", *_CANNOT_LEARN, "training.lr_range"),
        *_links("a model fed unreadable inputs fails these for that reason", *_OUTCOMES,
                requires=("metrics.vs_baseline",)),
    ],
    "data.token_ids": [
        *_links("ids the embedding cannot look up, unmasked padding or cut sequences hide what the label "
                "depends on", *_CANNOT_LEARN),
        *_links("a model that never sees the label-bearing tokens fails these for that reason", *_OUTCOMES,
                requires=("metrics.vs_baseline",)),
    ],
    "sanity.train_step": [
        *_links("gradients that pile up across steps make the updates grow and point in stale "
                "directions", "training.divergence", "training.oscillation", "training.exploding_gradients",
                "training.update_ratio", "training.early_stopping"),
    ],
    "architecture.dropout": [
        *_links("a very high dropout rate keeps the model from fitting even the training data",
                "training.underfitting", "training.oscillation", "sanity.overfit_small_batch",
                "metrics.generalization_gap"),
    ],
    "sanity.eval_determinism": [
        *_links("predictions made in train mode (dropout on) are noisy and pessimistic",
                "metrics.calibration", "errors.regressions"),
    ],
    "data.target_leakage": [
        *_links("a leaked feature makes the validation score too good to trust",
                "metrics.vs_baseline", "metrics.summary", "metrics.split_consistency",
                "metrics.generalization_gap", "data.feature_relevance"),
    ],
    "data.split_overlap": [
        *_links("validation rows seen in training inflate the validation score",
                "metrics.split_consistency", "data.duplicates", "data.drift"),
    ],
    "data.drift": [
        *_links("valid and test come from different distributions", "metrics.split_consistency"),
    ],
    "data.label_issues": [
        *_links("rows with wrong labels show up as confident mistakes", "errors.confident_mistakes"),
    ],
    "training.lr_range": [
        *_links("an lr far outside the useful range makes training diverge, oscillate or crawl",
                "training.divergence", "training.oscillation", "training.update_ratio",
                "training.exploding_gradients", "training.plateau", "training.early_stopping"),
    ],
    "training.overfitting": [
        *_links("a model trained past its best epoch memorises the training set and is over-confident",
                "training.early_stopping", "metrics.generalization_gap", "metrics.calibration",
                "errors.confident_mistakes"),
    ],
}
# The most structural causes first: a knock-on listed under several roots goes to the first found.
ROOT_ORDER: tuple[str, ...] = (
    "architecture.output_layer", "architecture.dead_units", "sanity.loss_shapes", "data.feature_scale",
    "sanity.input_batch", "data.token_ids",
    "sanity.train_step", "architecture.dropout", "sanity.eval_determinism", "data.target_leakage",
    "data.split_overlap", "data.drift", "data.label_issues", "training.lr_range", "training.overfitting",
)
assert set(ROOT_ORDER) == set(KNOCK_ONS), "every root needs a place in ROOT_ORDER"


# Crashes with a known cause (`error` findings of project code). One bad input makes every check that runs
# the model on it raise the same exception; when a check has measured that input, the errors are folded under
# it. data.token_ids: ids past an Embedding's rows make the lookup raise "index out of range in self" on the
# CPU and a device-side assert on CUDA (PyTorch's messages for F.embedding).
def _ids_past_the_table(evidence: dict) -> bool:
    table = evidence.get("token_table") or {}
    rows = table.get("num_embeddings")
    ranges = evidence.get("id_range") or {}
    return isinstance(rows, int) and any(isinstance(r, list) and len(r) == 2 and isinstance(r[1], int)
                                         and r[1] >= rows for r in ranges.values())


def _embedding_lookup_crash(finding: Any) -> bool:
    text = f"{_get(finding, 'title', '')}\n{_get(finding, 'detail', '')}"
    return text.startswith("project code failed") and (
        "index out of range in self" in text or "device-side assert" in text)


@dataclass(frozen=True)
class CrashLink:
    root: str
    reason: str
    root_shows: Callable[[dict], bool]      # the root's evidence names the cause
    crash: Callable[[Any], bool]            # the error finding is that crash


CRASH_LINKS = (
    CrashLink("data.token_ids", "token ids past the embedding's rows make every lookup of them crash",
              _ids_past_the_table, _embedding_lookup_crash),
)


def _get(f: Any, key: str, default=None):
    return f.get(key, default) if isinstance(f, dict) else getattr(f, key, default)


def _set(f: Any, key: str, value) -> None:
    if isinstance(f, dict):
        if value is None:
            f.pop(key, None)
        else:
            f[key] = value
    else:
        setattr(f, key, value)


def plan_causes(findings: Iterable[Any]) -> dict[str, tuple[str, str]]:
    """{knock-on check id: (root check id, reason)} for the findings of one run."""
    by_id = {_get(f, "check"): f for f in findings}
    status = {cid: _get(f, "status") for cid, f in by_id.items()}
    folded: dict[str, tuple[str, str]] = {}
    acting: set[str] = set()  # roots that explain at least one finding
    for root in ROOT_ORDER:
        if status.get(root) not in ROOT_STATUSES or root in folded:
            continue
        for link in KNOCK_ONS[root]:
            k = link.knock_on
            if k == root or k in folded or k in acting or status.get(k) not in FOLDABLE:
                continue
            if any(status.get(r) not in ROOT_STATUSES for r in link.requires):
                continue
            if link.when is not None and not link.when(_get(by_id[k], "evidence", {}) or {}):
                continue
            folded[k] = (root, link.reason)
            acting.add(root)
    _fold_crashes(by_id, status, folded)
    return folded


def _fold_crashes(by_id: dict, status: dict, folded: dict) -> None:
    """Project-code errors that are a crash a flagged root explains (CRASH_LINKS) get that root."""
    for link in CRASH_LINKS:
        root = by_id.get(link.root)
        if root is None or status.get(link.root) not in ROOT_STATUSES or link.root in folded:
            continue
        if not link.root_shows(_get(root, "evidence", {}) or {}):
            continue
        for cid, f in by_id.items():
            if status.get(cid) == "error" and cid not in folded and link.crash(f):
                folded[cid] = (link.root, link.reason)


def assign_causes(findings: list[Any]) -> list[Any]:
    """Set `caused_by` on the knock-ons of one run's findings (and clear it elsewhere); returns them.

    Works on Finding objects and on their JSON dicts alike; the order is kept."""
    plan = plan_causes(findings)
    for f in findings:
        _set(f, "caused_by", plan.get(_get(f, "check"), (None, ""))[0])
    return findings


def reason_for(knock_on: str, root: str, status: str = "") -> str:
    """The catalog's words for why `root` explains `knock_on` ("" when the table has no such link); for an
    `error` knock-on, the crash's words (CRASH_LINKS)."""
    if status == "error":
        return next((link.reason for link in CRASH_LINKS if link.root == root), "")
    return next((link.reason for link in KNOCK_ONS.get(root, []) if link.knock_on == knock_on), "")


def start_here(findings: list[Any]) -> list[tuple[Any, list[Any]]]:
    """[(root finding, [its knock-ons])]: every fail/warn not caused by another, fails first, then in
    the run's order; knock-ons in the run's order. Uses the `caused_by` already set on the findings."""
    children: dict[str, list[Any]] = {}
    for f in findings:
        if _get(f, "caused_by"):
            children.setdefault(_get(f, "caused_by"), []).append(f)
    roots = [f for f in findings if _get(f, "status") in START_HERE and not _get(f, "caused_by")]
    roots.sort(key=lambda f: START_HERE.index(_get(f, "status")))
    return [(f, children.get(_get(f, "check"), [])) for f in roots]
