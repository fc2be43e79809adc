"""errors.weak_slices leaves whole classes to metrics.per_class: on tensor projects the label is one of the
columns slices are searched in, and a slice "label == 3" is a class, whose verdict per_class owns (the two
checks disagreed on images/fixed before: per_class passed, weak_slices warned on the same class)."""

from __future__ import annotations

import pytest

from mltriage.checks.steps.errors.segments import WeakSlicesMeasure, weak_slices_verdict


def _slice(description, column, kind, error=0.30, severe=True, class_slice=None):
    found = {"description": description, "kind": kind, "column": column, "rule": None, "size": 40,
             "error": error, "rest_error": 0.06, "excess": error - 0.08, "ratio": error / 0.06, "z": 4.0,
             "q": 1e-4, "excess_errors": 40 * (error - 0.08), "severe": severe}
    if class_slice is not None:
        found["class_slice"] = class_slice
    return found


def _measure(slices):
    return WeakSlicesMeasure(binary=True, rows=300, mean_error=0.08, candidates=20, tested=18, slices=slices)


def test_a_severe_class_slice_alone_is_info_and_names_per_class():
    f = weak_slices_verdict(_measure([_slice("label == 3", "label", "category", class_slice=True)]))
    assert f.status == "info"
    assert "whole classes" in f.title and "metrics.per_class" in f.title


def test_a_severe_feature_slice_still_warns_beside_a_class_slice():
    f = weak_slices_verdict(_measure([_slice("label == 3", "label", "category", class_slice=True),
                                      _slice("brightness in [0.1, 0.2)", "brightness", "range")]))
    assert f.status == "warn" and "brightness" in f.title
    assert "metrics.per_class" in f.detail


@pytest.mark.parametrize("class_slice", [None, False])
def test_table_slices_are_judged_as_before(class_slice):
    # table projects never search the target column, so their slices carry no class tag (or False)
    f = weak_slices_verdict(_measure([_slice("cat0 == 'a'", "cat0", "category", class_slice=class_slice)]))
    assert f.status == "warn"


def test_mark_class_slices_tags_only_label_categories():
    from mltriage.checks.analyses.slices import _mark_class_slices

    slices = [_slice("label == 3", "label", "category"), _slice("cluster 2", None, "cluster"),
              _slice("brightness in [0, 1)", "brightness", "range")]
    _mark_class_slices(slices)
    assert [s["class_slice"] for s in slices] == [True, False, False]
