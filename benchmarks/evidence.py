"""Benchmark the evidence features of issue 18: near-duplicate text search and feature relevance.

Near duplicates: --texts synthetic reviews (two to five sentences drawn from a Zipf vocabulary, so common
words repeat as in real text), with --planted near copies (the same sentences in another order, or one word
changed) at known positions. Times analyses/neardup.py find_near_pairs in this process and prints seconds,
the peak RSS, the planted pairs recovered and the other pairs found. Target (issue 18): 200,000 texts in
under 30 s on 2 cores.

Feature relevance: a --rows table with informative and pure-noise columns; prints the seconds of
data.feature_relevance's measurement and which columns it calls noise.

    python benchmarks/evidence.py [--texts 200000] [--planted 2000] [--rows 100000] [--skip-relevance]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_texts(n: int, planted: int, seed: int = 0) -> tuple[list[str], list[tuple[int, int]]]:
    rng = np.random.default_rng(seed)
    vocab = np.array([f"word{i}" for i in range(20_000)])
    texts = []
    for _ in range(n):
        k = int(rng.integers(2, 6))
        sentences = [" ".join(vocab[(rng.zipf(1.2, int(rng.integers(4, 12))) - 1) % len(vocab)]) for _ in range(k)]
        texts.append(". ".join(sentences) + ".")
    pairs = []
    for i, src in enumerate(rng.choice(n // 2, planted, replace=False)):
        dst = n // 2 + i
        sentences = [s for s in texts[src].split(". ") if s]
        if i % 2 == 0:
            sentences = sentences[::-1]
        else:
            words = sentences[-1].rstrip(".").split()
            words[-1] = "changed"
            sentences[-1] = " ".join(words)
        texts[dst] = ". ".join(s.rstrip(".") for s in sentences) + "."
        pairs.append((int(src), dst))
    return texts, pairs


def bench_near_duplicates(n: int, planted: int) -> None:
    from mltriage.checks.analyses.neardup import NEAR_JACCARD, find_near_pairs, shingle_sets

    texts, truth = synthetic_texts(n, planted)
    # Planted pairs whose true Jaccard reaches the threshold (a changed word in a short text may not).
    sets = {}

    def jac(i, j):
        a = sets.setdefault(i, set(shingle_sets([texts[i]])[0]))
        b = sets.setdefault(j, set(shingle_sets([texts[j]])[0]))
        return len(a & b) / max(len(a | b), 1)

    reachable = {p for p in truth if jac(*p) >= NEAR_JACCARD}
    rss0 = peak_rss_mb()
    t0 = time.perf_counter()
    pairs, _ = find_near_pairs(texts, seed=0)
    seconds = time.perf_counter() - t0
    found = {tuple(sorted(p)) for p in pairs.tolist()}
    hit = len({tuple(sorted(p)) for p in reachable} & found)
    print(f"near duplicates: {n:,} texts in {seconds:.1f} s (target < 30 s), peak RSS {peak_rss_mb():.0f} MB "
          f"(before {rss0:.0f} MB)")
    print(f"  planted pairs at Jaccard >= {NEAR_JACCARD}: {len(reachable)} of {len(truth)}; recovered {hit} "
          f"({hit / max(len(reachable), 1):.1%}); other pairs found: {len(found) - hit}")


def bench_relevance(rows: int) -> None:
    import pandas as pd

    from mltriage.checks.steps.data.relevance import relevance_scores

    rng = np.random.default_rng(1)
    X = pd.DataFrame({f"signal{i}": rng.normal(size=rows) for i in range(5)})
    for i in range(15):
        X[f"noise{i}"] = rng.normal(size=rows)
    y = (X.iloc[:, :5].sum(axis=1) + rng.normal(scale=1.0, size=rows) > 0).astype(int).to_numpy()
    t0 = time.perf_counter()
    scores = relevance_scores(X.to_numpy(), y, classification=True, seed=0)
    seconds = time.perf_counter() - t0
    flagged = [X.columns[j] for j in np.flatnonzero(scores.no_signal)]
    print(f"feature relevance: {rows:,} rows x {X.shape[1]} columns in {seconds:.1f} s; no signal: "
          f"{len(flagged)} columns ({sum(c.startswith('noise') for c in flagged)} of 15 noise, "
          f"{sum(c.startswith('signal') for c in flagged)} of 5 signal)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=200_000)
    parser.add_argument("--planted", type=int, default=2_000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--skip-relevance", action="store_true")
    args = parser.parse_args()
    bench_near_duplicates(args.texts, args.planted)
    if not args.skip_relevance:
        bench_relevance(args.rows)


if __name__ == "__main__":
    main()
