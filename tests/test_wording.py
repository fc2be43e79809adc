"""Text that reads right (issue 15, item 7): the wording helpers, and a sweep of every finding of every
sample project (all steps, buggy and fixed, through the CLI as JSON and as text)."""

from __future__ import annotations

import re

import pytest

from mltriage.checks.wording import change, cut_list, fixed, num, pct, plural, relative, signed

# --- the helpers ----------------------------------------------------------------------------------


def test_num_never_prints_inf_nan_or_minus_zero():
    assert num(float("inf")) == "unbounded" and num(float("nan")) == "not a number"
    assert num(-0.0) == "0" and num(-1e-20, 2) != "-0" and num(1234.5678) == "1235"


@pytest.mark.parametrize("value,expected", [(0.123, "12%"), (0.0, "0%"), (-0.0001, "<1% lower"),
                                            (0.001, "<1%"), (-0.25, "-25%"), (1.0, "100%")])
def test_pct(value, expected):
    assert pct(value) == expected
    assert "-0%" not in pct(value)


def test_change_takes_its_word_from_the_numbers():
    assert change(1.1, 1.19) == "rose from 1.1 to 1.19 (+8%)"
    assert change(1.19, 1.1) == "fell from 1.19 to 1.1 (-8%)"
    assert change(2.3041, 2.3042) == "stayed at 2.304"
    assert change(0, 3) == "rose from 0 to 3"
    assert "inf" not in change(1, float("inf"))


def test_relative_is_a_positive_percentage_with_the_right_word():
    assert relative(1.19, 1.098) == "8% higher" and relative(1.0, 1.25) == "20% lower"
    assert relative(1.0, 1.0) == "about the same" and relative(1.0, 0.0) == ""


def test_cut_list_says_how_many_were_left_out():
    assert cut_list(range(3)) == "0, 1, 2"
    assert cut_list(range(9), 6) == "0, 1, 2, 3, 4, 5 ... and 3 more"
    assert cut_list(["a", "b", "c"], 2, "; ") == "a; b ... and 1 more"


def test_plural_signed_fixed():
    assert plural(1, "class") == "1 class" and plural(9, "class") == "9 classes"
    assert plural(2, "feature") == "2 features" and plural(1200, "row") == "1,200 rows"
    assert signed(-0.0001) == "0" and signed(0.0123) == "+0.012" and signed(-0.5, 1) == "-0.5"
    assert fixed(-0.0001) == "0.000" and fixed(float("nan")) == "not a number"


# --- the sweep ------------------------------------------------------------------------------------
WIDTH = 80  # the CLI's width when stdout is not a terminal
PATTERNS = {
    "inf/nan": re.compile(r"(?<![\w.])[-+]?(?:inf|nan)(?![\w])", re.I),
    "-0": re.compile(r"(?<![\w.])-0(?:\.0+)?(?![\d.])"),
    "negative percentage with a direction word": re.compile(
        r"-\d+(?:\.\d+)?%\)?\s*(?:lower|higher|above|below|worse|better)"),
    "internal identifier": re.compile(r"\bctx\."),
}
REGRESSION_ONLY = re.compile(r"majority class|class weights?", re.I)


@pytest.fixture(scope="module")
def runs():
    from sample_runs import all_runs

    return all_runs()


def _variants():
    from sample_runs import VARIANTS

    return [(f"{name}/{kind}", path) for name, buggy, fixed_ in VARIANTS
            for kind, path in (("buggy", buggy), ("fixed", fixed_))]


@pytest.mark.parametrize("name,path", _variants(), ids=[v[0] for v in _variants()])
def test_every_finding_reads_right(runs, name, path):
    run, text = runs[path]
    regression = any(f["check"] == "problem.task_type" and "regression" in f["title"] for f in run["findings"])
    bad = []
    for f in run["findings"]:
        for part in ("title", "detail", "fix"):
            words = f.get(part) or ""
            for what, pattern in PATTERNS.items():
                for m in pattern.finditer(words):
                    bad.append(f"{f['check']} {part}: {what}: ...{words[max(0, m.start() - 50):m.end() + 20]}...")
            if regression and REGRESSION_ONLY.search(words):
                bad.append(f"{f['check']} {part}: classification wording in a regression: {words[:120]}")
    assert bad == [], f"{name}:\n" + "\n".join(bad)


@pytest.mark.parametrize("name,path", _variants(), ids=[v[0] for v in _variants()])
def test_text_output_fits_80_columns_and_says_each_skip_reason_once(runs, name, path):
    run, text = runs[path]
    long = [line for line in text.splitlines() if len(line) > WIDTH]
    assert long == [], f"{name}: {len(long)} lines over {WIDTH} columns, e.g. {long[:3]}"
    skips = [line for line in text.splitlines() if line.startswith("SKIP  ")]
    reasons = [line.split(": ", 1)[-1] for line in skips]
    assert len(reasons) == len(set(reasons)), f"{name}: a skip reason is printed more than once: {skips}"
    # The text output shows details of warn/fail findings only; the JSON sweep above reads them all.
    for what, pattern in PATTERNS.items():
        hits = [m.group() for line in text.splitlines() for m in pattern.finditer(line)]
        assert hits == [], f"{name}: {what} in the text output: {hits[:5]}"
