"""Generate the app-review data of the `tokens` sample project (synthetic, deterministic).

    python generate.py            # writes buggy/data/ and fixed/data/ next to this file
    python generate.py OUT        # writes OUT/buggy/data/ and OUT/fixed/data/ instead

4,000 app-store reviews, each routed to one team: bug, billing, feature or praise. Reviewers
ramble first (how long they have used the app, on what device, for what) and make their point at
the end: the words that say which team a review is for sit in its last quarter. Lengths 5-60
words. Reviews are dated; the oldest 60% are train, then 20% valid and 20% test (a time split).
Version 5 of the app shipped right after the training period, so valid and test reviews also
mention its new features: those words were appended to the end of `vocab.txt` (one word per line,
line number = token id; 0 = <pad>, 1 = <unk>; the original 300 entries ordered by frequency in
train). Both variants get identical files (every planted bug is in the code: buggy/bugs.toml).
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import numpy as np

SEED = 5
N_REVIEWS = 4000
TRAIN_SHARE, VALID_SHARE = 0.6, 0.2
MIN_LEN, MAX_LEN = 5, 60
ORIGINAL_VOCAB = 300       # <pad>, <unk> and the words of the reviews before version 5
POINT_SHARE = 0.25         # the last quarter of a review carries its point
P_OWN_WORD, P_OTHER_WORD = 0.55, 0.08   # per point position: own team's word, another team's word
P_RELEASE_WORD = 0.10      # after the release: share of ramble words that name a version-5 feature
HERE = Path(__file__).resolve().parent
CLASSES = ["bug", "billing", "feature", "praise"]

TEAM_WORDS = {
    "bug": "crash crashes crashed freezes frozen error glitch broken bug stuck blank reboot laggy "
           "hangs closes fails failed spinner corrupted unresponsive restart flickers disappeared "
           "wiped timeout".split(),
    "billing": "charged charge refund invoice payment billed twice card subscription renewal price "
               "money fee receipt cancel cancelled trial overcharged paid bank cost expensive "
               "discount credit renewed".split(),
    "feature": "wish please add option would could support export widget setting feature request "
               "allow ability dark mode calendar sync shortcut integration customizable missing "
               "suggestion want hope".split(),
    "praise": "love great awesome amazing excellent perfect thanks fantastic wonderful helpful best "
              "brilliant smooth delightful recommend superb nice beautiful favorite happy glad "
              "enjoy impressed solid neat".split(),
}
RAMBLE_WORDS = """i the a an and to of in on for with my it this that is was have has been using use
app phone tablet weeks months days year years since when after before every morning evening night
work home daily team family kids wife husband friend colleague boss school office commute train bus
car weekend holiday trip travel lunch dinner breakfast coffee shop store market gym walk run
running music photos pictures videos messages notes lists tasks projects files documents emails
calls meetings schedule plans ideas recipes books news weather maps games shopping budget diary
journal habits steps sleep water reading writing drawing cooking cleaning garden dog cat
honestly basically actually really quite pretty just also still always often sometimes usually
mostly recently lately finally first then now today yesterday tomorrow week month so but or
because while though although if as at by from about into over under through between during
around we you they he she me us them our your their its one two three few many some any
all most more less other another same new old latest current previous next last long short
small big little lot bit thing things way time times part place people person everyone someone
nobody nothing something everything anything here there where what which who how why version
update updated device android iphone ipad laptop computer screen account profile login password
started tried opened checked noticed looked found got get getting went go going came come made make
making took take say said told think thought know knew feel felt seem seems need needed keep kept
let put set tell ask asked wanted told""".split()
RELEASE_WORDS = """v5 redesign timeline spaces boards stickers reactions threads polls voicenotes
templates kanban gallery livestream captions translator offline tabs homescreen planner
focusmode streaks badges mentions hashtags workspace sidebar dashboard carousel snippets
highlights vault scanner autosave multiwindow splitview minimap bookmarks archive tagging
filters presets lenses avatars emojis gifs wallpapers themes fonts icons layouts toolbar
ribbon inbox outbox digest recap insights analytics leaderboard quests""".split()


def original_words() -> list[str]:
    """The words of the pre-release reviews, trimmed so that <pad>, <unk> and these fill 300 ids."""
    team = [w for words in TEAM_WORDS.values() for w in words]
    ramble = list(dict.fromkeys(w for w in RAMBLE_WORDS if w not in team))
    keep = ORIGINAL_VOCAB - 2 - len(team)
    if len(ramble) < keep:
        raise ValueError(f"generate.py: need {keep} ramble words, have {len(ramble)}")
    return team + ramble[:keep]


def zipf_weights(n: int) -> np.ndarray:
    """Word frequencies of natural text fall off roughly as 1/rank (Zipf's law)."""
    w = 1.0 / np.arange(1, n + 1)
    return w / w.sum()


def review(rng, label: int, ramble: list[str], after_release: bool) -> str:
    length = int(rng.integers(MIN_LEN, MAX_LEN + 1))
    n_point = max(2, int(round(POINT_SHARE * length)))
    words = list(rng.choice(ramble, size=length, p=zipf_weights(len(ramble))))
    if after_release:
        for i in np.flatnonzero(rng.random(length - n_point) < P_RELEASE_WORD):
            words[i] = RELEASE_WORDS[int(rng.integers(len(RELEASE_WORDS)))]
    own = TEAM_WORDS[CLASSES[label]]
    for i in range(length - n_point, length):
        u = rng.random()
        if u < P_OWN_WORD:
            words[i] = own[int(rng.integers(len(own)))]
        elif u < P_OWN_WORD + P_OTHER_WORD:
            other = TEAM_WORDS[CLASSES[(label + int(rng.integers(1, len(CLASSES)))) % len(CLASSES)]]
            words[i] = other[int(rng.integers(len(other)))]
    words[-1] = own[int(rng.integers(len(own)))]     # every review ends on its point
    return " ".join(words)


def vocabulary(train_texts: list[str], words: list[str]) -> list[str]:
    """<pad>, <unk>, the original words by frequency in train (ties by word), then the release words."""
    counts = Counter(w for text in train_texts for w in text.split())
    ordered = sorted(words, key=lambda w: (-counts[w], w))
    return ["<pad>", "<unk>"] + ordered + RELEASE_WORDS


def main(out: Path = HERE) -> None:
    rng = np.random.default_rng(SEED)
    words = original_words()
    team = {w for ws in TEAM_WORDS.values() for w in ws}
    ramble = [w for w in words if w not in team]
    rng.shuffle(ramble)                       # which ramble words are common is arbitrary
    n_train = int(TRAIN_SHARE * N_REVIEWS)
    n_valid = int(VALID_SHARE * N_REVIEWS)
    start = date(2024, 1, 1)
    days = np.sort(rng.integers(0, 365, size=N_REVIEWS))
    rows = []
    for i, day in enumerate(days):
        label = int(rng.integers(len(CLASSES)))
        after = i >= n_train                  # version 5 shipped the day after the last training review
        when = start + timedelta(days=int(day) + int(after))
        rows.append({"id": f"r{i:05d}", "date": str(when), "text": review(rng, label, ramble, after),
                     "label": CLASSES[label]})
    splits = {"train": rows[:n_train], "valid": rows[n_train:n_train + n_valid],
              "test": rows[n_train + n_valid:]}
    vocab = vocabulary([r["text"] for r in splits["train"]], words)
    for variant in ("fixed", "buggy"):
        data = Path(out) / variant / "data"
        data.mkdir(parents=True, exist_ok=True)
        for split, split_rows in splits.items():
            with open(data / f"{split}.jsonl", "w", encoding="utf-8", newline="\n") as f:
                f.writelines(json.dumps(r) + "\n" for r in split_rows)
        (data / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8", newline="\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
