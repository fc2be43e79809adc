"""Data checks of tensor projects: the pure measures and verdicts (planted value and clean twin), and the
checks on small in-memory image and token projects (planted defect and clean twin)."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest
import torch

from helpers import context_for, run_check
from mltriage.checks.analyses import image_quality as iq
from mltriage.checks.analyses import tensor_stats as ts
from mltriage.checks.findings import SkipCheck
from mltriage.checks.steps.data import tensors as T
from mltriage.checks.steps.data import tokens as K

torch.set_num_threads(1)


# --- shared data -----------------------------------------------------------------------------------
def colour_digits(n: int = 400, seed: int = 0) -> np.ndarray:
    """sklearn digits upsampled to 32x32 (nearest) with a random foreground and background colour,
    channels last (n, 32, 32, 3), floats in [0, 1]."""
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(seed)
    out = []
    for im in load_digits().images[:n] / 16.0:
        big = np.kron(im, np.ones((4, 4)))[..., None]
        fg, bg = rng.uniform(0.5, 1.0, 3), rng.uniform(0.0, 0.3, 3)
        out.append(big * fg + (1 - big) * bg)
    return np.stack(out).astype(np.float32)


@pytest.fixture(scope="module")
def digits_hwc():
    return colour_digits(400)


# --- channel statistics ----------------------------------------------------------------------------
def test_streaming_channel_stats_match_numpy_over_the_whole_array():
    rng = np.random.default_rng(1)
    data = rng.normal([[[[5.0]], [[-2.0]], [[0.5]]]], [[[[2.0]], [[0.1]], [[1.0]]]], size=(50, 3, 4, 4))
    stats = ts.StreamingStats()
    for chunk in np.array_split(data, 7):
        stats.update(torch.tensor(chunk, dtype=torch.float64))
    st = stats.floats["x"]
    per_channel = np.moveaxis(data, 1, 0).reshape(3, -1)
    np.testing.assert_allclose(st.mean, per_channel.mean(axis=1), rtol=1e-10)
    np.testing.assert_allclose(st.std, per_channel.std(axis=1), rtol=1e-10)
    np.testing.assert_allclose(st.minimum, per_channel.min(axis=1))
    np.testing.assert_allclose(st.maximum, per_channel.max(axis=1))
    assert st.count.tolist() == [800, 800, 800] and st.nonfinite == 0


def test_channel_stats_merging_stays_accurate_on_a_large_offset():
    # values around 1e4 with a spread of 1e-2: the naive sum of squares loses every digit here
    data = 1e4 + np.random.default_rng(2).normal(0, 1e-2, size=(4000, 8))
    st = ts.ChannelStats.empty(1)
    for chunk in np.array_split(data, 40):
        st = st.merge(ts.batch_channel_stats(chunk))
    assert st.std[0] == pytest.approx(data.std(), rel=1e-6)


def test_nan_and_inf_are_counted_per_channel_and_left_out_of_the_moments():
    batch = np.zeros((2, 3, 2, 2), dtype=np.float32)
    batch[0, 1, 0, 0], batch[1, 2, 1, 1] = np.nan, np.inf
    st = ts.batch_channel_stats(batch)
    assert st.nan.tolist() == [0, 1, 0] and st.inf.tolist() == [0, 0, 1]
    assert st.count.tolist() == [8, 7, 7] and np.all(st.mean == 0)


def test_channel_axis_is_one_for_images_and_none_otherwise():
    assert ts.channel_axis((8, 3, 32, 32)) == 1
    assert ts.channel_axis((8, 20)) is None and ts.channel_axis((8, 3, 20)) is None
    assert ts.batch_channel_stats(np.ones((5, 3, 7), dtype=np.float32)).channels == 1


def test_integer_inputs_get_a_range_not_moments():
    stats = ts.StreamingStats()
    stats.update({"input_ids": torch.tensor([[3, 9], [0, 4]]), "weights": torch.ones(2, 2)})
    assert stats.integer_inputs == ["input_ids"] and stats.int_range["input_ids"] == (0, 9)
    assert set(stats.floats) == {"weights"}


# --- channel layout ----------------------------------------------------------------------------------
def test_reshaped_channels_last_images_are_flagged_and_permuted_ones_are_not(digits_hwc):
    permuted = np.ascontiguousarray(digits_hwc.transpose(0, 3, 1, 2))
    reshaped = digits_hwc.reshape(len(digits_hwc), 3, 32, 32)
    good, bad = ts.measure_channel_layout(permuted), ts.measure_channel_layout(reshaped)
    assert not ts.channel_layout_verdict(good) and good.peak < 0
    assert ts.channel_layout_verdict(bad) and bad.peak > ts.LAYOUT_MARGIN
    # the verdict does not depend on per-channel normalisation
    normalised = (permuted - permuted.mean(axis=(0, 2, 3), keepdims=True)) / permuted.std(axis=(0, 2, 3), keepdims=True)
    assert not ts.channel_layout_verdict(ts.measure_channel_layout(normalised))


def test_layout_stays_quiet_on_noise_and_does_not_apply_to_one_channel():
    noise = np.random.default_rng(0).normal(size=(64, 3, 32, 32)).astype(np.float32)
    assert not ts.channel_layout_verdict(ts.measure_channel_layout(noise))
    assert ts.measure_channel_layout(np.zeros((4, 1, 28, 28), dtype=np.float32)) is None
    assert ts.measure_channel_layout(np.zeros((4, 3, 20), dtype=np.float32)) is None


# --- tokens --------------------------------------------------------------------------------------------
def pad_collate(pad: int, left: bool = False):
    def collate(items):
        n = max(len(x) for x, _ in items)
        rows = []
        for x, _ in items:
            fill = torch.full((n - len(x),), pad, dtype=x.dtype)
            rows.append(torch.cat([fill, x]) if left else torch.cat([x, fill]))
        return torch.stack(rows), torch.tensor([y for _, y in items])
    return collate


def test_pad_id_is_inferred_from_the_collate():
    short, long = (torch.tensor([5, 6]), 0), (torch.tensor([1, 2, 3, 4, 5]), 1)
    assert ts.infer_pad_id(pad_collate(7), short, long) == 7
    assert ts.infer_pad_id(pad_collate(0, left=True), short, long) == 0

    def bag(items):  # EmbeddingBag style: ids concatenated, offsets
        return (torch.cat([x for x, _ in items]), torch.tensor([0, len(items[0][0])])), torch.tensor([0, 1])
    assert ts.infer_pad_id(bag, short, long) is None

    def dict_collate(items):
        ids, _ = pad_collate(3)([(x["input_ids"], y) for x, y in items])
        return {"input_ids": ids, "attention_mask": (ids != 3).long()}, torch.tensor([0, 1])
    assert ts.infer_pad_id(dict_collate, ({"input_ids": short[0]}, 0), ({"input_ids": long[0]}, 1)) == 3


def test_token_stats_count_padding_and_sequences_at_the_cap():
    st = ts.TokenStats()
    st.update(torch.tensor([[4, 5, 6, 0], [7, 0, 0, 0]]), pad_id=0)
    st.update(torch.tensor([[1, 2, 3, 4], [1, 2, 3, 4]]), pad_id=0)
    assert st.sequences == 4 and st.pad_fraction == pytest.approx(4 / 16)
    assert st.max_length == 4 and st.at_max_share == pytest.approx(0.5)
    assert st.min_id == 0 and st.max_id == 7 and st.varying_lengths
    assert st.length_percentile(50) == 3 and st.length_percentile(95) == 4
    masked = ts.TokenStats()
    masked.update(torch.tensor([[4, 5, 0]]), mask=torch.tensor([[1, 1, 1]]))  # the mask says 0 is real here
    assert masked.pad_fraction == 0


def test_duplicates_overlap_and_embedding_tables():
    h = [b"a", b"b", b"a", b"c", b"a"]
    d = ts.count_duplicates(h, [0, 1, 0, 2, 1])
    assert (d.duplicates, d.conflicts, d.conflict_groups) == (2, 3, 1)
    assert ts.count_duplicates(h, [0, 1, 0, 2, 0]).conflicts == 0
    o = ts.count_overlap([b"a", b"b"], [b"x", b"b", b"a"])
    assert o.in_train == 2 and o.pairs == [(1, 1), (2, 0)]
    model = torch.nn.Sequential(torch.nn.Embedding(100, 4, padding_idx=0), torch.nn.Embedding(8, 4))
    tables = ts.embedding_tables(model)
    assert [(t.num_embeddings, t.padding_idx) for t in tables] == [(100, 0), (8, None)]
    assert ts.largest_table(tables).num_embeddings == 100


# --- verdicts with planted values -------------------------------------------------------------------
def scale_measure(**kw):
    base = dict(per_split={"train": {"x": {"mean": [0.0], "std": [1.0]}}}, too_large=[], constant=[],
                integer_inputs=[])
    return T.ScaleMeasure(**{**base, **kw})


def test_scale_verdict():
    assert T.scale_verdict(scale_measure()).status == "pass"
    assert T.scale_verdict(scale_measure(too_large=["train x: max |x| 255"])).status == "fail"
    layout = {"channels": 3, "lag_c": 0.9, "peak": 0.2}
    assert T.scale_verdict(scale_measure(reshaped=True, layout=layout)).status == "fail"
    assert T.scale_verdict(scale_measure(constant=["train x channel 3 = 1"])).status == "warn"
    both = T.scale_verdict(scale_measure(too_large=["train x: max |x| 255"], reshaped=True, layout=layout))
    assert both.status == "fail" and "unscaled" in both.title and "interleaved" in both.detail
    ids_only = T.scale_verdict(scale_measure(per_split={"train": {}}, integer_inputs=["x"]))
    assert ids_only.status == "pass" and "ids" in ids_only.title and "scale" in ids_only.title


def test_scale_measure_finds_raw_pixels_and_a_constant_channel():
    rgba = np.random.default_rng(0).random((8, 4, 6, 6))
    rgba[:, 3] = 1.0                                   # an alpha channel
    big, const = T._scale_issues("train", "x", ts.batch_channel_stats(rgba))
    assert not big and const == ["train x channel 3 = 1"]
    big, const = T._scale_issues("train", "x", ts.batch_channel_stats(rgba * 255))
    assert big and "255" in big[0]
    assert T._scale_issues("train", "x", ts.batch_channel_stats(np.random.default_rng(1).normal(size=(50, 7)))) == ([], [])


def token_measure(**kw):
    st = ts.TokenStats()   # lengths 11..20 in rows of 20: one sequence of ten at the longest length
    st.update(torch.tensor([[5] * n + [0] * (20 - n) for n in range(11, 21)]), pad_id=0)
    table = ts.EmbeddingTable("emb", 50, 0, "Embedding")
    base = dict(ids_input="x", id_range={"train": (0, 9)}, tables=[table], table=table, pad_id=0,
                pad_source="collate", tokens=st, sample=4,
                invariance={"max_delta": 0.0, "scale": 1.0, "rows": 4, "split": "valid", "added_pads": 5})
    return K.TokenMeasure(**{**base, **kw})


def test_token_verdict():
    assert K.token_verdict(token_measure()).status == "pass"
    assert K.token_verdict(token_measure(id_range={"train": (0, 50)})).status == "fail"
    assert K.token_verdict(token_measure(id_range={"train": (-1, 9)})).status == "fail"
    unmasked = K.token_verdict(token_measure(invariance={"max_delta": 0.05, "scale": 1.0, "rows": 4,
                                                         "split": "valid", "added_pads": 5}))
    assert unmasked.status == "warn" and "not masked" in unmasked.title
    padded = ts.TokenStats()
    padded.update(torch.tensor([[5] * n + [0] * (40 - n) for n in range(1, 13)]), pad_id=0)   # 84% pads
    mostly_pads = K.token_verdict(token_measure(tokens=padded))
    assert mostly_pads.status == "warn" and "padding" in mostly_pads.title
    several = K.token_verdict(token_measure(id_range={"valid": (0, 70)}, invariance={
        "max_delta": 0.05, "scale": 1.0, "rows": 4, "split": "train", "added_pads": 5}))
    assert several.status == "fail" and "not masked" in several.detail   # the crash leads, the rest is said
    capped = ts.TokenStats()
    capped.update(torch.tensor([[1, 2, 3, 4]] * 5 + [[1, 2, 0, 0]] * 5), pad_id=0)
    assert "truncated" in K.token_verdict(token_measure(tokens=capped)).title


def quality(counts, images=1000, split="train"):
    return iq.ImageQuality(split=split, images=images, total=images, seconds=0.1, counts=counts)


def test_image_quality_verdict():
    assert T.image_quality_verdict({"train": quality({"dark": 0, "blurry": 0})}).status == "pass"
    assert T.image_quality_verdict({"train": quality({"dark": 10})}).status == "info"
    many_dark = T.image_quality_verdict({"train": quality({"dark": 100})})
    assert many_dark.status == "warn" and "dark" in many_dark.title
    # exact duplicates belong to data.duplicates: pointed to, never judged here
    dups = T.image_quality_verdict({"train": quality({"exact_duplicates": 300})})
    assert dups.status == "pass" and "data.duplicates" in dups.detail


def test_augmentation_verdict():
    read = {"train": 16, "valid": 16}
    clean = T.AugmentationMeasure(changed={"train": [], "valid": []}, read=read)
    assert T.augmentation_verdict(clean).status == "pass"
    train_aug = T.AugmentationMeasure(changed={"train": [1, 2], "valid": []}, read=read)
    assert T.augmentation_verdict(train_aug).status == "info"
    eval_random = T.AugmentationMeasure(changed={"train": [], "valid": [3]}, read=read)
    assert T.augmentation_verdict(eval_random).status == "fail"
    flips = T.AugmentationMeasure(changed={"train": [1], "valid": []}, read=read, flipped=[1], glyph_classes=True)
    assert T.augmentation_verdict(flips).status == "warn"
    flips.glyph_classes = False
    assert T.augmentation_verdict(flips).status == "info"
    assert T._glyph_classes(["0", "1", "2"]) and not T._glyph_classes(["cat", "dog"]) and not T._glyph_classes(None)


# --- cleanvision -----------------------------------------------------------------------------------
def test_cleanvision_finds_planted_dark_and_blank_images_not_sparse_digits(digits_hwc):
    images = [torch.tensor(im.transpose(2, 0, 1)) for im in digits_hwc[:300]]
    for i in range(0, 300, 10):
        images[i] = images[i] * 0.03            # 30 dark images (10%)
    for i in range(5, 300, 50):
        images[i] = torch.full_like(images[i], 0.5)   # 6 blank images
    q = iq.image_quality_of_tensors("train", images, np.arange(300), 300)
    assert q.counts["dark"] >= 28 and set(q.examples["dark"]) <= set(range(0, 300, 10))
    assert q.counts["low_information"] == 6
    assert q.source == "floats in [0, 1]"
    clean = iq.image_quality_of_tensors("train", [torch.tensor(im.transpose(2, 0, 1)) for im in digits_hwc[:300]],
                                        np.arange(300), 300)
    assert T.image_quality_verdict({"train": clean}).status in ("pass", "info")


def test_pixel_scale_and_conversion():
    assert iq.pixel_scale([torch.rand(3, 8, 8)]).scale == 255.0
    assert iq.pixel_scale([torch.rand(3, 8, 8) * 255]).scale == 1.0
    normalised = iq.pixel_scale([torch.randn(3, 8, 8)])
    assert "normalised" in normalised.note
    img = iq.tensor_to_pil(torch.ones(3, 8, 6) * 0.5, iq.pixel_scale([torch.ones(3, 8, 6) * 0.5]))
    assert img.size == (6, 8) and img.mode == "RGB" and img.getpixel((0, 0)) == (127, 127, 127)
    assert iq.tensor_to_pil(torch.zeros(1, 5, 5, dtype=torch.uint8), iq.PixelScale(1, 0, "")).mode == "L"
    with pytest.raises(ValueError, match="C, H, W"):
        iq.tensor_to_pil(torch.zeros(2, 2, 2, 2), iq.PixelScale(1, 0, ""))


def test_missing_cleanvision_is_a_skip_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "cleanvision", None)
    with pytest.raises(SkipCheck, match=r"mltriage\[images\]"):
        iq.require_cleanvision()


# --- projects -----------------------------------------------------------------------------------------
IMAGES_CODE = '''
import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from torch.utils.data import Dataset

RAW, RESHAPE, NAN, CONFLICT, LEAK, RANDOM_EVAL, DARK = {flags}
SIZES = {{"train": 300, "valid": 100}}
_CACHE = {{}}


def _images():
    if not _CACHE:
        d = load_digits()
        rng = np.random.default_rng(0)
        out = []
        for im in d.images[:400] / 16.0:
            big = np.kron(im, np.ones((4, 4)))[..., None]
            fg, bg = rng.uniform(0.5, 1.0, 3), rng.uniform(0.0, 0.3, 3)
            out.append(big * fg + (1 - big) * bg)
        _CACHE["x"], _CACHE["y"] = np.stack(out).astype(np.float32), d.target[:400]
    return _CACHE["x"], _CACHE["y"]


class Digits(Dataset):
    classes = [str(i) for i in range(10)]

    def __init__(self, split):
        self.split = split
        self.offset = 0 if split == "train" else 300

    def __len__(self):
        return SIZES[self.split]

    def __getitem__(self, i):
        X, y = _images()
        j, label = self.offset + i, int(y[self.offset + i])
        if CONFLICT and self.split == "train" and i < 10:
            j, label = 10 + i, (int(y[10 + i]) + 1) % 10    # item 10+i's image under another label
        if LEAK and self.split == "valid" and i < 10:
            j, label = i, int(y[i])                     # a train image in valid
        hwc = X[j] * (0.03 if DARK and i % 5 == 0 else 1.0)
        x = torch.from_numpy(hwc * 255.0 if RAW else hwc)
        x = x.reshape(3, 32, 32) if RESHAPE else x.permute(2, 0, 1).contiguous()
        if not RAW:
            x = (x - 0.4) / 0.3
        if self.split == "train" and not LEAK:           # augmentation: a random shift of up to 2 pixels
            x = torch.roll(x, shifts=int(torch.randint(-2, 3, ())), dims=2)
        elif RANDOM_EVAL:
            x = torch.roll(x, shifts=int(torch.randint(-2, 3, ())), dims=2)
        if NAN and i == 3:
            x = x.clone()
            x[0, 0, 0] = float("nan")
        return x, label


def make_dataset(split):
    if split not in SIZES:
        raise KeyError(split)
    return Digits(split)


def build_model():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                         nn.Linear(128, 10))
'''

TOKENS_CODE = '''
import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import Dataset

VOCAB, PAD = 60, 0
BIG_IDS, UNMASKED, TRUNCATE = {flags}
SIZES = {{"train": 400, "valid": 100}}


class Reviews(Dataset):
    def __init__(self, split):
        rng = np.random.default_rng(0 if split == "train" else 1)
        top = VOCAB + 10 if BIG_IDS else VOCAB
        self.items = []
        for _ in range(SIZES[split]):
            n = int(rng.integers(5, 60)) if TRUNCATE else int(rng.integers(10, 31))
            ids = rng.integers(1, top, size=n)[:20 if TRUNCATE else None]
            self.items.append((torch.tensor(ids, dtype=torch.int64), int((ids == 7).sum() > (ids == 8).sum())))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def make_dataset(split):
    if split not in SIZES:
        raise KeyError(split)
    return Reviews(split)


def collate(batch):
    n = max(len(x) for x, _ in batch)
    xb = torch.full((len(batch), n), PAD, dtype=torch.int64)
    for row, (x, _) in enumerate(batch):
        xb[row, :len(x)] = x
    return xb, torch.tensor([y for _, y in batch])


class MeanClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, 16, padding_idx=None if UNMASKED else PAD)
        self.out = nn.Linear(16, 2)

    def forward(self, x):
        e = self.embedding(x)
        if UNMASKED:
            return self.out(e.mean(dim=1))
        mask = (x != PAD).unsqueeze(-1).float()
        return self.out((e * mask).sum(1) / mask.sum(1).clamp(min=1))


def build_model():
    return MeanClassifier()
'''

TOML = '''
[project]
task = "classification"

[model]
code = "train.py"
dataset = "make_dataset"
{collate}build = "build_model"
loss = "cross_entropy"
batch_size = 64

[budget]
seconds = 10
'''


def write_tensor_project(root, code: str, flags: tuple, collate: bool = False):
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.py").write_text(textwrap.dedent(code.format(flags=", ".join(map(str, flags)))))
    (root / "mltriage.toml").write_text(TOML.format(collate='collate = "collate"\n' if collate else ""))
    return root


IMAGE_FLAGS = ("raw", "reshape", "nan", "conflict", "leak", "random_eval", "dark")


def image_project(tmp_path, *on):
    flags = tuple(name in on for name in IMAGE_FLAGS)
    return context_for(write_tensor_project(tmp_path / ("images_" + "_".join(on or ("clean",))), IMAGES_CODE, flags))


def token_project(tmp_path, *on):
    flags = tuple(name in on for name in ("big_ids", "unmasked", "truncate"))
    root = tmp_path / ("tokens_" + "_".join(on or ("clean",)))
    return context_for(write_tensor_project(root, TOKENS_CODE, flags, collate=True))


def tensor_findings(ctx):
    """Every finding of this module's checks and functions on one project."""
    out = {"data.missing_values": T.tensor_missing_values(ctx), "data.feature_scale": T.tensor_feature_scale(ctx),
           "data.duplicates": T.tensor_duplicates(ctx), "data.split_overlap": T.tensor_split_overlap(ctx)}
    for cid in ("data.token_ids", "data.image_quality", "data.augmentation"):
        out[cid] = run_check(ctx, cid)
    return out


def assert_clean(findings):
    loud = {k: (f.status, f.title) for k, f in findings.items() if f.status in ("fail", "warn", "error")}
    assert not loud, loud


def test_clean_image_project_gives_no_fail_or_warn(tmp_path):
    found = tensor_findings(image_project(tmp_path))
    assert_clean(found)
    assert found["data.image_quality"].status in ("pass", "info")
    assert found["data.augmentation"].status == "info"        # the train shift is seen, valid is fixed
    assert found["data.token_ids"].status == "skipped"
    assert found["data.feature_scale"].evidence["channel_layout"]["peak"] < 0


@pytest.mark.parametrize("defect, check_id, status, words", [
    ("raw", "data.feature_scale", "fail", "unscaled"),
    ("reshape", "data.feature_scale", "fail", "interleaved"),
    ("nan", "data.missing_values", "fail", "not-a-number"),
    ("conflict", "data.duplicates", "fail", "different labels"),
    ("leak", "data.split_overlap", "fail", "10 of 100 valid"),
    ("random_eval", "data.augmentation", "fail", "random transforms at evaluation"),
    ("dark", "data.image_quality", "warn", "dark"),
])
def test_planted_image_defects_are_flagged_by_their_check(tmp_path, defect, check_id, status, words):
    found = tensor_findings(image_project(tmp_path, defect))
    assert found[check_id].status == status and words in found[check_id].title, found[check_id].title
    others = {k: f.status for k, f in found.items() if k != check_id and f.status in ("fail", "error")}
    assert not others, others


def test_clean_token_project_gives_no_fail_or_warn(tmp_path):
    found = tensor_findings(token_project(tmp_path))
    assert_clean(found)
    tok = found["data.token_ids"]
    assert tok.status == "pass" and tok.evidence["pad_id"] == 0 and tok.evidence["pad_source"] == "collate"
    assert tok.evidence["padding_invariance"]["max_delta"] < 1e-6
    assert found["data.feature_scale"].status == "pass" and "ids" in found["data.feature_scale"].title
    assert found["data.image_quality"].status == "skipped"


@pytest.mark.parametrize("defect, status, words", [
    ("big_ids", "fail", "but embedding has 60 rows"),
    ("unmasked", "warn", "padding is not masked"),
    ("truncate", "warn", "truncated"),
])
def test_planted_token_defects_are_flagged(tmp_path, defect, status, words):
    found = tensor_findings(token_project(tmp_path, defect))
    tok = found["data.token_ids"]
    assert tok.status == status and words in tok.title, tok.title
    others = {k: f.status for k, f in found.items() if k != "data.token_ids" and f.status in ("fail", "warn", "error")}
    assert not others, others


def test_overlap_hidden_by_train_augmentation_is_said_not_passed(tmp_path):
    root = write_tensor_project(tmp_path / "aug_leak", IMAGES_CODE.replace("and not LEAK", ""),
                                tuple(n == "leak" for n in IMAGE_FLAGS))
    found = T.tensor_split_overlap(context_for(root))
    assert found.status == "info" and "transformed at random" in found.title


def test_reading_a_split_leaves_the_global_random_state_alone(tmp_path):
    ctx = image_project(tmp_path)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    T.split_scan(ctx, "train")
    run_check(ctx, "data.augmentation")
    assert torch.equal(torch.rand(3), expected)


LAZY_CODE = """
import numpy as np
import torch
from torch.utils.data import Dataset

N = {n}


class Lazy(Dataset):
    def __len__(self):
        return N

    def __getitem__(self, i):
        # numpy-allocated, so that tracemalloc sees the item's memory (torch's allocator is not traced)
        return torch.from_numpy(np.random.default_rng(i).random((3, 16, 16), dtype=np.float32)), i % 3


def make_dataset(split):
    if split not in ("train", "valid"):
        raise KeyError(split)
    return Lazy()
"""


def test_scanning_a_split_streams_its_items(tmp_path):
    import tracemalloc

    peaks = {}
    for n in (1000, 4000):
        root = tmp_path / f"lazy{n}"
        root.mkdir()
        (root / "train.py").write_text(LAZY_CODE.format(n=n))
        (root / "mltriage.toml").write_text('[project]\ntask = "classification"\n[model]\ncode = "train.py"\n'
                                            'dataset = "make_dataset"\n')
        ctx = context_for(root)
        tracemalloc.start()
        T.split_scan(ctx, "valid")
        peaks[n] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    # 3,000 more items of 3 KB each would be 9 MB if they were kept; hashes and labels are < 0.5 MB
    assert peaks[4000] - peaks[1000] < 1_000_000, peaks


class FlippingSplit:
    """A split whose train transform mirrors the image under the second read's seed."""

    def item(self, i):
        x = torch.arange(12, dtype=torch.float32).reshape(1, 3, 4) + i
        return (torch.flip(x, dims=[-1]) if torch.initial_seed() == T.READ_SEEDS[1] else x), 0


def test_two_reads_see_a_mirror_and_a_steady_item():
    with T.preserved_rng():
        assert T._two_reads(FlippingSplit(), 0) == (False, True)

    class Steady:
        def item(self, i):
            return torch.ones(3, 4, 4), 0
    with T.preserved_rng():
        assert T._two_reads(Steady(), 0) == (True, False)


def test_image_folder_files_go_to_cleanvision(tmp_path):
    from PIL import Image
    from torch.utils.data import Subset

    rng = np.random.default_rng(0)
    paths = []
    for i in range(40):
        base = rng.integers(60, 200, size=(24, 24, 3)).astype(np.uint8)
        if i % 8 == 0:
            base = (base * 0.05).astype(np.uint8)      # 5 dark files
        path = tmp_path / str(i % 2) / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(base).save(path)
        paths.append(path)

    class Folder:
        samples = [(str(p), 0) for p in paths]
    assert iq.dataset_files(Subset(Folder(), [3, 1])) == [str(paths[3]), str(paths[1])]
    assert iq.dataset_files(object()) is None
    q = iq.image_quality_of_files("train", paths, np.arange(40), 40)
    assert q.counts["dark"] == 5 and sorted(q.examples["dark"]) == [0, 8, 16, 24, 32] and q.source == "image files"


def test_large_images_get_a_smaller_sample():
    class Split:
        def __init__(self, side):
            self.side = side

        def item(self, i):
            return torch.zeros(3, self.side, self.side), 0
    assert iq.images_within_budget(Split(32)) == iq.IMAGE_SAMPLE
    assert iq.images_within_budget(Split(224)) == iq.PIXEL_BUDGET // (224 * 224)
    assert iq.images_within_budget(Split(2048)) == iq.MIN_IMAGES
