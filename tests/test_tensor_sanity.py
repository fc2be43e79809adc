"""The sanity step on tensor projects (DESIGN §3b, issue 14 §3): small Dataset projects written into tmp_path
(a CNN on images, an EmbeddingBag on (text, offsets), an LSTM language model with sequence targets, a model
taking a dict of input_ids/attention_mask, train_steps that compute their loss themselves). The correct
versions give no fail or error in the sanity step; a planted defect fires the check that owns it."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch
from helpers import context_for, run_check

torch.set_num_threads(1)

SANITY = ("sanity.data_loads", "sanity.model_builds", "sanity.input_batch", "sanity.forward_pass",
          "sanity.loss_at_init", "sanity.loss_shapes", "sanity.overfit_small_batch", "sanity.gradient_flow",
          "sanity.input_independent", "sanity.train_step", "sanity.eval_determinism")


def write(root, code: str, model_toml: str, budget: int = 20):
    (root / "train.py").write_text(textwrap.dedent(code))
    (root / "mltriage.toml").write_text(textwrap.dedent(f"""
        [model]
        code = "train.py"
        dataset = "make_dataset"
        build = "build_model"
        {textwrap.dedent(model_toml).strip()}

        [budget]
        seconds = {budget}
        """))
    return root


def run_sanity(root, ids=SANITY) -> dict:
    ctx = context_for(root)
    return {cid: run_check(ctx, cid) for cid in ids}


def assert_clean(findings: dict) -> None:
    bad = {cid: (f.status, f.title, f.detail[:300]) for cid, f in findings.items() if f.status in ("fail", "error")}
    assert not bad, bad


# ---- images: a CNN on colour digits (3x16x16) -----------------------------------------------------

IMAGES = '''
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch.utils.data import Dataset

SCALE = 1.0
LAYOUT = "permute"


def _colour_digits():
    """Channels-last colour digits: red the digit, green it transposed, blue its negative."""
    d = load_digits()
    grey = np.kron(d.images / 16.0, np.ones((2, 2)))                       # N, 16, 16
    hwc = np.stack([grey, grey.transpose(0, 2, 1), 1.0 - grey], axis=-1)   # N, H, W, C
    return hwc.astype(np.float32), d.target


class Digits(Dataset):
    def __init__(self, split):
        hwc, y = _colour_digits()
        order = np.random.default_rng(1).permutation(len(y))
        parts = {"train": order[:600], "valid": order[600:800]}
        if split not in parts:
            raise KeyError(split)
        hwc = np.ascontiguousarray(hwc[parts[split]] * SCALE)
        x = torch.from_numpy(hwc)
        if LAYOUT == "reshape":
            x = x.reshape(len(x), 3, 16, 16)
        else:
            x = x.permute(0, 3, 1, 2).contiguous()
        self.x, self.y = x, torch.from_numpy(y[parts[split]])

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


def make_dataset(split):
    return Digits(split)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(self.drop(x.flatten(1)))


def build_model():
    return Net()


def train_step(model, optimizer, loss_fn, xb, yb):
    model.train()
    optimizer.zero_grad()
    loss = loss_fn(model(xb), yb)
    loss.backward()
    optimizer.step()
    return loss.item()


def predict(model, xb):
    model.eval()
    with torch.no_grad():
        return model(xb)
'''

IMAGES_TOML = '''
loss = "cross_entropy"
lr = 0.003
batch_size = 32
train_step = "train_step"
predict = "predict"
'''


def images_project(root, code=IMAGES):
    return write(root, code, IMAGES_TOML)


def test_images_clean(tmp_path):
    findings = run_sanity(images_project(tmp_path))
    assert_clean(findings)
    batch = findings["sanity.input_batch"]
    assert batch.status == "pass" and "batch of 32" in batch.title
    ev = batch.evidence
    assert set(ev) == {"modality", "batch_size", "inputs", "target", "examples"}
    assert ev["modality"] == "images" and ev["inputs"][0]["shape"] == [32, 3, 16, 16]
    assert set(ev["inputs"][0]) == {"name", "shape", "dtype", "min", "max", "mean", "std"}
    assert ev["target"] == {"shape": [32], "dtype": "int64"}
    assert len(ev["examples"]) == 8 and all(e["png"] and e["text"] is None for e in ev["examples"])
    assert findings["sanity.model_builds"].evidence["input_shape"] == {"x": [3, 16, 16]}
    assert findings["sanity.forward_pass"].evidence["output_shape"] == [64, 10]


def test_images_example_png_is_the_image(tmp_path):
    import base64
    import io

    from PIL import Image

    ev = run_sanity(images_project(tmp_path), ("sanity.input_batch",))["sanity.input_batch"].evidence
    picture = Image.open(io.BytesIO(base64.b64decode(ev["examples"][0]["png"])))
    assert picture.size == (16, 16) and picture.mode == "RGB"
    assert np.asarray(picture).max() == 255  # scaled by the image's own min/max


def test_images_reshape_not_permute_fails(tmp_path):
    code = IMAGES.replace('LAYOUT = "permute"', 'LAYOUT = "reshape"')
    f = run_sanity(images_project(tmp_path, code), ("sanity.input_batch",))["sanity.input_batch"]
    assert f.status == "fail" and "interleaved" in f.title


def test_images_raw_pixels_warn(tmp_path):
    code = IMAGES.replace("SCALE = 1.0", "SCALE = 255.0")
    f = run_sanity(images_project(tmp_path, code), ("sanity.input_batch",))["sanity.input_batch"]
    assert f.status == "warn" and "raw 0-255" in f.title


def test_images_nan_in_batch_fails(tmp_path):
    code = IMAGES.replace("        self.x, self.y = x, torch.from_numpy(y[parts[split]])",
                          "        x[::5, 0, 0, 0] = float('nan')\n"
                          "        self.x, self.y = x, torch.from_numpy(y[parts[split]])")
    f = run_sanity(images_project(tmp_path, code), ("sanity.input_batch",))["sanity.input_batch"]
    assert f.status == "fail" and "not-a-number" in f.title


def test_images_detached_layer_fails_gradient_flow(tmp_path):
    code = IMAGES.replace("x = F.max_pool2d(F.relu(self.conv1(x)), 2)",
                          "x = F.max_pool2d(F.relu(self.conv1(x)), 2).detach()")
    f = run_sanity(images_project(tmp_path, code), ("sanity.gradient_flow",))["sanity.gradient_flow"]
    assert f.status == "fail" and "conv1.weight" in f.evidence["no_gradient_used"]


def test_images_frozen_layer_is_not_a_gradient_failure(tmp_path):
    code = IMAGES.replace("def build_model():\n    return Net()",
                          "def build_model():\n    net = Net()\n    net.conv1.requires_grad_(False)\n    return net")
    f = run_sanity(images_project(tmp_path, code), ("sanity.gradient_flow",))["sanity.gradient_flow"]
    assert f.status == "pass" and f.evidence["frozen"] == ["conv1.weight", "conv1.bias"]


def test_images_model_ignoring_input_fails(tmp_path):
    code = IMAGES.replace("    def forward(self, x):\n        x = F.max_pool2d",
                          "    def forward(self, x):\n        x = torch.zeros_like(x)\n        x = F.max_pool2d")
    f = run_sanity(images_project(tmp_path, code), ("sanity.input_independent",))["sanity.input_independent"]
    assert f.status == "fail", (f.title, f.evidence)


def test_images_dropout_left_on_at_predict_fails(tmp_path):
    code = IMAGES.replace("def predict(model, xb):\n    model.eval()\n", "def predict(model, xb):\n")
    f = run_sanity(images_project(tmp_path, code), ("sanity.eval_determinism",))["sanity.eval_determinism"]
    assert f.status == "fail" and f.evidence["model_training_after_predict"] is True


# ---- tokens: EmbeddingBag on (text, offsets) ----------------------------------------------------

TOPICS = '''
import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import Dataset

VOCAB, CLASSES, PAD = 60, 3, 0


class Topics(Dataset):
    """Sequences of 5-14 ids: half topic words of the label (1 + 10 * label ...), half filler (31-59)."""

    def __init__(self, split):
        seeds = {"train": 0, "valid": 1}
        if split not in seeds:
            raise KeyError(split)
        rng = np.random.default_rng(seeds[split])
        self.items = []
        for _ in range(300 if split == "train" else 100):
            label = int(rng.integers(CLASSES))
            n = int(rng.integers(5, 15))
            topic = rng.integers(1 + 10 * label, 11 + 10 * label, size=n // 2)
            filler = rng.integers(31, VOCAB, size=n - n // 2)
            self.items.append((torch.tensor(rng.permutation(np.concatenate([topic, filler]))), label))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def make_dataset(split):
    return Topics(split)
'''

EMBEDDING_BAG = TOPICS + '''
SPARSE = False


def collate(batch):
    labels = torch.tensor([y for _, y in batch], dtype=torch.int64)
    texts = [x for x, _ in batch]
    offsets = torch.tensor([0] + [len(t) for t in texts[:-1]]).cumsum(dim=0)
    return (torch.cat(texts), offsets), labels


class Bag(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.EmbeddingBag(VOCAB, 16, sparse=SPARSE)
        self.fc = nn.Linear(16, CLASSES)

    def forward(self, text, offsets):
        return self.fc(self.embedding(text, offsets))


def build_model():
    return Bag()


def train_step(model, optimizer, loss_fn, inputs, labels):
    model.train()
    optimizer.zero_grad()
    loss = loss_fn(model(*inputs), labels)
    loss.backward()
    optimizer.step()
    return loss.item()


def predict(model, inputs):
    model.eval()
    with torch.no_grad():
        return model(*inputs)
'''

BAG_TOML = '''
collate = "collate"
loss = "cross_entropy"
optimizer = "sgd"
lr = 2.0
batch_size = 16
train_step = "train_step"
predict = "predict"
'''


def test_embedding_bag_clean(tmp_path):
    findings = run_sanity(write(tmp_path, EMBEDDING_BAG, BAG_TOML))
    assert_clean(findings)
    ev = findings["sanity.input_batch"].evidence
    assert ev["modality"] == "tokens" and [i["name"] for i in ev["inputs"]] == ["x[0]", "x[1]"]
    assert all(e["png"] is None and e["ids"] for e in ev["examples"])
    assert findings["sanity.forward_pass"].evidence["output_shape"] == [64, 3]
    assert findings["sanity.input_independent"].status == "pass"


def test_embedding_bag_sparse_gradients_count(tmp_path):
    code = EMBEDDING_BAG.replace("SPARSE = False", "SPARSE = True")
    findings = run_sanity(write(tmp_path, code, BAG_TOML), ("sanity.gradient_flow", "sanity.train_step"))
    assert_clean(findings)
    assert findings["sanity.gradient_flow"].status == "pass"
    assert findings["sanity.gradient_flow"].evidence["grad_norms"]["embedding.weight"] > 0


def test_embedding_bag_no_zero_grad_fails_train_step(tmp_path):
    code = EMBEDDING_BAG.replace("    model.train()\n    optimizer.zero_grad()\n", "    model.train()\n")
    f = run_sanity(write(tmp_path, code, BAG_TOML), ("sanity.train_step",))["sanity.train_step"]
    assert f.status == "fail" and "pile up" in f.title


def test_decode_shows_text(tmp_path):
    code = EMBEDDING_BAG + '\n\ndef decode(ids):\n    return " ".join(f"w{i}" for i in ids)\n'
    toml = BAG_TOML + 'decode = "decode"\n'
    ev = run_sanity(write(tmp_path, code, toml), ("sanity.input_batch",))["sanity.input_batch"].evidence
    first = ev["examples"][0]
    assert first["text"] == " ".join(f"w{i}" for i in first["ids"])


# ---- tokens: a dict of input_ids / attention_mask, padded with id 1 --------------------------------

DICT_INPUTS = TOPICS + '''
PAD_ID = 1


def collate(batch):
    longest = max(len(x) for x, _ in batch)
    ids = torch.full((len(batch), longest), PAD_ID, dtype=torch.int64)
    mask = torch.zeros((len(batch), longest), dtype=torch.float32)
    for row, (x, _) in enumerate(batch):
        ids[row, :len(x)] = torch.where(x == PAD_ID, torch.tensor(2), x)
        mask[row, :len(x)] = 1.0
    return {"input_ids": ids, "attention_mask": mask}, torch.tensor([y for _, y in batch])


class Pooled(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, 16, padding_idx=PAD_ID)
        self.fc = nn.Linear(16, CLASSES)

    def forward(self, input_ids, attention_mask):
        h = self.embedding(input_ids) * attention_mask.unsqueeze(-1)
        return self.fc(h.sum(1) / attention_mask.sum(1, keepdim=True).clamp(min=1))


def build_model():
    return Pooled()
'''

DICT_TOML = '''
collate = "collate"
loss = "cross_entropy"
lr = 0.02
batch_size = 32
'''


def test_dict_inputs_clean_and_blanked_with_padding_id(tmp_path):
    from mltriage.checks.steps.sanity.batch import blank_batch, fixed_batch, padding_id

    root = write(tmp_path, DICT_INPUTS, DICT_TOML)
    findings = run_sanity(root)
    assert_clean(findings)
    assert [i["name"] for i in findings["sanity.input_batch"].evidence["inputs"]] == ["input_ids", "attention_mask"]
    ctx = context_for(root)
    assert padding_id(ctx) == 1
    xb, _ = fixed_batch(ctx, 8)
    blank = blank_batch(xb, padding_id(ctx))
    assert bool((blank["input_ids"] == 1).all())
    assert torch.equal(blank["attention_mask"], xb["attention_mask"])  # the mask stays valid


# ---- sequence targets: an LSTM language model, forward -> (log_probs, hidden), F.nll_loss ------------

LANGUAGE_MODEL = '''
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import Dataset

VOCAB, T = 24, 12


def _corpus(n, seed):
    """Mostly deterministic successors (next = 5 * prev + 3 mod VOCAB), one token in ten random."""
    rng = np.random.default_rng(seed)
    ids = [int(rng.integers(VOCAB))]
    for _ in range(n - 1):
        ids.append(int(rng.integers(VOCAB)) if rng.random() < 0.1 else (5 * ids[-1] + 3) % VOCAB)
    return torch.tensor(ids)


class Windows(Dataset):
    def __init__(self, ids):
        self.ids = ids

    def __len__(self):
        return (len(self.ids) - 1) // T

    def __getitem__(self, i):
        s = i * T
        return self.ids[s:s + T], self.ids[s + 1:s + 1 + T]


def make_dataset(split):
    seeds = {"train": 0, "valid": 1}
    if split not in seeds:
        raise KeyError(split)
    return Windows(_corpus((300 if split == "train" else 80) * T + 1, seeds[split]))


class LM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, 32)
        self.lstm = nn.LSTM(32, 32, batch_first=True)
        self.decoder = nn.Linear(32, VOCAB)

    def forward(self, x, hidden=None):
        out, hidden = self.lstm(self.embedding(x), hidden)
        return F.log_softmax(self.decoder(out), dim=-1), hidden


def build_model():
    return LM()


def train_step(model, optimizer, criterion, data, targets):
    model.train()
    optimizer.zero_grad()
    log_probs, _ = model(data)
    loss = F.nll_loss(log_probs.reshape(-1, VOCAB), targets.reshape(-1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
    optimizer.step()
    return loss.item()


def predict(model, data):
    model.eval()
    with torch.no_grad():
        return model(data)[0]
'''

LM_TOML = '''
loss = "nll"
lr = 0.01
batch_size = 20
train_step = "train_step"
predict = "predict"
'''


def test_language_model_clean(tmp_path):
    import math

    findings = run_sanity(write(tmp_path, LANGUAGE_MODEL, LM_TOML))
    assert_clean(findings)
    assert findings["sanity.forward_pass"].evidence["output_shape"] == [64, 12, 24]
    init = findings["sanity.loss_at_init"]
    assert init.status == "pass" and init.evidence["theory"] == pytest.approx(math.log(24), rel=1e-4)
    shapes = findings["sanity.loss_shapes"]
    assert shapes.status == "pass" and "F.nll_loss" in shapes.title
    assert shapes.evidence["shapes"] == [[64 * 12, 24], [64 * 12]]
    assert findings["sanity.input_batch"].evidence["target"] == {"shape": [20, 12], "dtype": "int64"}


def test_language_model_time_major_output_fails_forward_pass(tmp_path):
    code = LANGUAGE_MODEL.replace("return F.log_softmax(self.decoder(out), dim=-1), hidden",
                                  "return F.log_softmax(self.decoder(out), dim=-1).transpose(0, 1), hidden")
    f = run_sanity(write(tmp_path, code, LM_TOML), ("sanity.forward_pass",))["sanity.forward_pass"]
    assert f.status == "fail" and f.evidence["target_shape"] == [64, 12]


# ---- a train_step computing its loss itself: matched by value, broadcast bugs still caught -----------

REGRESSION = '''
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import Dataset


class Points(Dataset):
    def __init__(self, split):
        seeds = {"train": 0, "valid": 1}
        if split not in seeds:
            raise KeyError(split)
        rng = np.random.default_rng(seeds[split])
        self.x = torch.tensor(rng.normal(size=(200, 4)), dtype=torch.float32)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5, 0.0]) + 0.1 * torch.tensor(rng.normal(size=200),
                                                                                   dtype=torch.float32)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], float(self.y[i])


def make_dataset(split):
    return Points(split)


def build_model():
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))


def train_step(model, optimizer, loss_fn, xb, yb):
    model.train()
    optimizer.zero_grad()
    LOSS_LINE
    loss.backward()
    optimizer.step()
    return loss.item()
'''

REGRESSION_TOML = '''
loss = "mse"
lr = 0.01
batch_size = 32
train_step = "train_step"
'''


@pytest.mark.parametrize("line,status,words", [
    ("loss = ((model(xb).squeeze(1) - yb) ** 2).mean()", "pass", "matches the configured mse"),
    ("loss = (model(xb).squeeze(1) - yb).abs().mean()", "pass", "is l1 of the model's outputs"),
    ("loss = ((model(xb) - yb) ** 2).mean()", "fail", "broadcast"),
    ("loss = F.mse_loss(model(xb), yb)", "fail", "broadcasts"),
    ("loss = F.mse_loss(model(xb).squeeze(1), yb)", "pass", "calling F.mse_loss itself"),
])
def test_loss_shapes_with_a_step_of_its_own(tmp_path, line, status, words):
    code = REGRESSION.replace("LOSS_LINE", line)
    f = run_sanity(write(tmp_path, code, REGRESSION_TOML), ("sanity.loss_shapes",))["sanity.loss_shapes"]
    assert f.status == status and words in f.title, (f.title, f.evidence)


# ---- table projects: unchanged; input_batch does not apply -----------------------------------------

def test_input_batch_skipped_on_tables(tmp_path):
    import pandas as pd
    from helpers import GOOD_TORCH_MODEL, write_project

    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(120, 3)), columns=["a", "b", "c"])
    df["label"] = (df["a"] > 0).astype(int)
    root = write_project(tmp_path, df, df, toml_extra='[model]\ncode = "model.py"\nbuild = "build_model"',
                         model_code=GOOD_TORCH_MODEL)
    f = run_check(root, "sanity.input_batch")
    assert f.status == "skipped" and "tensor" in f.detail


# ---- verdicts, without a project -------------------------------------------------------------------

def test_input_batch_verdicts():
    from mltriage.checks.steps.sanity.batch import InputBatch, _input_batch_verdict

    def batch(**kw):
        base = {"modality": "images", "batch_size": 64,
                "inputs": [{"name": "x", "shape": [64, 3, 32, 32], "dtype": "float32", "min": -1.0, "max": 1.0,
                            "mean": 0.0, "std": 0.5}], "target": {"shape": [64], "dtype": "int64"}, "examples": []}
        return _input_batch_verdict(InputBatch(**{**base, **kw}))

    ok = batch()
    assert ok.status == "pass" and ok.title == "batch of 64: x float32 (64, 3, 32, 32) in [-1, 1]; target int64 (64,)"
    assert batch(image_max={"x": 255.0}).status == "warn"
    assert batch(image_max={"x": 2.6}).status == "pass"  # ImageNet-normalised images
    assert batch(nonfinite={"x": 3}).status == "fail"
    scrambled = batch(scrambled=["x"], layout={"x": {"lag_1": 0.2, "lag_c": 0.8, "peak": 0.5}})
    assert scrambled.status == "fail" and "permute" in scrambled.fix


def test_loss_value_verdicts():
    from mltriage.checks.steps.sanity.steps import LossCalls, _loss_shapes_verdict

    ref = [{"loss": "configured mse", "value": 1.0, "broadcast": False, "mode": "train"},
           {"loss": "l1", "value": 0.8, "broadcast": False, "mode": "train"},
           {"loss": "mse", "value": 2.5, "broadcast": True, "mode": "train"}]

    def verdict(returned):
        return _loss_shapes_verdict(LossCalls("mse", True, "the project's train_step", [], returned=returned,
                                              reference=ref, compared=True))

    assert verdict(1.0000001).status == "pass" and "configured" in verdict(1.0).title
    assert verdict(0.8).status == "pass" and "l1" in verdict(0.8).title
    assert verdict(2.5).status == "fail"
    assert verdict(7.0).status == "info"
    assert verdict(None).status == "info"


def test_blank_batch_replaces_only_the_ids():
    from mltriage.checks.steps.sanity.batch import blank_batch

    text, offsets = torch.tensor([5, 6, 7, 8, 9]), torch.tensor([0, 2])
    blank_text, blank_offsets = blank_batch((text, offsets), 0)
    assert blank_text.tolist() == [0] * 5 and blank_offsets.tolist() == [0, 2]
    images = torch.rand(2, 3, 4, 4)
    assert float(blank_batch(images, 0).abs().sum()) == 0.0


def test_sparse_gradients_are_gradients():
    from mltriage.checks.steps.sanity.fitting import _gradient_values

    emb = torch.nn.Embedding(10, 3, sparse=True)
    emb(torch.tensor([1, 2])).sum().backward()
    values = _gradient_values(emb.weight.grad)
    assert float(values.abs().max()) > 0 and bool(torch.isfinite(values).all())


def test_sequence_output_shapes():
    from mltriage.checks.steps.sanity.model import _sequence_expectation

    assert _sequence_expectation([4, 7, 30], [4, 7])[1]
    assert _sequence_expectation([28, 30], [4, 7])[1]
    assert not _sequence_expectation([7, 4, 30], [4, 7])[1]


# ---- more calling conventions: a Lightning-style module, a Hugging Face-style .loss, split mismatches --

LIGHTNING_STYLE = IMAGES + '''


class LitNet(Net):
    """The LightningModule protocol without importing Lightning: training_step and configure_optimizers."""

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.003)
'''


def test_lightning_style_training_step_is_understood(tmp_path):
    (tmp_path / "train.py").write_text(textwrap.dedent(LIGHTNING_STYLE))
    (tmp_path / "mltriage.toml").write_text(
        '[model]\ncode = "train.py"\ndataset = "make_dataset"\nlightning = "LitNet"\nloss = "cross_entropy"\n'
        'batch_size = 32\n\n[budget]\nseconds = 20\n')
    findings = run_sanity(tmp_path, ("sanity.loss_shapes", "sanity.overfit_small_batch", "sanity.gradient_flow"))
    assert_clean(findings)
    shapes = findings["sanity.loss_shapes"]
    assert shapes.status == "pass" and "LitNet.training_step" in shapes.title and "F.cross_entropy" in shapes.title


HF_STYLE = DICT_INPUTS + '''


class Output:
    def __init__(self, logits, loss=None):
        self.logits, self.loss = logits, loss


class WithLoss(Pooled):
    """forward(input_ids, attention_mask, labels=None) -> an object with .logits and .loss, as HF models."""

    def forward(self, input_ids, attention_mask, labels=None):
        logits = super().forward(input_ids, attention_mask)
        return Output(logits, None if labels is None else nn.functional.cross_entropy(logits, labels))


def build_with_loss():
    return WithLoss()


def train_step(model, optimizer, loss_fn, xb, yb):
    model.train()
    optimizer.zero_grad()
    loss = model(**xb, labels=yb).loss
    loss.backward()
    optimizer.step()
    return loss.item()
'''


def test_loss_inside_forward_is_understood(tmp_path):
    toml = DICT_TOML.replace('loss = "cross_entropy"', 'loss = "cross_entropy"\ntrain_step = "train_step"')
    root = write(tmp_path, HF_STYLE, toml)
    text = (root / "mltriage.toml").read_text().replace('build = "build_model"', 'build = "build_with_loss"')
    (root / "mltriage.toml").write_text(text)
    findings = run_sanity(root, ("sanity.forward_pass", "sanity.loss_shapes", "sanity.train_step"))
    assert_clean(findings)
    assert findings["sanity.loss_shapes"].status == "pass"


def test_unused_module_warns_on_tensor_project(tmp_path):
    code = IMAGES.replace("        self.fc = nn.Linear(16 * 4 * 4, 10)\n",
                          "        self.fc = nn.Linear(16 * 4 * 4, 10)\n        self.spare = nn.Linear(5, 5)\n")
    f = run_sanity(images_project(tmp_path, code), ("sanity.gradient_flow",))["sanity.gradient_flow"]
    assert f.status == "warn" and "spare.weight" in f.evidence["no_gradient_unused"]


def test_valid_split_of_another_dtype_fails_data_loads(tmp_path):
    code = IMAGES.replace("        self.x, self.y = x, torch.from_numpy(y[parts[split]])",
                          "        x = x.double() if split == 'valid' else x\n"
                          "        self.x, self.y = x, torch.from_numpy(y[parts[split]])")
    f = run_sanity(images_project(tmp_path, code), ("sanity.data_loads",))["sanity.data_loads"]
    assert f.status == "fail" and "float64" in f.title


def test_random_eval_transform_is_not_called_batch_dependence(tmp_path):
    # noise added on every read of a valid item: data.augmentation owns that; predict itself is deterministic
    code = IMAGES.replace("    def __getitem__(self, i):\n        return self.x[i], int(self.y[i])",
                          "    def __getitem__(self, i):\n        return self.x[i] + 0.1 * torch.rand_like(self.x[i]), "
                          "int(self.y[i])")
    f = run_sanity(images_project(tmp_path, code), ("sanity.eval_determinism",))["sanity.eval_determinism"]
    assert f.status == "pass", (f.title, f.evidence)
