"""training.oscillation on step-level logs (issue 16, item 6): a mini-batch loss alternating between 0.5
and 2.0 every few steps is flagged although its epoch means fall; a noisy but falling loss is not."""

from __future__ import annotations

import math

import pytest
from helpers import run_check, write_project

STEPS_PER_EPOCH = 200
EPOCHS = 5


def _step_losses(kind: str, seed: int = 0) -> list[float]:
    import numpy as np

    rng = np.random.default_rng(seed)
    s = np.arange(STEPS_PER_EPOCH * EPOCHS)
    decay = 1 - 0.4 * s / len(s)                       # the epoch means fall by 40% over the run
    if kind == "alternating":                          # 0.5 <-> 2.0 every 4 steps
        loss = np.where((s // 4) % 2 == 0, 0.5, 2.0) * decay * (1 + 0.05 * rng.normal(size=len(s)))
    elif kind == "noisy":                              # a healthy mini-batch loss: falls, independent noise
        loss = (2.0 * 0.997 ** s + 0.3) * rng.lognormal(0.0, 0.35, size=len(s))
    else:
        raise ValueError(kind)
    return [float(v) for v in loss]


def _write_log(root, kind):
    import pandas as pd

    losses = _step_losses(kind)
    rows = [{"epoch": i // STEPS_PER_EPOCH, "step": i, "train_loss_step": v} for i, v in enumerate(losses)]
    for e in range(EPOCHS):
        part = losses[e * STEPS_PER_EPOCH:(e + 1) * STEPS_PER_EPOCH]
        rows.append({"epoch": e, "step": (e + 1) * STEPS_PER_EPOCH - 1, "train_loss_epoch": sum(part) / len(part),
                     "val_loss": 1.3 - 0.1 * e})
    frame = pd.DataFrame(rows, columns=["epoch", "step", "train_loss_epoch", "train_loss_step", "val_loss"])
    frame.to_csv(root / "metrics.csv", index=False)
    train = pd.DataFrame({"x": [0.1, 0.2, 0.3, 0.4] * 5, "label": [0, 1] * 10})
    return write_project(root, train, train, toml_extra='[artifacts]\ntraining_log = "metrics.csv"\n')


def test_step_swing_separates_alternation_from_noise():
    from mltriage.checks.analyses.curves import step_swing

    alt, noisy = step_swing(_step_losses("alternating")), step_swing(_step_losses("noisy"))
    assert alt["swing"] > 1.0 and alt["structure"] > 0.9 and alt["lag"] == 4
    assert noisy["structure"] < 0.25
    assert step_swing([1.0] * 50) is None            # too short to judge on its own


def test_epoch_means_fall_while_steps_alternate():
    losses = _step_losses("alternating")
    means = [sum(losses[e * STEPS_PER_EPOCH:(e + 1) * STEPS_PER_EPOCH]) / STEPS_PER_EPOCH for e in range(EPOCHS)]
    assert all(b < a for a, b in zip(means, means[1:]))   # the planted defect hides from per-epoch views


@pytest.mark.parametrize("kind, expected", [("alternating", "fail"), ("noisy", "pass")])
def test_oscillation_on_step_level_log(tmp_path, kind, expected):
    finding = run_check(_write_log(tmp_path, kind), "training.oscillation")
    assert finding.status == expected, (finding.title, finding.detail)
    assert "step_series" in finding.evidence
    if expected == "fail":
        assert "every ~4 step" in finding.title


def test_step_verdict_thresholds():
    from mltriage.checks.steps.training.curves import (
        STEP_STRUCTURE_WARN,
        STEP_SWING_WARN,
        OscillationMeasure,
        oscillation_verdict,
    )

    def verdict(swing, structure):
        m = OscillationMeasure("a log", candidates={"train loss per epoch": {"ups": 0.0, "drop": 1.0,
                                                                             "reversals": 0, "index": 0.0}})
        m.step = {"points": 1000, "swing": swing, "structure": structure, "lag": 3, "window": 51}
        return oscillation_verdict(m).status

    assert verdict(1.2, 0.95) == "fail"
    assert verdict(0.7, 0.5) == "warn"
    assert verdict(STEP_SWING_WARN - 0.01, 0.95) == "pass"      # small swings: not worth a look
    assert verdict(1.5, STEP_STRUCTURE_WARN - 0.01) == "pass"   # large but patternless: noise
    assert not math.isnan(STEP_SWING_WARN)
