"""[[slices]] where: a restricted evaluator. The expressions projects use work; anything else is refused
before it runs, with a message naming the slice and the construct, and without side effects."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mltriage.checks.analyses.where import SliceError, check_where, evaluate_where

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "text": ["is not good", "fine", None, "refund please", "NOT bad"],
        "amount": [50.0, 150.0, np.nan, 101.0, 7.5],
        "region": ["east", "west", "east", "north", None],
        "channel": ["email", "chat", "email", "phone", "chat"],
        "n": [1, 2, 3, 4, 5],
        "unit price": [1.0, 2.0, 3.0, 4.0, 5.0],
    })


@pytest.mark.parametrize("expression, rows", [
    ("text.str.contains(' not ')", [0]),
    ("text.str.contains('refund')", [3]),
    ("region == 'east'", [0, 2]),
    ("amount > 100", [1, 3]),
    ("amount.isna()", [2]),
    ("region.notna() & (amount < 100)", [0]),
    ("(region == 'east') | (channel == 'phone')", [0, 2, 3]),
    ("~(region == 'east')", [1, 3, 4]),
    ("region == 'east' and not n > 2", [0]),
    ("region == 'west' or n == 5", [1, 4]),
    ("1 < n <= 3", [1, 2]),
    ("channel in ['chat', 'phone']", [1, 3, 4]),
    ("channel not in ['chat', 'phone']", [0, 2]),
    ("channel.isin(['chat'])", [1, 4]),
    ("n.between(2, 3)", [1, 2]),
    ("n.between(2, 3, inclusive='left')", [1]),
    ("`unit price` * n >= 9", [2, 3, 4]),
    ("n % 2 == 0", [1, 3]),
    ("amount / 2 - 1 > 49", [1, 3]),
    ("text.str.len() > 10", [0, 3]),
    ("len(text) > 10", [0, 3]),
    ("text.str.lower().str.startswith('not')", [4]),
    ("text.str.contains('not', case=False)", [0, 4]),
    ("text.str.upper().str.endswith('SE')", [3]),
    ("text.str.strip().str.match('fi')", [1]),
    ("`region` == 'north'", [3]),
    ("region == '@east'", []),
    ("region.str.contains('ast', regex=False, na=False)", [0, 2]),
])
def test_allowed_expressions_select_the_right_rows(frame, expression, rows):
    mask = evaluate_where(frame, expression)
    assert mask.dtype == bool and len(mask) == len(frame)
    assert list(np.flatnonzero(mask)) == rows


def test_every_where_in_the_sample_projects_and_tests_is_allowed():
    found = []
    for path in list((ROOT / "sample_projects").rglob("mltriage.toml")) + list((ROOT / "tests").glob("test_*.py")):
        for match in re.finditer(r"^where = [\"'](.+)[\"']\s*$", path.read_text(errors="replace"), re.M):
            if ":" in match.group(1) or match.group(1).startswith(("data/", "preds/", "logs/")):
                continue  # bugs.toml-style locations, not expressions
            found.append(match.group(1))
    assert "text.str.contains(' not ')" in found and "region == 'east'" in found
    for expression in found:
        check_where(expression)


HOSTILE = [
    ("__import__('os').system('touch {marker}')", ".system()"),
    ("__import__('os')", "__import__()"),
    ("pd.read_pickle('{marker}')", ".read_pickle()"),
    ("@pd.io.common.os.system('touch {marker}')", "@"),
    ("amount.__class__", ".__class__"),
    ("amount.__class__.__mro__", ".__mro__"),
    ("text.str.__class__", ".__class__"),
    ("amount.to_csv('{marker}')", ".to_csv()"),
    ("amount.to_pickle('{marker}')", ".to_pickle()"),
    ("amount.apply(print)", ".apply()"),
    ("amount.pipe(print)", ".pipe()"),
    ("(lambda: 1)()", "lambda"),
    ("[x for x in amount]", "comprehension"),
    ("{{x for x in amount}}", "comprehension"),
    ("(x for x in amount)", "generator"),
    ("amount[0]", "subscript"),
    ("text.str[0] == 'a'", "subscript"),
    ("amount.values", ".values"),
    ("getattr(amount, 'to_csv')('{marker}')", "getattr()"),
    ("open('{marker}', 'w')", "open()"),
    ("eval('1')", "eval()"),
    ("amount.isin(open('{marker}', 'w'))", "argument"),
    ("text.str.contains(open('{marker}', 'w'))", "argument"),
    ("text.str.cat(text)", ".str.cat()"),
    ("text.str.encode('utf-8')", ".str.encode()"),
    ("amount.between(1, 2, inclusive=print)", "argument"),
    ("amount.isin([1], **{{}})", "kwargs"),
    ("(y := 1)", ":="),
    ("f'{{amount}}' == 'x'", "f-string"),
    ("amount if True else amount", "if-else"),
    ("9 ** 9 ** 9 > 1", "power"),
    ("(9 ** 64) ** 64 ** 1 > 1", "power"),
    ("'a' * 10 ** 9 == text", "repeated"),
    ("amount << 2 > 1", "LShift"),
    ("amount.str.contains(b'x')", "literal"),
    ("`a` `b`", "syntax"),
    ("`unclosed", "backquote"),
]


@pytest.mark.parametrize("template, construct", HOSTILE)
def test_hostile_expressions_are_refused_naming_slice_and_construct(frame, tmp_path, monkeypatch, template, construct):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "PWNED"
    expression = template.format(marker=marker)
    with pytest.raises(SliceError) as info:
        evaluate_where(frame, expression, name="evil slice")
    message = str(info.value)
    assert "'evil slice'" in message and construct in message, message
    assert not marker.exists() and os.listdir(tmp_path) == []


def test_refused_before_anything_runs_even_after_an_allowed_part(frame, tmp_path):
    marker = tmp_path / "PWNED"
    with pytest.raises(SliceError, match="forbidden construct"):
        evaluate_where(frame, f"(amount > 1) & amount.to_csv('{marker}')")
    assert not marker.exists()


@pytest.mark.parametrize("expression, expected", [
    ("no_such_column > 3", "could not be evaluated"),
    ("amount", "not True/False"),
    ("amount > 1 > 'x'", "could not be evaluated"),
    ("True", "single True/False"),
    ("n.str.contains('1')", "needs a text column"),
    ("a >>> 1", "invalid syntax"),
    ("(" * 500 + "n > 1" + ")" * 500, "could not be evaluated"),
    ("n > 1 " + "& (n > 1) " * 2000, "longer than"),
])
def test_bad_expressions_give_a_message_not_a_traceback(frame, expression, expected):
    with pytest.raises(SliceError, match=re.escape(expected)):
        evaluate_where(frame, expression)


def test_the_frame_is_not_modified(frame):
    before = frame.copy()
    evaluate_where(frame, "text.str.lower().str.contains('not') & (amount * 2 > 10)")
    pd.testing.assert_frame_equal(frame, before)
