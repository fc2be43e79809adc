"""How fast is errors.weak_slices' slice discovery on a large validation split?

Generates N rows (default 200,000) with categorical, numeric and free-text columns (8 words per row
from a Zipf-distributed vocabulary of 5,000 words), a model error of 10% everywhere except two planted
weak segments (region == 'east': 25%; notes containing 'damaged': 40%), runs discover_slices
(categories, quintile ranges, keywords, text length, k-means clusters, z-tests + Benjamini-Hochberg)
plus the de-duplication errors.weak_slices does, and prints the time and what was found. The first
run includes importing scipy/scikit-learn/pyarrow; the best of the repeats is the steady-state figure.

    python benchmarks/slice_discovery.py [--rows 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time


def make_data(n: int, seed: int = 0):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(5000)], dtype=object)
    vocab[7] = "damaged"
    ranks = np.arange(1, len(vocab) + 1)
    zipf = (1 / ranks) / (1 / ranks).sum()
    df = pd.DataFrame({
        "region": rng.choice(["north", "south", "east", "west", "central"], n),
        "channel": rng.choice(["web", "app", "phone"], n, p=[0.6, 0.3, 0.1]),
        "tier": rng.integers(0, 4, n),
        "amount": rng.gamma(2.0, 50.0, n),
        "age": rng.normal(40, 12, n),
        "items": rng.poisson(3, n).astype(float),
        "score": rng.normal(size=n),
        "days": rng.exponential(10, n),
        "note": [" ".join(t) for t in rng.choice(vocab, (n, 8), p=zipf)],
    })
    rate = np.full(n, 0.1)
    rate[(df["region"] == "east").to_numpy()] = 0.25
    rate[df["note"].str.contains(r"\bdamaged\b").to_numpy()] = 0.4
    err = (rng.random(n) < rate).astype(float)
    return df, err


def run(rows: int, repeat: int) -> dict:
    from mltriage.checks.analyses.slices import deduplicate_slices, column_kinds, discover_slices

    df, err = make_data(rows)
    numeric = ["tier", "amount", "age", "items", "score", "days"]
    categorical = ["region", "channel"]
    text = ["note"]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = discover_slices(df, err, numeric, categorical, text, binary=True, seed=0)
        nums = column_kinds(df, numeric, categorical, text)[0]
        slices = deduplicate_slices(df, result, nums, 0)
        times.append(time.perf_counter() - start)
    return {"rows": rows, "seconds_best": min(times), "seconds_all": times, "candidates": result["candidates"],
            "tested": result["tested"], "reported": len(slices),
            "top": [(s["description"], s["size"], round(s["error"], 3)) for s in slices[:5]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    out = run(args.rows, args.repeat)
    print(f"slice discovery on {out['rows']:,} rows: best {out['seconds_best']:.2f} s "
          f"(runs: {', '.join(f'{t:.2f}' for t in out['seconds_all'])} s)")
    print(f"{out['candidates']} candidate segments, {out['tested']} tested, {out['reported']} reported")
    for desc, size, error in out["top"]:
        print(f"  {desc}: {size} rows, error {error}")


if __name__ == "__main__":
    main()
