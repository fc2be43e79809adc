"""The tensor sample projects `images` and `tokens` (issue 14): data, Datasets, collate, answer keys.

Fast checks without mltriage's engine: the data is what generate.py writes (deterministically),
every split builds a Dataset of the documented (x, y) items, and each planted bug is really in the
buggy variant and gone from the fixed one (measured directly, no training).
"""

import hashlib
import importlib.util
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

SAMPLES = Path(__file__).resolve().parents[1] / "sample_projects"
VARIANTS = ("buggy", "fixed")
SPLITS = ("train", "valid", "test")
ANSWER_KEY_FIELDS = ("check", "also", "summary", "where", "explain", "fix")

# DESIGN.md section 6, written out: the registry does not know the tensor-project ids yet.
DESIGN_CHECK_IDS = set("""
problem.task_type problem.class_balance problem.baseline problem.metric_choice
sanity.data_loads sanity.model_builds sanity.forward_pass sanity.loss_at_init sanity.loss_shapes
sanity.overfit_small_batch sanity.gradient_flow sanity.input_independent sanity.train_step
sanity.eval_determinism
data.missing_values data.duplicates data.split_overlap data.constant_features data.id_columns
data.target_leakage data.feature_scale data.outliers data.label_values data.label_issues data.drift
data.text_quality data.label_order
architecture.summary architecture.output_layer architecture.output_size architecture.capacity
architecture.dead_units architecture.saturation architecture.init_scale architecture.dropout
training.lr_range training.divergence training.exploding_gradients training.vanishing_gradients
training.oscillation training.plateau training.update_ratio training.overfitting
training.underfitting training.early_stopping
metrics.summary metrics.vs_baseline metrics.generalization_gap metrics.per_class metrics.confusion
metrics.calibration metrics.split_consistency
errors.confident_mistakes errors.weak_slices errors.slice_tests errors.regressions
sanity.input_batch data.image_quality data.token_ids data.augmentation data.feature_relevance
architecture.frozen_layers errors.similar_unlabeled
""".split())


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tree_digest(root: Path) -> str:
    """One hash over every file under root: relative path and bytes, in sorted order."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


@pytest.fixture(scope="module")
def images():
    return {v: _load(SAMPLES / "images" / v / "train.py", f"sample_images_{v}") for v in VARIANTS}


@pytest.fixture(scope="module")
def tokens():
    return {v: _load(SAMPLES / "tokens" / v / "train.py", f"sample_tokens_{v}") for v in VARIANTS}


# --- generated data ----------------------------------------------------------------------------

@pytest.mark.parametrize("sample", ["images", "tokens"])
def test_generate_is_deterministic_and_matches_the_committed_data(sample, tmp_path):
    generate = _load(SAMPLES / sample / "generate.py", f"sample_generate_{sample}")
    generate.main(tmp_path / "a")
    generate.main(tmp_path / "b")
    for variant in VARIANTS:
        first = _tree_digest(tmp_path / "a" / variant / "data")
        assert first == _tree_digest(tmp_path / "b" / variant / "data"), f"{sample}: two runs differ"
        assert first == _tree_digest(SAMPLES / sample / variant / "data"), \
            f"{sample}/{variant}/data is not what generate.py writes: re-run it"


def _image_labels(split_dir: Path) -> dict[str, int]:
    return {p.stem: int(p.parent.name) for p in split_dir.glob("*/*.png")}


def test_images_buggy_train_has_15_percent_misfiled_and_nothing_else_differs():
    buggy, fixed = (SAMPLES / "images" / v / "data" for v in VARIANTS)
    for split in ("valid", "test"):
        assert _tree_digest(buggy / split) == _tree_digest(fixed / split)
    b, f = _image_labels(buggy / "train"), _image_labels(fixed / "train")
    assert b.keys() == f.keys() and len(f) > 1000
    misfiled = [k for k in f if b[k] != f[k]]
    assert abs(len(misfiled) / len(f) - 0.15) < 0.005
    for key in f:   # same pixels, only the folder (the label) differs
        assert (buggy / "train" / str(b[key]) / f"{key}.png").read_bytes() == \
               (fixed / "train" / str(f[key]) / f"{key}.png").read_bytes()


def test_tokens_variants_share_the_data_and_new_words_appear_only_after_training():
    buggy, fixed = (SAMPLES / "tokens" / v / "data" for v in VARIANTS)
    assert _tree_digest(buggy) == _tree_digest(fixed)
    rows = {s: [json.loads(line) for line in (fixed / f"{s}.jsonl").read_text().splitlines()] for s in SPLITS}
    assert max(r["date"] for r in rows["train"]) < min(r["date"] for r in rows["valid"])
    assert {r["label"] for r in rows["train"]} == {"bug", "billing", "feature", "praise"}
    lengths = [len(r["text"].split()) for s in SPLITS for r in rows[s]]
    assert min(lengths) >= 5 and max(lengths) <= 60


# --- Datasets and collate ------------------------------------------------------------------------

@pytest.mark.parametrize("variant", VARIANTS)
def test_images_every_split_yields_float_chw_tensors_and_int_labels(images, variant):
    for split in SPLITS:
        ds = images[variant].make_dataset(split)
        assert len(ds) > 300
        for i in (0, len(ds) - 1):
            x, y = ds[i]
            assert isinstance(x, torch.Tensor) and x.dtype == torch.float32 and x.shape == (3, 32, 32)
            assert isinstance(y, int) and 0 <= y < 10
    with pytest.raises(KeyError):
        images[variant].make_dataset("unlabeled")


@pytest.mark.parametrize("variant", VARIANTS)
def test_tokens_every_split_yields_id_sequences_and_int_labels(tokens, variant):
    module = tokens[variant]
    for split in SPLITS:
        ds = module.make_dataset(split)
        assert len(ds) == (2400 if split == "train" else 800)
        for i in (0, len(ds) - 1):
            x, y = ds[i]
            assert x.dtype == torch.long and x.dim() == 1 and 5 <= len(x) <= 60
            assert isinstance(y, int) and 0 <= y < 4
    with pytest.raises(KeyError):
        module.make_dataset("unlabeled")


@pytest.mark.parametrize("variant", VARIANTS)
def test_tokens_collate_pads_to_the_longest_and_truncates_at_max_len(tokens, variant):
    module = tokens[variant]
    items = [(torch.arange(2, 2 + n), label) for n, label in ((3, 0), (7, 1), (200, 2))]
    ids, labels = module.collate(items)
    longest = min(200, module.MAX_LEN)
    assert ids.shape == (3, longest) and ids.dtype == torch.long
    assert labels.tolist() == [0, 1, 2]
    assert ids[0, :3].tolist() == [2, 3, 4] and (ids[0, 3:] == module.PAD).all()
    assert (ids[2] != module.PAD).all()


def test_tokens_decode_maps_ids_back_to_words(tokens):
    module = tokens["fixed"]
    text = json.loads((SAMPLES / "tokens/fixed/data/train.jsonl").read_text().splitlines()[0])["text"]
    ids = module.encode(text)
    assert module.decode(ids + [module.PAD] * 4) == text


# --- each planted bug is in buggy and gone from fixed ---------------------------------------------

def _lag_correlation(batch: np.ndarray, lag: int) -> float:
    return float(np.corrcoef(batch[..., :-lag].ravel(), batch[..., lag:].ravel())[0, 1])


def test_images_planted_input_bugs(images):
    stats = {}
    for variant in VARIANTS:
        ds = images[variant].make_dataset("valid")
        batch = torch.stack([ds[i][0] for i in range(32)]).numpy()
        stats[variant] = {"max": float(np.abs(batch).max()),
                          "lag1": _lag_correlation(batch, 1), "lag3": _lag_correlation(batch, 3),
                          "repeatable": bool(torch.equal(ds[5][0], ds[5][0]))}
    assert stats["buggy"]["max"] > 100 and stats["fixed"]["max"] < 10          # raw 0-255 vs normalised
    assert stats["buggy"]["lag3"] > stats["buggy"]["lag1"] + 0.1               # channels scrambled
    assert stats["fixed"]["lag1"] > stats["fixed"]["lag3"] + 0.1
    assert not stats["buggy"]["repeatable"] and stats["fixed"]["repeatable"]   # random eval transform


def test_images_first_block_frozen_only_in_buggy(images):
    frozen = {v: sum(p.numel() for p in images[v].build_model().parameters() if not p.requires_grad)
              for v in VARIANTS}
    assert frozen == {"buggy": 3 * 16 * 9 + 16, "fixed": 0}


def test_tokens_embedding_size_vs_vocabulary(tokens):
    max_id = {s: max(int(x.max()) for x, _ in tokens["fixed"].make_dataset(s)) for s in SPLITS}
    for variant in VARIANTS:
        rows = tokens[variant].build_model().embed.num_embeddings
        assert max_id["train"] < rows, variant          # training runs in both variants
        if variant == "buggy":
            assert max_id["valid"] >= rows and max_id["test"] >= rows
        else:
            assert max(max_id.values()) < rows


def test_tokens_padding_changes_predictions_only_in_buggy(tokens):
    torch.manual_seed(0)
    for variant in VARIANTS:
        module = tokens[variant]
        ids, _ = module.collate([module.make_dataset("train")[i] for i in range(16)])
        model = module.build_model()
        padded = torch.cat([ids, torch.full((len(ids), 20), module.PAD)], dim=1)
        shift = float((module.predict(model, ids) - module.predict(model, padded)).abs().max())
        assert (shift > 1e-3) if variant == "buggy" else (shift < 1e-6), (variant, shift)


def test_tokens_truncation_cuts_most_reviews_only_in_buggy(tokens):
    for variant in VARIANTS:
        module = tokens[variant]
        ds = module.make_dataset("train")
        cut = np.mean([len(x) > module.MAX_LEN for x, _ in ds])
        assert (cut > 0.8) if variant == "buggy" else (cut == 0.0), (variant, cut)


def test_tokens_gradients_pile_up_and_outputs_are_probabilities_only_in_buggy(tokens):
    for variant in VARIANTS:
        module = tokens[variant]
        torch.manual_seed(0)
        xb, yb = module.collate([module.make_dataset("train")[i] for i in range(32)])
        model = module.build_model()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)   # lr 0: weights stay, gradients show
        module.train_step(model, optimizer, torch.nn.CrossEntropyLoss(), xb, yb)
        once = model.mlp[-1].weight.grad.clone()
        module.train_step(model, optimizer, torch.nn.CrossEntropyLoss(), xb, yb)
        piled_up = torch.allclose(model.mlp[-1].weight.grad, 2 * once)
        assert piled_up == (variant == "buggy"), variant
        with torch.no_grad():
            out = model(xb)
        sums_to_one = bool(torch.allclose(out.sum(dim=1), torch.ones(len(xb))) and (out >= 0).all())
        assert sums_to_one == (variant == "buggy"), variant


# --- answer keys ----------------------------------------------------------------------------------

@pytest.mark.parametrize("sample,at_least", [("images", 5), ("tokens", 4)])
def test_answer_key_lists_the_planted_bugs_with_design_check_ids(sample, at_least):
    doc = tomllib.loads((SAMPLES / sample / "buggy" / "bugs.toml").read_text(encoding="utf-8"))
    bugs = doc["bug"]
    assert at_least <= len(bugs) <= 6          # tests/test_sample_projects.py allows 3-6 per sample
    for bug in bugs:
        missing = [k for k in ANSWER_KEY_FIELDS if k not in bug]
        assert missing == [], f"{sample}: {bug.get('summary')} lacks {missing}"
        unknown = {bug["check"], *bug["also"]} - DESIGN_CHECK_IDS
        assert unknown == set(), f"{sample}: {bug['summary']}: ids not in DESIGN section 6: {unknown}"
    assert not (SAMPLES / sample / "fixed" / "bugs.toml").exists()


@pytest.mark.parametrize("sample", ["images", "tokens"])
def test_project_files_name_functions_that_exist(sample):
    for variant in VARIANTS:
        doc = tomllib.loads((SAMPLES / sample / variant / "mltriage.toml").read_text(encoding="utf-8"))
        model = doc["model"]
        source = (SAMPLES / sample / variant / model["code"]).read_text(encoding="utf-8")
        for key in ("dataset", "collate", "build", "train_step", "predict", "decode"):
            if key in model:
                assert f"def {model[key]}(" in source, f"{sample}/{variant}: [model] {key}"
