"""Readers: every format into pandas; bad files give messages, never tracebacks; no unpickling."""

import threading
import numpy as np
import pandas as pd
import pytest

from helpers import context_for, write_project
from mltriage.checks.project.config import ProjectError
from mltriage.checks.io.readers import read_table


@pytest.fixture
def frame():
    return pd.DataFrame({"a": np.arange(10, dtype=float), "label": ["p", "q"] * 5})


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_formats_round_trip(tmp_path, frame, fmt):
    write_project(tmp_path, frame, valid_df=frame, fmt=fmt)
    ctx = context_for(tmp_path)
    assert list(ctx.train.columns) == ["a", "label"] and len(ctx.valid) == 10


def test_tsv(tmp_path, frame):
    frame.to_csv(tmp_path / "t.tsv", sep="\t", index=False)
    assert read_table(tmp_path / "t.tsv").shape == (10, 2)


def test_npz_columns_and_X_matrix(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.ones((4, 3)), label=np.array([0, 1, 0, 1]))
    df = read_table(tmp_path / "d.npz")
    assert list(df.columns) == ["x0", "x1", "x2", "label"]


def test_npz_with_objects_is_refused_without_unpickling(tmp_path):
    np.savez(tmp_path / "d.npz", label=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(ProjectError, match="never unpickles"):
        read_table(tmp_path / "d.npz")


def test_empty_and_header_only(tmp_path):
    (tmp_path / "e.csv").write_text("")
    (tmp_path / "h.csv").write_text("a,b,label\n")
    with pytest.raises(ProjectError, match="empty"):
        read_table(tmp_path / "e.csv")
    with pytest.raises(ProjectError, match="no rows"):
        read_table(tmp_path / "h.csv")


def test_wrong_delimiter(tmp_path):
    (tmp_path / "s.csv").write_text("a;b;label\n1;2;x\n3;4;y\n")
    with pytest.raises(ProjectError, match="separated by ';'"):
        read_table(tmp_path / "s.csv")


def test_ragged_rows(tmp_path):
    (tmp_path / "r.csv").write_text("a,b\n1,2\n3,4,5,6\n")
    with pytest.raises(ProjectError, match="could not be read"):
        read_table(tmp_path / "r.csv")


def test_non_utf8(tmp_path):
    (tmp_path / "n.csv").write_bytes(b"a,label\n1,caf\xe9\n2,x\n")
    with pytest.raises(ProjectError, match="UTF-8|could not be read"):
        read_table(tmp_path / "n.csv")


def test_truncated_parquet(tmp_path, frame):
    frame.to_parquet(tmp_path / "p.parquet")
    data = (tmp_path / "p.parquet").read_bytes()
    (tmp_path / "p.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(ProjectError, match="could not be read"):
        read_table(tmp_path / "p.parquet")


def test_unsupported_extension(tmp_path):
    (tmp_path / "x.xlsx").write_text("nope")
    with pytest.raises(ProjectError, match="unsupported extension"):
        read_table(tmp_path / "x.xlsx")


def test_holdout_is_stratified_seeded_and_announced(tmp_path):
    df = pd.DataFrame({"a": np.arange(100.0), "label": ["p"] * 80 + ["q"] * 20})
    write_project(tmp_path, df)
    first, second = context_for(tmp_path), context_for(tmp_path)
    assert first.valid_is_holdout and len(first.valid) == 20
    assert (first.valid["label"] == "q").sum() == 4  # stratified: 20% of each class
    assert first.valid["a"].tolist() == second.valid["a"].tolist()  # seeded


def test_large_file_is_sampled_with_notice(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=60000), "label": rng.integers(0, 2, 60000)})
    write_project(tmp_path, df)
    size_mb = (tmp_path / "data" / "train.csv").stat().st_size / 2**20
    monkeypatch.setenv("MLTRIAGE_MAX_READ_MB", str(size_mb / 4))
    from helpers import run_check

    ctx = context_for(tmp_path)
    total = len(ctx.train) + len(ctx.valid)
    assert 10000 < total < 20000  # about a quarter of the rows
    finding = run_check(ctx, "sanity.data_loads")
    assert finding.status == "info" and "sampled" in finding.title
    assert finding.evidence["sampled"]["train"]["rows_in_file"] == 60000


def test_parsed_ahead_table_is_used_once_and_matches_a_plain_read(tmp_path, monkeypatch):
    from mltriage.checks.io import readers

    path = tmp_path / "d.csv"
    pd.DataFrame({"a": np.arange(3000) * 0.5, "s": [f"text {i % 7}" for i in range(3000)]}).to_csv(path, index=False)
    plain = read_table(path)
    parses = []
    real_parse = readers._parse_csv
    monkeypatch.setattr(readers, "_parse_csv",
                        lambda p, sep: parses.append(threading.current_thread().name) or real_parse(p, sep))
    readers.parse_ahead([path, None, tmp_path / "d.parquet"])  # only the CSV is parsed ahead
    ahead = read_table(path)
    assert parses == ["mltriage-read"]  # the background parse, not a second one
    pd.testing.assert_frame_equal(ahead, plain)
    assert ahead["s"].array._pa_array.num_chunks == 1  # text columns arrive as one chunk
    read_table(path)
    assert parses == ["mltriage-read", "MainThread"]  # handed out once, then files are read as usual


def test_file_changed_after_parse_ahead_is_read_again(tmp_path):
    from mltriage.checks.io import readers

    path = tmp_path / "d.csv"
    path.write_text("a,label\n1,x\n2,y\n")
    readers.parse_ahead([path])
    path.write_text("a,label\n1,x\n2,y\n3,z\n")  # a different size: another file now
    assert len(read_table(path)) == 3


def test_broken_file_parsed_ahead_still_gets_the_message(tmp_path):
    from mltriage.checks.io import readers

    (tmp_path / "r.csv").write_text("a,b\n1,2\n3,4,5,6\n")
    readers.parse_ahead([tmp_path / "r.csv"])
    with pytest.raises(ProjectError, match="could not be read"):
        read_table(tmp_path / "r.csv")
