"""Two mltriage processes on one project keep each other's notes and ticks (issue 9)."""

import json
import subprocess
import sys

from mltriage.tui.session import Session, session_path


def test_two_sessions_merge_their_edits(tmp_path):
    first, second = Session.load(tmp_path), Session.load(tmp_path)
    first.set_note("data", "labels look noisy")
    first.toggle("data", "read 20 examples")
    assert first.save() is None
    second.set_note("metrics", "baseline is 0.6")
    second.toggle("metrics", "agreed the metric")
    assert second.save() is None
    on_disk = json.loads(session_path(tmp_path).read_text())
    assert on_disk["notes"] == {"data": "labels look noisy", "metrics": "baseline is 0.6"}
    assert on_disk["ticked"] == {"data": ["read 20 examples"], "metrics": ["agreed the metric"]}
    # the second session now also sees the first one's work
    assert second.note("data") == "labels look noisy"


def test_untick_in_one_process_survives_a_save_in_another(tmp_path):
    seed = Session.load(tmp_path)
    seed.toggle("data", "a")
    seed.toggle("data", "b")
    seed.save()
    first, second = Session.load(tmp_path), Session.load(tmp_path)
    first.toggle("data", "a")          # untick a
    first.save()
    second.toggle("data", "c")         # tick c, unaware of the untick
    second.save()
    assert json.loads(session_path(tmp_path).read_text())["ticked"]["data"] == ["b", "c"]


WRITER = """
import sys
from mltriage.tui.session import Session
root, who = sys.argv[1], sys.argv[2]
for i in range(40):
    s = Session.load(root)
    s.toggle("data", f"{who}-{i}")
    assert s.save() is None
"""


def test_concurrent_processes_lose_nothing(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), who]) for who in ("a", "b")]
    assert all(p.wait(60) == 0 for p in procs)
    ticked = json.loads(session_path(tmp_path).read_text())["ticked"]["data"]
    assert sorted(ticked) == sorted([f"{w}-{i}" for w in "ab" for i in range(40)])


def test_note_drafts_are_kept_merged_and_cleared_when_the_note_is_saved(tmp_path):
    first, second = Session.load(tmp_path), Session.load(tmp_path)
    first.set_draft("data", "half a thought")
    assert first.save() is None
    second.set_note("metrics", "baseline is 0.6")
    assert second.save() is None
    on_disk = json.loads(session_path(tmp_path).read_text())
    assert on_disk["drafts"] == {"data": "half a thought"} and on_disk["notes"] == {"metrics": "baseline is 0.6"}
    reopened = Session.load(tmp_path)
    assert reopened.pending_drafts() == ["data"] and reopened.draft("data") == "half a thought"
    reopened.set_note("data", "half a thought, finished")
    assert reopened.save() is None
    on_disk = json.loads(session_path(tmp_path).read_text())
    assert "drafts" not in on_disk and on_disk["notes"]["data"] == "half a thought, finished"
    assert Session.load(tmp_path).pending_drafts() == []
