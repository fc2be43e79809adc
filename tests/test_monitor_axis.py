"""The monitor reads a ReLU's units on the right axis: channels for convolution outputs (N, C, ...), the last
axis for everything else, so a sequence activation (N, T, F) after a Linear applied per time step, an
Embedding or an LSTM has F units, not T. Before this, dim 1 (time) was taken as the unit axis: a dead hidden
unit of a per-token head was never seen, and the unit count followed the sequence length, so the pool of
small batches restarted whenever T changed. The rule is a twin of model_trace's (the monitor imports only
torch); the first tests keep the two in agreement."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn as nn

import mltriage.checks.monitor as monitor_module
from helpers import run_check, context_for, write_project
from mltriage.checks.analyses import model_trace
from mltriage.checks.monitor import DEAD_POOL_EXAMPLES, Monitor, _ActivationProbe, layout_after, unit_dim

HIDDEN = 32
DEAD = 16          # units of the hidden layer planted dead: 16 of 32 -> a dead fraction of exactly 0.5


# --- models --------------------------------------------------------------------------------------
class LinearOverSequence(nn.Module):
    """(N, T, 8) floats -> a per-step MLP head -> (N, T, 3)."""

    def __init__(self, dead: int = 0):
        super().__init__()
        self.hidden, self.act, self.out = nn.Linear(8, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 3)
        _plant_dead(self.hidden, dead)

    def forward(self, x):
        return self.out(self.act(self.hidden(x)))


class TokenLSTM(nn.Module):
    """(N, T) token ids -> Embedding -> LSTM (batch_first) -> a per-token MLP head -> (N, T, 3)."""

    def __init__(self, dead: int = 0):
        super().__init__()
        self.emb = nn.Embedding(50, 16)
        self.lstm = nn.LSTM(16, 24, batch_first=True)
        self.hidden, self.act, self.out = nn.Linear(24, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 3)
        # an LSTM's outputs are small (|h| ~ 0.1 at initialisation), so the default bias (up to +-0.2) can keep a
        # unit below zero on every input for real; a zero bias leaves only the planted units dead
        nn.init.zeros_(self.hidden.bias)
        _plant_dead(self.hidden, dead)

    def forward(self, x):
        h, _ = self.lstm(self.emb(x))
        return self.out(self.act(self.hidden(h)))


class FlatMLP(nn.Module):
    """The flat twin of the sequence heads, with the same module names: (N, 8) -> (N, 3)."""

    def __init__(self, dead: int = 0):
        super().__init__()
        self.hidden, self.act, self.out = nn.Linear(8, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 3)
        _plant_dead(self.hidden, dead)

    def forward(self, x):
        return self.out(self.act(self.hidden(x)))


class ConvThenSequence(nn.Module):
    """Conv1d over (N, C, L), then transposed to (N, L, C) and a Linear per position: both layouts in one pass."""

    def __init__(self):
        super().__init__()
        self.conv, self.act1 = nn.Conv1d(4, 6, 3, padding=1), nn.ReLU()
        self.proj, self.act2 = nn.Linear(6, 10), nn.ReLU()
        _plant_dead(self.conv, 2)
        _plant_dead(self.proj, 3)

    def forward(self, x):
        h = self.act1(self.conv(x))                       # (N, 6, L): channels
        return self.act2(self.proj(h.transpose(1, 2)))    # (N, L, 10): last axis


def _plant_dead(layer: nn.Module, units: int) -> None:
    """A bias of -100 on the first `units` outputs: their pre-activation is negative on any input (the weights
    times inputs of these small models stay far below 100), so the ReLU after them never fires."""
    if units:
        with torch.no_grad():
            layer.bias[:units] = -100.0


def _sequence_batch(kind: str, n: int, t: int, gen: torch.Generator):
    if kind == "tokens":
        x = torch.randint(0, 50, (n, t), generator=gen)
    else:
        x = torch.randn(n, t, 8, generator=gen)
    return x, torch.randint(0, 3, (n, t), generator=gen)


SEQUENCE_MODELS = {"linear": LinearOverSequence, "tokens": TokenLSTM}


# --- the rule and its twin in model_trace -----------------------------------------------------------
TYPE_NAMES = ["Linear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose2d", "LazyConv1d", "LazyLinear", "BatchNorm1d",
              "BatchNorm2d", "SyncBatchNorm", "GroupNorm", "InstanceNorm1d", "LazyBatchNorm1d", "LayerNorm",
              "Embedding", "LSTM", "GRU", "RNN", "MultiheadAttention", "PReLU", "Bilinear", "MyBlock"]


def test_the_layout_rule_is_model_traces_rule():
    assert monitor_module.LAYOUT_KEEPING == model_trace.LAYOUT_KEEPING
    for name in TYPE_NAMES:
        for layout in ("last", "channels"):
            assert layout_after(name, layout) == model_trace._layout_after(name, layout), (name, layout)
    recorder = model_trace._Recorder()
    for layout in ("last", "channels"):
        recorder.layout = layout
        for ndim in range(1, 6):
            expected = recorder.unit_dim(torch.zeros((1,) * ndim)) % ndim
            assert unit_dim(ndim, layout) % ndim == expected, (ndim, layout)


def _probe_fired(model: nn.Module, x) -> dict[str, list[bool]]:
    probe = _ActivationProbe(model)
    try:
        with torch.no_grad():
            model(x)
    finally:
        probe.remove()
    return {name: fired.tolist() for name, fired in probe.fired.items()}


def _trace_fired(model: nn.Module, x) -> dict[str, list[bool]]:
    trace = model_trace.trace_forward(model, x)
    return {c.name: [f > 0 for f in c.unit_fired] for c in trace.calls if c.kind == "relu" and c.source == "module"}


AGREEMENT_CASES = {
    "mlp": (lambda: FlatMLP(dead=5), lambda g: torch.randn(16, 8, generator=g)),
    "linear over a sequence": (lambda: LinearOverSequence(dead=DEAD), lambda g: torch.randn(16, 7, 8, generator=g)),
    "embedding + lstm": (lambda: TokenLSTM(dead=DEAD), lambda g: torch.randint(0, 50, (16, 9), generator=g)),
    "conv1d then a linear per position": (ConvThenSequence, lambda g: torch.randn(16, 4, 11, generator=g)),
    "conv1d + batchnorm1d": (lambda: nn.Sequential(nn.Conv1d(4, 6, 3), nn.BatchNorm1d(6), nn.ReLU()),
                             lambda g: torch.randn(16, 4, 20, generator=g)),
    "conv2d": (lambda: nn.Sequential(nn.Conv2d(3, 5, 3), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 36, 7), nn.ReLU()),
               lambda g: torch.randn(16, 3, 8, 8, generator=g)),
}


@pytest.mark.parametrize("case", list(AGREEMENT_CASES))
def test_the_monitor_and_model_trace_see_the_same_units(case):
    make, batch = AGREEMENT_CASES[case]
    torch.manual_seed(0)
    model = make().eval()
    x = batch(torch.Generator().manual_seed(1))
    monitored, traced = _probe_fired(model, x), _trace_fired(model, x)
    assert monitored.keys() == traced.keys() and monitored
    assert monitored == traced


def test_the_agreement_test_fires_on_the_old_dim_1_rule(monkeypatch):
    """The planted defect: dim 1 for every activation. On (N, T, F) the two then disagree."""
    monkeypatch.setattr(monitor_module, "unit_dim", lambda ndim, layout: 1)
    make, batch = AGREEMENT_CASES["linear over a sequence"]
    torch.manual_seed(0)
    model = make().eval()
    x = batch(torch.Generator().manual_seed(1))
    monitored, traced = _probe_fired(model, x), _trace_fired(model, x)
    assert len(monitored["act"]) == 7 and len(traced["act"]) == HIDDEN


class ReluFirstConvLast(nn.Module):
    """A ReLU on the (N, T, F) input before any layer, a Conv1d last; `relu=False` skips the ReLU."""

    def __init__(self):
        super().__init__()
        self.act, self.conv = nn.ReLU(), nn.Conv1d(5, 2, 1)

    def forward(self, x, relu=True):
        return self.conv((self.act(x) if relu else x).transpose(1, 2))


def test_each_forward_pass_starts_from_the_input_layout():
    """A pass that ended on a Conv1d leaves no "channels" layout behind for the next pass's first ReLU."""
    model = ReluFirstConvLast()
    x = torch.randn(4, 7, 5)
    x[..., :2] = -1.0                                   # features 0 and 1 never positive: 2 of 5 units dead
    probe = _ActivationProbe(model)
    try:
        with torch.no_grad():
            model(x, relu=False)                        # an earlier pass in the armed step (an eval batch, say)
            model(x)
    finally:
        probe.remove()
    assert probe.fired["act"].tolist() == [False, False, True, True, True]
    assert probe.values["act"]["dead_fraction"].item() == pytest.approx(0.4)


# --- sequence models in a real monitored loop -----------------------------------------------------------
def _sequence_loop(path, kind: str, dead: int, batch: int, steps: int, every: int = 1, lengths=(3, 12)):
    """A per-token 3-class loop; each batch has its own sequence length T (drawn from `lengths`)."""
    torch.manual_seed(0)
    model = SEQUENCE_MODELS[kind](dead)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(2)
    seen_lengths = []
    with Monitor(model, opt, every=every, path=path) as mon:
        for _ in range(steps):
            t = int(torch.randint(lengths[0], lengths[1] + 1, (1,), generator=gen))
            seen_lengths.append(t)
            x, y = _sequence_batch(kind, batch, t, gen)
            loss = nn.functional.cross_entropy(model(x).reshape(-1, 3), y.reshape(-1))
            opt.zero_grad()
            loss.backward()
            mon.step(loss)
            opt.step()
    return seen_lengths


def _records(path):
    return [r for r in map(json.loads, path.read_text().splitlines()) if isinstance(r.get("layers"), dict)]


@pytest.mark.parametrize("kind", list(SEQUENCE_MODELS))
def test_dead_hidden_units_of_a_sequence_model_are_read_per_feature(tmp_path, kind):
    lengths = _sequence_loop(tmp_path / "run.jsonl", kind, dead=DEAD, batch=32, steps=12)
    assert len(set(lengths)) > 3                  # the sequence length does change between batches
    records = _records(tmp_path / "run.jsonl")
    assert len(records) == 12
    assert [r["layers"]["act"]["dead_fraction"] for r in records] == [DEAD / HIDDEN] * 12
    assert [r["layers"]["act"]["examples"] for r in records] == [32] * 12   # examples, not positions


@pytest.mark.parametrize("kind", list(SEQUENCE_MODELS))
def test_the_healthy_twin_reads_no_dead_units(tmp_path, kind):
    _sequence_loop(tmp_path / "run.jsonl", kind, dead=0, batch=32, steps=12)
    fractions = [r["layers"]["act"]["dead_fraction"] for r in _records(tmp_path / "run.jsonl")]
    assert len(fractions) == 12 and max(fractions) <= 1 / HIDDEN


@pytest.mark.parametrize("kind", list(SEQUENCE_MODELS))
def test_the_pool_of_small_batches_keeps_accumulating_when_the_length_changes(tmp_path, kind):
    """Batches of 4 examples, each with its own T: a pool closes every 8 records (32 >= 29 examples)."""
    batch = 4
    per_pool = -(-DEAD_POOL_EXAMPLES // batch)
    lengths = _sequence_loop(tmp_path / "run.jsonl", kind, dead=DEAD, batch=batch, steps=3 * per_pool)
    assert len(set(lengths[:per_pool])) > 1
    records = _records(tmp_path / "run.jsonl")
    act = [r["layers"]["act"] for r in records]
    closing = [r["step"] for r, layer in zip(records, act) if "pooled_examples" in layer]
    assert closing == [per_pool, 2 * per_pool, 3 * per_pool]
    for layer in act:
        assert layer["examples"] == batch and layer["dead_fraction"] >= DEAD / HIDDEN
        if "pooled_examples" in layer:
            assert layer["pooled_examples"] == per_pool * batch
            assert layer["pooled_dead_fraction"] == DEAD / HIDDEN


# --- conv models and plain MLPs: the same records as before, by hand ---------------------------------
def _by_hand_dead_fraction(hidden: torch.Tensor, unit_axis: int) -> float:
    others = tuple(d for d in range(hidden.dim()) if d != unit_axis)
    return (hidden.amax(dim=others) <= 0).float().mean().item()


def _mlp():
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))
    _plant_dead(model[0], 5)
    return model, lambda g: torch.randn(24, 8, generator=g), ["1"]


def _conv2d():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 36, 3))
    _plant_dead(model[0], 2)
    return model, lambda g: torch.randn(24, 3, 8, 8, generator=g), ["1"]


def _conv1d_batchnorm():
    """(N, C, L) with L != C; BatchNorm1d keeps the channel layout (its beta plants the dead channels)."""
    model = nn.Sequential(nn.Conv1d(4, 6, 3), nn.BatchNorm1d(6), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 18, 3))
    _plant_dead(model[1], 3)
    return model, lambda g: torch.randn(24, 4, 20, generator=g), ["2"]


@pytest.mark.parametrize("make", [_mlp, _conv2d, _conv1d_batchnorm], ids=["mlp", "conv2d", "conv1d+bn"])
def test_conv_and_flat_records_are_the_per_channel_or_feature_fraction(tmp_path, make):
    """lr 0 keeps the weights, so each record is recomputed by hand from its batch: per channel for convolution
    outputs (a Conv1d's 3-D output included), per feature for (N, F)."""
    torch.manual_seed(0)
    model, batch, relus = make()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    gen = torch.Generator().manual_seed(3)
    batches = [batch(gen) for _ in range(5)]
    with Monitor(model, opt, every=1, path=tmp_path / "run.jsonl") as mon:
        for x in batches:
            loss = model(x).square().mean()
            opt.zero_grad()
            loss.backward()
            mon.step(loss)
            opt.step()
    records = _records(tmp_path / "run.jsonl")
    assert len(records) == len(batches)
    for record, x in zip(records, batches):
        for name in relus:
            with torch.no_grad():
                hidden = model[:int(name) + 1](x)          # the ReLU's output; its units are on dim 1
            assert record["layers"][name]["dead_fraction"] == _by_hand_dead_fraction(hidden, 1)
            assert record["layers"][name]["examples"] == len(x)
    assert all(0 < r["layers"][name]["dead_fraction"] < 1 for r in records for name in relus)


# --- architecture.dead_units on a monitored sequence run -----------------------------------------------
def _flat_loop(path, dead: int, batch: int, steps: int, every: int):
    torch.manual_seed(0)
    model = FlatMLP(dead)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(2)
    with Monitor(model, opt, every=every, path=path) as mon:
        for _ in range(steps):
            x, y = torch.randn(batch, 8, generator=gen), torch.randint(0, 3, (batch,), generator=gen)
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            mon.step(loss)
            opt.step()


def _project_with_run(root, loop, **kwargs):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=60), "label": rng.integers(0, 3, 60)})
    write_project(root, df, df.iloc[:20])
    path = root / ".mltriage" / "monitor" / "run.jsonl"
    path.parent.mkdir(parents=True)
    loop(path, **kwargs)
    return context_for(root)


@pytest.mark.parametrize("dead,status", [(DEAD, "warn"), (HIDDEN, "fail"), (0, "pass")])
def test_dead_units_judges_a_sequence_run_as_its_flat_twin(tmp_path, dead, status):
    run = dict(dead=dead, batch=32, steps=60, every=5)
    sequence = run_check(_project_with_run(tmp_path / "seq", _sequence_loop, kind="tokens", **run),
                         "architecture.dead_units")
    flat = run_check(_project_with_run(tmp_path / "flat", _flat_loop, **run), "architecture.dead_units")
    assert sequence.status == flat.status == status, (sequence.title, flat.title)
    held = {r["layer"]: r["held"] for r in sequence.evidence["layers"]}
    assert held["act"] == dead / HIDDEN
    if dead:
        assert f"layer act: {dead / HIDDEN:.0%}" in sequence.title
