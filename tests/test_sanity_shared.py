"""The sanity step imports only what it uses (issue 17): no torch._dynamo and no sympy behind the first
optimizer or a shape comparison, and the stand-in for torch._dynamo hands over to the real module for
anything else, with optimizers that train exactly as they do with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from helpers import GOOD_TORCH_MODEL
from test_sanity_checks import project

# Runs in a fresh interpreter (the test process may have loaded torch._dynamo already): the sanity step
# on the project, then what it left loaded, then an optimizer with the stand-in and with the real module.
SCRIPT = textwrap.dedent(r"""
    import json, sys
    from mltriage.checks.engine.context import RunContext
    from mltriage.checks.engine.registry import checks_for
    from mltriage.checks.engine.run import run_specs
    from mltriage.checks.project.config import load_project

    ctx = RunContext(load_project(sys.argv[1]))
    ctx.prepare()
    findings = run_specs(checks_for(["sanity"]), ctx)
    out = {"findings": {f.check: [f.status, f.title] for f in findings},
           "dynamo": type(sys.modules.get("torch._dynamo")).__name__, "sympy": "sympy" in sys.modules}

    import torch

    def trained():
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        opts = [torch.optim.Adam(model[0].parameters(), lr=0.01), torch.optim.SGD(model[2].parameters(), lr=0.1,
                momentum=0.9)]
        x, y = torch.randn(16, 5), torch.randint(0, 2, (16,))
        for _ in range(5):
            for o in opts:
                o.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            for o in opts:
                o.step()
        return [p.detach().clone() for p in model.parameters()], opts[0].state_dict()["state"][0]["step"]

    with_stand_in, steps = trained()
    out["still_stand_in"] = type(sys.modules.get("torch._dynamo")).__name__
    import torch._dynamo
    out["config"] = torch._dynamo.config.cache_size_limit > 0     # any other attribute: the real module
    out["after"] = type(sys.modules["torch._dynamo"]).__name__
    from torch._dynamo import disable
    out["disable_from"] = disable.__module__
    with_real, _ = trained()
    out["same_training"] = all(torch.equal(a, b) for a, b in zip(with_stand_in, with_real))
    out["steps"] = float(steps)
    print("RESULT " + json.dumps(out))
""")


@pytest.fixture(scope="module")
def fresh_run(tmp_path_factory):
    root = project(tmp_path_factory.mktemp("shared"), GOOD_TORCH_MODEL)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(root)], capture_output=True, text=True, env=env,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    line = next(x for x in r.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def test_sanity_step_loads_neither_dynamo_nor_sympy(fresh_run):
    statuses = {c: s for c, (s, _) in fresh_run["findings"].items()}
    assert statuses["sanity.train_step"] == "pass" and statuses["sanity.loss_shapes"] == "pass"
    assert statuses["sanity.overfit_small_batch"] == "pass"       # optimizers did run
    assert not [c for c, s in statuses.items() if s in ("fail", "error")]
    assert fresh_run["dynamo"] == "LazyDynamo"
    assert fresh_run["sympy"] is False


def test_the_stand_in_hands_over_and_optimizers_train_the_same(fresh_run):
    assert fresh_run["still_stand_in"] == "LazyDynamo" and fresh_run["steps"] == 5.0
    assert fresh_run["config"] is True and fresh_run["after"] == "module"
    assert fresh_run["disable_from"].startswith("torch._dynamo")   # a project's own import gets the real one
    assert fresh_run["same_training"] is True


def test_broadcast_shape_follows_torch_rules_without_torch():
    from mltriage.checks.steps.sanity.model import broadcast_shape

    assert broadcast_shape((32, 1), (32,)) == (32, 32)     # the (N, 1) vs (N,) pile-up loss_shapes reports
    assert broadcast_shape((8, 3), (8, 3)) == (8, 3)
    assert broadcast_shape((1, 4), (5, 1)) == (5, 4)
    with pytest.raises(ValueError):
        broadcast_shape((64, 10), (64,))


# The sanity step's verdicts on every sample variant, as they stood before issue 17's speed-up and after
# it (measured identical, titles included): a speed-up must not move them. A check not listed passed
# ("*" stands for every check not listed).
SANITY_VERDICTS = {
    "digits/buggy": "input_batch=skipped overfit_small_batch=fail gradient_flow=fail input_independent=fail",
    "digits/fixed": "input_batch=skipped",
    "images/buggy": "input_batch=fail loss_at_init=warn input_independent=warn",
    "images/fixed": "",
    "logs_only/buggy": "*=skipped data_loads=pass",   # a training log alone: no model to check
    "logs_only/fixed": "*=skipped data_loads=pass",
    "regression/buggy": "input_batch=skipped loss_at_init=warn loss_shapes=fail overfit_small_batch=fail "
                        "input_independent=fail",
    "regression/fixed": "input_batch=skipped",
    "sentiment/buggy": "input_batch=skipped overfit_small_batch=fail input_independent=fail train_step=fail "
                       "eval_determinism=fail",
    "sentiment/fixed": "input_batch=skipped",
    "tabular/buggy": "input_batch=skipped",
    "tabular/fixed": "input_batch=skipped",
    "tokens/buggy": "overfit_small_batch=fail input_independent=error train_step=fail eval_determinism=error",
    "tokens/fixed": "",
}


def test_sanity_verdicts_on_the_sample_projects_are_unchanged():
    """Shares the session's sample runs (tests/sample_runs.py) with the other sample tests."""
    from sample_runs import all_runs

    runs = {f"{path.parent.name}/{path.name}": run for path, (run, _) in all_runs().items()}
    for variant, listed in SANITY_VERDICTS.items():
        if variant not in runs:
            continue  # a sample project that is not there any more
        got = {f["check"].split(".", 1)[1]: f["status"] for f in runs[variant]["findings"]
               if f["check"].startswith("sanity.")}
        expected = dict(item.split("=") for item in listed.split())
        want = {c: expected.get(c, expected.get("*", "pass")) for c in got}
        assert got == want, f"{variant}: {[(c, want[c], got[c]) for c in got if got[c] != want[c]]}"
