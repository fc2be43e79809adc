"""Generate the product-review data for the `sentiment` sample project.

Deterministic: the same seed always writes byte-identical files.

    python generate.py            # writes buggy/data/*.csv and fixed/data/*.csv

~3,000 short reviews built from templates (products, aspects, negations,
intensifiers, neutral phrasing, mixed opinions, typos), de-duplicated so no text
appears twice, shuffled and split 2,000 / 500 / 500.  Both variants share
train.csv and test.csv; only buggy/data/valid.csv differs (see buggy/bugs.toml).
Both also get data/pool.csv: 500 further reviews without labels ([data] unlabeled), the pool
errors.similar_unlabeled ranks for labelling next; drawn from their own seed, so adding them
left the other files byte-identical.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

SEED = 20240611
N_TRAIN, N_VALID, N_TEST = 2000, 500, 500
N_POOL, POOL_SEED = 500, SEED + 1
HERE = Path(__file__).resolve().parent

PRODUCTS = [
    "headphones", "phone case", "blender", "laptop stand", "running shoes", "coffee maker",
    "desk lamp", "backpack", "keyboard", "water bottle", "vacuum", "charger", "tent",
    "office chair", "air fryer", "smart watch", "monitor", "toaster", "yoga mat", "umbrella",
    "kettle", "mouse", "webcam", "suitcase", "speaker", "rice cooker", "jacket", "drill",
]
ASPECTS = [
    "battery life", "sound quality", "build quality", "the price", "delivery", "customer service",
    "the design", "comfort", "the instructions", "the packaging", "the size", "the material",
    "setup", "the app", "noise level", "the fit", "the handle", "the cable", "the finish",
]
POS_ADJ = ["great", "excellent", "fantastic", "solid", "reliable", "comfortable", "impressive",
           "sturdy", "perfect", "wonderful", "brilliant", "good", "superb", "lovely"]
NEG_ADJ = ["terrible", "awful", "flimsy", "disappointing", "useless", "poor", "cheap",
           "horrible", "bad", "defective", "shoddy", "dreadful", "pathetic", "mediocre at best"]
NEU_ADJ = ["okay", "fine", "average", "alright", "acceptable", "standard", "ordinary",
           "as expected", "decent enough", "fairly basic", "middle of the road", "so-so"]
INTENS = ["", "", "", "very ", "really ", "extremely ", "super ", "incredibly ", "quite ",
          "absolutely ", "pretty "]
POS_ADV = ["perfectly", "flawlessly", "great", "really well", "beautifully", "as advertised"]
UNITS = ["days", "weeks", "uses"]
PEOPLE = ["my son", "my daughter", "my wife", "my husband", "a friend", "my dad", "my mom",
          "the office", "my sister", "myself"]
COLORS = ["black", "white", "blue", "grey", "red", "green"]

POS_STRONG = [
    "The {p} is {i}{pa}.",
    "{A} is {i}{pa}.",
    "I love this {p}.",
    "Works {adv}, and {a} is {pa}.",
    "Exactly what I needed.",
    "Would definitely recommend this {p}.",
    "Never had a problem with it.",
    "Not a single complaint so far.",
    "Not bad at all, actually {i}{pa}.",
    "Best {p} I have ever owned.",
    "Worth every penny.",
    "Arrived quickly and works {adv}.",
    "Very happy with the {p}, {a} is {i}{pa}.",
    "Honestly {i}{pa}, I would buy it again.",
    "Could not be happier with it.",
    "It has never let me down.",
    "Five weeks in and it still works {adv}.",
    "Really pleased, {a} exceeded my expectations.",
    "Such a {pa} {p}, highly recommended.",
    "Great value and {a} is {i}{pa}.",
]
NEG_STRONG = [
    "The {p} is {i}{na}.",
    "{A} is {i}{na}.",
    "It never worked.",
    "Never worked properly from day one.",
    "Stopped working after {n} {u}.",
    "Not {pa} at all.",
    "{A} is not {pa}, sadly.",
    "Would not recommend this {p}.",
    "I would never buy this again.",
    "Complete waste of money.",
    "Returned it after {n} days.",
    "Does not work as advertised.",
    "Honestly not worth the price.",
    "Broke within {n} {u}.",
    "Very disappointed with the {p}.",
    "{A} is {i}{na} and the {p} feels {na}.",
    "Do not buy this {p}.",
    "It did not even turn on.",
    "Worst {p} I have ever bought.",
    "Regret buying it, {a} is {na}.",
]
NEU = [
    "The {p} is {neu}.",
    "{A} is {neu}, nothing special.",
    "It does the job.",
    "Arrived in {n} days.",
    "Not great, not terrible.",
    "Some things are good, others not so much.",
    "Average {p} for the price.",
    "Have not used it enough to say much yet.",
    "It is what it is.",
    "Mixed feelings: {a} is {pa} but {a2} is {na}.",
    "Does what it says, no more, no less.",
    "{A} could be better, {a2} is {neu}.",
    "A fairly ordinary {p}.",
    "Neither good nor bad.",
    "It works, but {a} is just {neu}.",
    "Nothing to write home about.",
    "Pretty much what you would expect for a {p}.",
    "{A} is {pa}, {a2} is {na}, so overall {neu}.",
    "Fine for now, we will see how it holds up.",
    "All in all {neu}, it does its job.",
]
POS_MILD = [
    "Pretty good overall.",
    "{A} is decent.",
    "Does the job well.",
    "Happy enough with it.",
    "Good for the price.",
    "{A} is nice, the rest is fine.",
    "Mostly satisfied with the {p}.",
    "A good {p}, if a little plain.",
    "No real complaints.",
    "Nice {p} for everyday use.",
    "{A} is better than I expected.",
    "Solid enough, I would probably buy it again.",
]
NEG_MILD = [
    "{A} could be better.",
    "A bit disappointing.",
    "Expected more for the price.",
    "{A} is a little {mn}.",
    "Not great.",
    "Only lasted a few weeks.",
    "Not really worth it.",
    "{A} is not what I hoped for.",
    "Somewhat let down by the {p}.",
    "Probably would not buy it again.",
    "It works, barely.",
    "Had some issues with {a}.",
]
MILD_NEG_ADJ = ["weak", "underwhelming", "annoying", "uncomfortable", "noisy", "awkward", "slow"]
FILLER = [
    "Bought it for {who}.",
    "Ordered the {c} one.",
    "Got it on sale.",
    "This is my second {p}.",
    "Using it every day.",
    "Had it for {n} weeks now.",
    "Replaced my old {p}.",
]
MINOR_COMPLAINT = ["Only downside is {a}.", "{A} could be a bit better though."]
MINOR_PRAISE = ["At least {a} is {pa}.", "{A} is {pa}, to be fair."]

POOLS = [NEG_STRONG, NEG_MILD, NEU, POS_MILD, POS_STRONG]  # polarity -2 .. +2
# How likely each label draws a clause of each polarity: reviews are built from a mix,
# so a short review with one mild clause is genuinely ambiguous between two labels.
POLARITY_MIX = {
    "neg": [0.50, 0.36, 0.10, 0.04, 0.00],
    "neu": [0.00, 0.14, 0.72, 0.14, 0.00],
    "pos": [0.00, 0.04, 0.10, 0.36, 0.50],
}


def _fill(rng: np.random.Generator, template: str, product: str) -> str:
    a, a2 = rng.choice(ASPECTS, size=2, replace=False)
    values = {
        "p": product, "a": a, "a2": a2, "A": a[0].upper() + a[1:],
        "pa": rng.choice(POS_ADJ), "na": rng.choice(NEG_ADJ), "neu": rng.choice(NEU_ADJ),
        "i": rng.choice(INTENS), "mn": rng.choice(MILD_NEG_ADJ), "adv": rng.choice(POS_ADV), "n": int(rng.integers(2, 15)),
        "u": rng.choice(UNITS), "who": rng.choice(PEOPLE), "c": rng.choice(COLORS),
    }
    text = template.format(**values)
    return text[0].upper() + text[1:]


def _typo(rng: np.random.Generator, text: str) -> str:
    words = text.split(" ")
    k = int(rng.integers(len(words)))
    w = words[k]
    if len(w) > 3:
        j = int(rng.integers(1, len(w) - 2))
        w = w[:j] + w[j + 1] + w[j] + w[j + 2:]  # swap two letters
        words[k] = w
    return " ".join(words)


def make_review(rng: np.random.Generator, label: str) -> str:
    product = rng.choice(PRODUCTS)
    n_main = int(rng.choice([1, 1, 2, 2, 3]))
    parts = []
    for _ in range(n_main):
        pool = POOLS[int(rng.choice(5, p=POLARITY_MIX[label]))]
        template = rng.choice(pool)
        text = _fill(rng, template, product)
        if text not in parts:
            parts.append(text)
    if rng.random() < 0.35:
        parts.insert(int(rng.integers(len(parts) + 1)), _fill(rng, rng.choice(FILLER), product))
    if label == "pos" and rng.random() < 0.12:
        parts.append(_fill(rng, rng.choice(MINOR_COMPLAINT), product))
    if label == "neg" and rng.random() < 0.12:
        parts.append(_fill(rng, rng.choice(MINOR_PRAISE), product))
    text = " ".join(parts)
    r = rng.random()
    if label in ("pos", "neg") and r < 0.06:
        text = text.rstrip(".") + "!!"
    if rng.random() < 0.2:
        text = text.lower()
    if rng.random() < 0.1:
        text = text.rstrip(".!")
    if rng.random() < 0.12:
        text = _typo(rng, text)
    return text


def build_reviews(rng: np.random.Generator) -> list[dict]:
    total = N_TRAIN + N_VALID + N_TEST
    labels = rng.choice(["neg", "neu", "pos"], size=total * 2, p=[0.34, 0.30, 0.36])
    seen: set[str] = set()
    rows: list[dict] = []
    for label in labels:
        text = make_review(rng, str(label))
        key = text.lower().strip(" .!")
        if key in seen:  # no text may appear twice, within or across splits
            continue
        seen.add(key)
        rows.append({"text": text, "label": str(label)})
        if len(rows) == total:
            break
    return rows


def write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["review_id", "text", "label"], lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def write_pool(rows: list[dict]) -> None:
    """data/pool.csv: unlabeled reviews drawn like the others, none repeating a text of any split."""
    rng = np.random.default_rng(POOL_SEED)
    seen = {r["text"].lower().strip(" .!") for r in rows}
    ids = {r["review_id"] for r in rows}
    pool: list[dict] = []
    for label in rng.choice(["neg", "neu", "pos"], size=N_POOL * 4, p=[0.34, 0.30, 0.36]):
        text = make_review(rng, str(label))
        key = text.lower().strip(" .!")
        if key in seen:
            continue
        seen.add(key)
        pool.append({"text": text})
        if len(pool) == N_POOL:
            break
    free = np.setdiff1d(np.arange(100000, 999999), [int(i[1:]) for i in ids])
    for r, i in zip(pool, rng.choice(free, size=len(pool), replace=False)):
        r["review_id"] = f"R{i}"
    for variant in ("fixed", "buggy"):
        path = HERE / variant / "data" / "pool.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=["review_id", "text"], lineterminator="\n")
            w.writeheader()
            w.writerows(pool)


def main() -> None:
    rng = np.random.default_rng(SEED)
    rows = build_reviews(rng)
    order = rng.permutation(len(rows))
    rows = [rows[i] for i in order]
    ids = rng.choice(np.arange(100000, 999999), size=len(rows), replace=False)
    rows = [{"review_id": f"R{ids[i]}", **r} for i, r in enumerate(rows)]
    train = rows[:N_TRAIN]
    valid = rows[N_TRAIN:N_TRAIN + N_VALID]
    test = rows[N_TRAIN + N_VALID:]

    for variant in ("fixed", "buggy"):
        write_csv(HERE / variant / "data" / "train.csv", train)
        write_csv(HERE / variant / "data" / "test.csv", test)
    write_csv(HERE / "fixed" / "data" / "valid.csv", valid)

    # Buggy: the validation file was rebuilt from a concatenation that also pulled in
    # 120 training rows (the old export overwrote part of the held-out set).
    leaked_idx = np.sort(rng.choice(N_TRAIN, size=120, replace=False))
    replaced = np.sort(rng.choice(N_VALID, size=120, replace=False))
    buggy_valid = list(valid)
    for dst, src in zip(replaced, leaked_idx):
        buggy_valid[dst] = train[src]
    write_csv(HERE / "buggy" / "data" / "valid.csv", buggy_valid)
    write_pool(rows)


if __name__ == "__main__":
    main()
