"""The architecture step on tensor projects (DESIGN §3b, issue 14 §3): small projects written as a user
would (a Dataset, a collate, a model taking tensors, tuples or dicts), whose correct versions show no fail or
error in the step, and planted defects that fire: dead conv channels, a sigmoid before BCEWithLogitsLoss, an
output narrower than the vocabulary, a frozen block at random initialisation (and the same block loaded from a
checkpoint, which is fine). Also the verdict of architecture.frozen_layers without a project."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from helpers import context_for, run_check

ARCHITECTURE_IDS = ("architecture.summary", "architecture.output_layer", "architecture.output_size",
                    "architecture.capacity", "architecture.dead_units", "architecture.saturation",
                    "architecture.init_scale", "architecture.dropout", "architecture.frozen_layers")

# Digits (scikit-learn's bundled set) as 1x8x8 images in [0, 1].
DIGITS = '''
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import Dataset
from sklearn.datasets import load_digits


class Digits(Dataset):
    def __init__(self, split):
        d = load_digits()
        idx = np.random.default_rng(0).permutation(len(d.target))
        parts = {"train": idx[:500], "valid": idx[500:700]}
        if split not in parts:
            raise KeyError(split)
        self.X = torch.from_numpy((d.images[parts[split]] / 16.0).astype(np.float32)).unsqueeze(1)
        self.y = d.target[parts[split]]

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.X[i], int(self.y[i])


def make_dataset(split):
    return Digits(split)
'''

# Variable-length token sequences (ids 1..VOCAB-1, 0 is padding); the class is which of three marker
# tokens the sequence holds most often.
TOKENS = '''
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

VOCAB = 40
PAD = 0


class Sequences(Dataset):
    def __init__(self, split):
        sizes = {"train": 400, "valid": 120}
        if split not in sizes:
            raise KeyError(split)
        rng = np.random.default_rng({"train": 1, "valid": 2}[split])
        self.items = []
        for _ in range(sizes[split]):
            ids = rng.integers(4, VOCAB, size=int(rng.integers(5, 17)))
            label = int(rng.integers(0, 3))
            ids[rng.integers(0, len(ids), size=3)] = label + 1
            self.items.append((torch.as_tensor(ids, dtype=torch.long), label))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def make_dataset(split):
    return Sequences(split)
'''

CNN = DIGITS + '''

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.relu(self.conv2(x))
        return self.head(x.mean(dim=(2, 3)))


def build_model():
    model = Net()
    {tweak}
    return model
'''

LSTM_CLASSIFIER = TOKENS + '''

def collate(batch):
    ids = pad_sequence([x for x, _ in batch], batch_first=True, padding_value=PAD)
    return ids, torch.tensor([y for _, y in batch])


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 16, padding_idx=PAD)
        self.lstm = nn.LSTM(16, 32, batch_first=True)
        self.drop = nn.Dropout(0.3)
        self.head = nn.Linear(32, 3)

    def forward(self, ids):
        out, (h, c) = self.lstm(self.embed(ids))
        return self.head(self.drop(h[-1]))


def build_model():
    return Net()
'''

EMBEDDING_BAG = TOKENS + '''

def collate(batch):
    offsets = torch.tensor([0] + [len(x) for x, _ in batch[:-1]]).cumsum(0)
    text = torch.cat([x for x, _ in batch])
    return (text, offsets), torch.tensor([float(y == 0) for _, y in batch])


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.EmbeddingBag(VOCAB, 16, mode="mean")
        self.fc = nn.Linear(16, 1){tail}

    def forward(self, text, offsets):
        return self.fc(self.embed(text, offsets))


def build_model():
    return Net()
'''

TRANSFORMER = TOKENS + '''

def collate(batch):
    ids = pad_sequence([x for x, _ in batch], batch_first=True, padding_value=PAD)
    return {"input_ids": ids, "attention_mask": (ids != PAD).long()}, torch.tensor([y for _, y in batch])


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 32, padding_idx=PAD)
        layer = nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=1)
        self.head = nn.Linear(32, 3)

    def forward(self, input_ids, attention_mask):
        h = self.encoder(self.embed(input_ids), src_key_padding_mask=attention_mask == 0)
        mask = attention_mask.unsqueeze(-1).float()
        return self.head((h * mask).sum(1) / mask.sum(1))


def build_model():
    return Net()
'''

# A word-level LSTM language model (the PyTorch example's shape): forward returns (log_probs, hidden),
# the targets are the next tokens (N, T), and the project's train_step calls F.nll_loss itself.
LANGUAGE_MODEL = '''
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import Dataset

VOCAB = 40


class Stream(Dataset):
    def __init__(self, split):
        sizes = {"train": 300, "valid": 80}
        if split not in sizes:
            raise KeyError(split)
        rng = np.random.default_rng({"train": 3, "valid": 4}[split])
        self.ids = torch.as_tensor(rng.integers(0, VOCAB, size=(sizes[split], 13)), dtype=torch.long)

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return self.ids[i, :-1], self.ids[i, 1:]


def make_dataset(split):
    return Stream(split)


class LM(nn.Module):
    def __init__(self, n_out):
        super().__init__()
        self.encoder = nn.Embedding(VOCAB, 24)
        self.drop = nn.Dropout(0.2)
        self.rnn = nn.LSTM(24, 32, batch_first=True)
        self.decoder = nn.Linear(32, n_out)

    def forward(self, ids):
        out, hidden = self.rnn(self.drop(self.encoder(ids)))
        return F.log_softmax(self.decoder(self.drop(out)), dim=-1), hidden


def build_model():
    return LM({n_out})


def train_step(model, optimizer, loss_fn, xb, yb):
    model.train()
    optimizer.zero_grad()
    log_probs, _ = model(xb)
    loss = F.nll_loss(log_probs.reshape(-1, log_probs.shape[-1]), yb.reshape(-1))
    loss.backward()
    optimizer.step()
    return loss.item()
'''


# Time-major padded ids with their lengths as a tuple input, a packed two-layer GRU, and a text CNN
# (Conv1d over the embedding features): the shapes of the classic text classifiers.
PACKED_GRU_AND_TEXT_CNN = TOKENS + '''
from torch.nn.utils.rnn import pack_padded_sequence


def collate(batch):
    ids = pad_sequence([x for x, _ in batch], padding_value=PAD)
    return (ids, torch.tensor([len(x) for x, _ in batch])), torch.tensor([y for _, y in batch])


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 16, padding_idx=PAD)
        self.gru = nn.GRU(16, 32, num_layers=2, dropout=0.2)
        self.conv = nn.Conv1d(16, 8, 3, padding=1)
        self.head = nn.Linear(32 + 8, 3)

    def forward(self, ids, lengths):
        e = self.embed(ids)
        _, h = self.gru(pack_padded_sequence(e, lengths, enforce_sorted=False))
        c = F.relu(self.conv(e.permute(1, 2, 0))).amax(dim=2)
        return self.head(torch.cat([h[-1], c], dim=1))


def build_model():
    return Net()
'''

# A model returning an output object with .logits (the Hugging Face convention) from attention.
LOGITS_OBJECT = TOKENS + '''
from dataclasses import dataclass


def collate(batch):
    ids = pad_sequence([x for x, _ in batch], batch_first=True, padding_value=PAD)
    return {"input_ids": ids, "attention_mask": (ids != PAD).long()}, torch.tensor([y for _, y in batch])


@dataclass
class Output:
    logits: torch.Tensor


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 16, padding_idx=PAD)
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.head = nn.Sequential(nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3))

    def forward(self, input_ids, attention_mask=None):
        e = self.embed(input_ids)
        a, _ = self.attn(e, e, e, key_padding_mask=attention_mask == 0)
        return Output(self.head(a.mean(1)))


def build_model():
    return Net()
'''

# A LightningModule whose configure_optimizers gives the optimizer only some of the parameters.
LIGHTNING = DIGITS + '''
import lightning as L


class LitModel(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                      nn.Flatten())
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        return F.log_softmax(self.head(self.backbone(x)), dim=1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.nll_loss(self(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam({params}, lr=1e-3)
'''


def tensor_project(root: Path, code: str, loss: str = "cross_entropy", model_keys: str = "") -> Path:
    """A tensor project in root: train.py with make_dataset/build_model (and collate when the code has one)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.py").write_text(textwrap.dedent(code))
    collate = 'collate = "collate"\n' if "def collate(" in code else ""
    (root / "mltriage.toml").write_text(
        f'[model]\ncode = "train.py"\ndataset = "make_dataset"\nbuild = "build_model"\n{collate}'
        f'loss = "{loss}"\nbatch_size = 32\n{model_keys}\n[budget]\nseconds = 20\n')
    return root


def architecture_findings(root: Path) -> dict:
    ctx = context_for(root)
    return {cid: run_check(ctx, cid) for cid in ARCHITECTURE_IDS}


def assert_clean(findings: dict) -> None:
    bad = {cid: (f.status, f.title) for cid, f in findings.items() if f.status in ("fail", "error")}
    assert not bad, bad


# ---- correct projects: no fail, no error in the whole step -----------------------------------------------

def test_cnn_on_images(tmp_path):
    found = architecture_findings(tensor_project(tmp_path, CNN.replace("{tweak}", "pass")))
    assert_clean(found)
    summary = found["architecture.summary"]
    assert summary.evidence["input_shape"] == [256, 1, 8, 8]
    assert all(len(line) <= 80 for line in summary.detail.splitlines())
    dead = found["architecture.dead_units"].evidence["layers"]
    assert [r["units"] for r in dead] == [8, 16]  # per channel of (N, C, H, W), not per value
    assert found["architecture.output_size"].status == "pass"
    assert found["architecture.frozen_layers"].status == "pass"


def test_lstm_classifier_with_padding_collate(tmp_path):
    found = architecture_findings(tensor_project(tmp_path, LSTM_CLASSIFIER))
    assert_clean(found)
    summary = found["architecture.summary"]
    layers = {r["layer"]: r for r in summary.evidence["layers"]}
    assert layers["lstm"]["output_shape"][2] == 32  # the LSTM's first output (N, T, 32), not the (h, c) tuple
    assert summary.evidence["inputs"][0]["dtype"] == "int64"  # token ids reach the model as integers
    types = [r["type"] for r in found["architecture.init_scale"].evidence["layers"]]
    assert "Embedding" in types and "LSTM" in types


def test_embedding_bag_with_text_and_offsets(tmp_path):
    found = architecture_findings(tensor_project(tmp_path, EMBEDDING_BAG.replace("{tail}", ""),
                                                 loss="bce_with_logits"))
    assert_clean(found)
    assert found["architecture.output_layer"].status == "pass"
    assert [i["name"] for i in found["architecture.summary"].evidence["inputs"]] == ["x[0]", "x[1]"]


def test_transformer_on_dict_inputs(tmp_path):
    found = architecture_findings(tensor_project(tmp_path, TRANSFORMER))
    assert_clean(found)
    summary = found["architecture.summary"]
    types = {r["type"] for r in summary.evidence["layers"]}
    assert {"Embedding", "MultiheadAttention", "Linear", "LayerNorm"} <= types  # inside the encoder layer too
    assert summary.evidence["never_called"] == []  # attention's out_proj is used through its weights
    assert {i["name"] for i in summary.evidence["inputs"]} == {"input_ids", "attention_mask"}
    dropout = found["architecture.dropout"]
    assert any(r["type"] == "MultiheadAttention.dropout" for r in dropout.evidence["dropout_layers"])


def test_language_model_with_sequence_targets(tmp_path):
    found = architecture_findings(tensor_project(tmp_path, LANGUAGE_MODEL.replace("{n_out}", "VOCAB"),
                                                 loss="nll", model_keys='train_step = "train_step"'))
    assert_clean(found)
    size = found["architecture.output_size"]
    assert size.status == "pass" and size.evidence["output_shape"][-1] == 40
    assert found["architecture.output_layer"].evidence["final_activation"] == "log_softmax"


def test_packed_gru_and_text_cnn(tmp_path):
    found = architecture_findings(tensor_project(tmp_path, PACKED_GRU_AND_TEXT_CNN))
    assert_clean(found)
    assert found["architecture.capacity"].status == "info"  # 8 filters over 16 embedding features is fine
    assert found["architecture.dead_units"].evidence["layers"][0]["units"] == 8  # Conv1d channels of (N, C, L)
    assert found["architecture.saturation"].evidence["layers"][0]["kind"] == "GRU gates"
    assert {"layer": "gru", "type": "GRU.dropout", "p": 0.2} in found["architecture.dropout"].evidence["dropout_layers"]


def test_output_object_with_logits(tmp_path):
    found = architecture_findings(tensor_project(tmp_path, LOGITS_OBJECT))
    assert_clean(found)
    assert found["architecture.output_size"].evidence["output_shape"] == [256, 3]


# ---- planted defects ---------------------------------------------------------------------------------

def test_dead_conv_channels_from_a_negative_bias(tmp_path):
    code = CNN.replace("{tweak}", "nn.init.constant_(model.conv1.bias, -50.0)")
    f = run_check(tensor_project(tmp_path, code), "architecture.dead_units")
    assert f.status == "fail"
    first = f.evidence["layers"][0]
    assert first["units"] == 8 and first["dead"] == 8


def test_sigmoid_before_bce_with_logits(tmp_path):
    code = EMBEDDING_BAG.replace("{tail}", "\n        self.out = nn.Sigmoid()").replace(
        "return self.fc(self.embed(text, offsets))", "return self.out(self.fc(self.embed(text, offsets)))")
    f = run_check(tensor_project(tmp_path, code, loss="bce_with_logits"), "architecture.output_layer")
    assert f.status == "fail" and f.evidence["final_activation"] == "sigmoid"


def test_saturated_lstm_gates_from_unscaled_inputs(tmp_path):
    code = LSTM_CLASSIFIER.replace("self.lstm(self.embed(ids))", "self.lstm(self.embed(ids) * 100.0)")
    f = run_check(tensor_project(tmp_path / "a", code), "architecture.saturation")
    # padded positions (the padding row of the Embedding is zero) stay unsaturated: warn or fail
    assert f.status in ("warn", "fail") and f.evidence["layers"][0]["kind"] == "LSTM gates"
    assert f.evidence["layers"][0]["saturated_fraction"] > 0.5
    f = run_check(tensor_project(tmp_path / "b", LSTM_CLASSIFIER), "architecture.saturation")
    assert f.status == "pass" and f.evidence["layers"][0]["saturated_fraction"] < 0.01


@pytest.mark.parametrize("head, loss, status", [
    ("self.decoder(self.drop(out))", "cross_entropy", "pass"),                      # raw (N, T, V) logits
    ("F.softmax(self.decoder(self.drop(out)), dim=-1)", "cross_entropy", "fail"),   # probabilities per position
])
def test_language_model_output_layer_per_position(tmp_path, head, loss, status):
    code = LANGUAGE_MODEL.replace("{n_out}", "VOCAB").replace(
        "F.log_softmax(self.decoder(self.drop(out)), dim=-1)", head)
    f = run_check(tensor_project(tmp_path, code, loss=loss), "architecture.output_layer")
    assert f.status == status, f.title


def test_language_model_output_narrower_than_the_vocabulary(tmp_path):
    code = LANGUAGE_MODEL.replace("{n_out}", "30")
    f = run_check(tensor_project(tmp_path, code, loss="nll"), "architecture.output_size")
    assert f.status == "fail" and f.evidence["largest_target"] >= 30


FROZEN_CONV1 = ("for p in model.conv1.parameters():\n"
                "        p.requires_grad = False")


def test_frozen_block_at_random_init_warns(tmp_path):
    f = run_check(tensor_project(tmp_path, CNN.replace("{tweak}", FROZEN_CONV1)), "architecture.frozen_layers")
    assert f.status == "warn" and "random init" in f.title and "conv1" in f.title
    assert f.evidence["frozen_parameters"] == 8 * 9 + 8


def test_frozen_block_loaded_from_a_checkpoint_is_fine(tmp_path):
    import importlib.util

    import torch

    root = tensor_project(tmp_path, CNN.replace("{tweak}", FROZEN_CONV1), model_keys='checkpoint = "model.pt"')
    spec = importlib.util.spec_from_file_location("frozen_cnn_project", root / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.save(module.build_model().state_dict(), root / "model.pt")
    f = run_check(root, "architecture.frozen_layers")
    assert f.status in ("pass", "info") and "checkpoint" in f.title


def test_frozen_block_loaded_by_build_model_is_fine(tmp_path):
    import torch

    load = "model.conv1.load_state_dict(torch.load(__file__.replace('train.py', 'conv1.pt')))\n    "
    root = tensor_project(tmp_path, CNN.replace("{tweak}", load + FROZEN_CONV1))
    torch.save(torch.nn.Conv2d(1, 8, 3, padding=1).state_dict(), root / "conv1.pt")
    f = run_check(root, "architecture.frozen_layers")
    assert f.status == "info" and "not at their random initialisation" in f.title
    assert f.evidence["modules"][0]["random_init"] is False


def test_frozen_block_in_a_self_seeding_build_cannot_be_told_apart(tmp_path):
    code = CNN.replace("{tweak}", FROZEN_CONV1).replace("    model = Net()", "    torch.manual_seed(0)\n    model = Net()")
    f = run_check(tensor_project(tmp_path, code), "architecture.frozen_layers")
    assert f.status == "warn" and "cannot tell" in f.title and f.evidence["builds_differ_by_seed"] is False


def lightning_project(root: Path, optimized: str) -> Path:
    root.mkdir(parents=True)
    (root / "train.py").write_text(textwrap.dedent(LIGHTNING.replace("{params}", optimized)))
    (root / "mltriage.toml").write_text('[model]\ncode = "train.py"\ndataset = "make_dataset"\n'
                                        'lightning = "LitModel"\nloss = "nll"\n')
    return root


def test_lightning_parameters_left_out_of_the_optimizer(tmp_path):
    pytest.importorskip("lightning")
    found = architecture_findings(lightning_project(tmp_path / "head_only", "self.head.parameters()"))
    assert_clean(found)
    f = found["architecture.frozen_layers"]
    assert f.status == "warn" and "backbone.0" in f.title and "left out of the optimizer" in f.detail
    assert f.evidence["modules"][0]["reason"] == "not in configure_optimizers()"
    found = architecture_findings(lightning_project(tmp_path / "all", "self.parameters()"))
    assert_clean(found)
    assert found["architecture.frozen_layers"].status == "pass"


def test_frozen_block_on_a_table_project(tmp_path):
    from test_sanity_checks import project

    code = '''
import torch.nn as nn


def build_model(n_inputs, n_outputs):
    model = nn.Sequential(nn.Linear(n_inputs, 32), nn.ReLU(), nn.Linear(32, n_outputs))
    model[0].weight.requires_grad_(False)
    return model
'''
    f = run_check(project(tmp_path / "a", code, loss="cross_entropy", extra=""), "architecture.frozen_layers")
    assert f.status == "warn" and "0" in f.evidence["modules"][0]["module"]
    clean = code.replace("    model[0].weight.requires_grad_(False)\n", "")
    f = run_check(project(tmp_path / "b", clean, loss="cross_entropy", extra=""), "architecture.frozen_layers")
    assert f.status == "pass"


# ---- frozen_layers verdict, without a project --------------------------------------------------------------

def _frozen(modules, total=1000, checkpoint=None, seeds_differ=True):
    from mltriage.checks.steps.architecture.frozen import FrozenParameters

    return FrozenParameters(total=total, frozen=sum(m["parameters"] for m in modules), modules=modules,
                            checkpoint=checkpoint, seeds_differ=seeds_differ)


def _module(name, parameters, random_init):
    return {"module": name, "type": "Conv2d", "parameters": parameters, "random_init": random_init}


@pytest.mark.parametrize("modules, checkpoint, seeds_differ, status, words", [
    ([], None, True, "pass", "trainable"),
    ([_module("backbone.0", 400, True)], None, True, "warn", "random init"),
    ([_module("backbone.0", 400, True)], "model.pt", True, "info", "checkpoint"),
    ([_module("backbone.0", 400, False)], None, True, "info", "not at their random initialisation"),
    ([_module("backbone.0", 400, None)], None, False, "warn", "cannot tell"),
])
def test_frozen_layers_verdict(modules, checkpoint, seeds_differ, status, words):
    from mltriage.checks.steps.architecture.frozen import _frozen_verdict

    f = _frozen_verdict(_frozen(modules, checkpoint=checkpoint, seeds_differ=seeds_differ))
    assert f.status == status and words in f.title, f.title


def test_frozen_layers_verdict_names_modules_and_share():
    from mltriage.checks.steps.architecture.frozen import _frozen_verdict

    f = _frozen_verdict(_frozen([_module("backbone.0", 300, True), _module("norm", 10, False)], total=1000))
    assert f.status == "warn" and "backbone.0" in f.title and "30%" in f.title and "norm" not in f.title
    assert f.evidence["frozen_share"] == pytest.approx(0.31)


# ---- output_size verdict for sequence targets, without a project ------------------------------------------

@pytest.mark.parametrize("width, largest, embeddings, status", [
    (40, 39, [40], "pass"),          # decoder sized by the vocabulary
    (30, 39, [40], "fail"),          # targets beyond the last output: the loss raises (device assert on GPU)
    (50, 39, [40, 12], "warn"),      # wider than any embedding: probability spent on ids that never occur
    (40, 39, [], "pass"),            # no input embedding to compare with (e.g. one-hot inputs)
    (1, None, [], "info"),           # float per-position targets: no vocabulary
])
def test_sequence_output_size_verdict(width, largest, embeddings, status):
    from mltriage.checks.steps.architecture.layers import OutputSize, _output_size_verdict

    m = OutputSize(shape=[8, 12, width], output_type="tuple", expected=0, loss="nll", classes=[], sequence=True,
                   largest_target=largest, embedding_sizes=embeddings)
    f = _output_size_verdict(m)
    assert f.status == status, f.title
    assert f.evidence["largest_target"] == largest
