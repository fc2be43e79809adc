"""Slice discovery: candidate segments of the validation rows (categorical values, quantile ranges, text
keywords and length, k-means clusters), each tested against the other rows for a higher error, and the
evaluator of the project's own [[slices]] where-expressions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .stats import FDR, benjamini_hochberg


# A slice needs at least this many rows: the z-test below relies on the normal approximation, for
# which 30 observations is the textbook rule of thumb (central limit theorem).
MIN_SLICE_ROWS = 30
# A slice covering almost all rows says nothing about a segment.
MAX_SLICE_SHARE = 0.95
# Reported slices: significant after Benjamini-Hochberg at FDR, an error at least 1.25x that of the other
# rows and (for a 0/1 error) at least 3 points above the average - smaller excesses are rarely actionable.
REPORT_RATIO, REPORT_EXCESS = 1.25, 0.03
# Warn when a slice errs at least twice as often as the other rows and at least 10 points more than
# average (0/1 error), or has twice their absolute error (regression): a segment the model clearly
# handles badly. Compared with the other rows, not the average, which the slice itself pulls up.
WARN_RATIO, WARN_EXCESS = 2.0, 0.10
QUANTILE_BINS = 5            # numeric ranges: quintiles
MAX_CATEGORY_VALUES = 100    # most frequent values per categorical column
MAX_KEYWORDS = 500           # vocabulary of candidate keywords per text column
KEYWORD_MAX_DF = 0.5         # a word in more than half of the rows is not a segment
N_CLUSTERS = 8               # k-means on standardised numeric features (small k: readable segments)
CLUSTER_SAMPLE = 10_000      # rows used to fit k-means (centres settle long before); every row is then assigned
MAX_REPORTED = 10
OVERLAP_DUPLICATE = 0.9      # a slice sharing >90% of rows with a higher-ranked one is the same segment


@dataclass
class Candidate:
    description: str
    kind: str            # category | range | missing | keyword | length | cluster
    column: str
    rule: Any            # enough to rebuild the rows (value, [lo, hi], token, cluster id)
    size: int
    error_sum: float


def _category_candidates(name: str, values, err) -> tuple[list[Candidate], dict]:
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(pd.Series(values), use_na_sentinel=True)
    counts = np.bincount(codes + 1, minlength=len(uniques) + 1)
    sums = np.bincount(codes + 1, weights=err, minlength=len(uniques) + 1)
    out = []
    top = np.argsort(-counts[1:], kind="stable")[:MAX_CATEGORY_VALUES]
    for j in top:
        out.append(Candidate(f"{name} == {uniques[j]!r}", "category", name, plain_value(uniques[j]),
                             int(counts[j + 1]), float(sums[j + 1])))
    if counts[0]:
        out.append(Candidate(f"{name} is missing", "missing", name, None, int(counts[0]), float(sums[0])))
    return out, {"codes": codes, "uniques": uniques}


def plain_value(value):
    return value.item() if hasattr(value, "item") else value


def _range_candidates(name: str, values, err, what: str = "range", label: str | None = None) -> list[Candidate]:
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    out = []
    if (~finite).sum():
        out.append(Candidate(f"{label or name} is missing", "missing", name, None, int((~finite).sum()),
                             float(err[~finite].sum())))
    if finite.sum() < 2 * MIN_SLICE_ROWS:
        return out
    edges = np.unique(np.quantile(v[finite], np.linspace(0, 1, QUANTILE_BINS + 1)))
    if len(edges) < 2:
        return out
    bins = np.clip(np.searchsorted(edges[1:-1], v[finite], side="right"), 0, len(edges) - 2)
    counts = np.bincount(bins, minlength=len(edges) - 1)
    sums = np.bincount(bins, weights=err[finite], minlength=len(edges) - 1)
    for b in range(len(edges) - 1):
        lo, hi = float(edges[b]), float(edges[b + 1])
        last = b == len(edges) - 2
        text = f"{label or name} in [{lo:.4g}, {hi:.4g}{']' if last else ')'}"
        out.append(Candidate(text, what, name, [lo, hi, last], int(counts[b]), float(sums[b])))
    return out


# Word separators: anything but Unicode letters, digits and "_" (RE2 syntax, as Arrow's regex engine).
SEPARATORS = r"[^\p{L}\p{N}_]+"


def _tokens(texts):
    """(row position, word code) per word occurrence, and the words: lower-cased words of two or more
    characters, split with Arrow's vectorised string kernels (fast on hundreds of thousands of rows)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    values = texts.fillna("").astype(str).to_numpy(dtype=object)
    parts = pc.split_pattern_regex(pc.utf8_lower(pa.array(values, type=pa.large_string())), SEPARATORS)
    words, rows = pc.list_flatten(parts), pc.list_parent_indices(parts)
    keep = pc.greater_equal(pc.utf8_length(words), 2)
    encoded = pc.dictionary_encode(pc.filter(words, keep)).combine_chunks() if isinstance(words, pa.ChunkedArray) \
        else pc.dictionary_encode(pc.filter(words, keep))
    rows = np.asarray(pc.filter(rows, keep).to_numpy(zero_copy_only=False), dtype=np.int64)
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    return rows, codes, encoded.dictionary.to_pylist()


def _keyword_candidates(name: str, texts, err, cache: dict) -> list[Candidate]:
    """One candidate per frequent word: rows whose text contains it (exact on every row, no sampling)."""
    import numpy as np

    rows, codes, words = cache[("tokens", name)] = _tokens(texts)
    n_words = len(words)
    if n_words == 0:
        return []
    pairs = np.sort(rows * n_words + codes)            # each word counted once per row (sort + dedupe:
    pairs = pairs[np.r_[True, pairs[1:] != pairs[:-1]]]  # much faster than hashing a million keys)
    rows, codes = pairs // n_words, pairs % n_words
    df = np.bincount(codes, minlength=n_words)
    sums = np.bincount(codes, weights=np.asarray(err)[rows], minlength=n_words)
    eligible = np.flatnonzero((df >= MIN_SLICE_ROWS) & (df <= KEYWORD_MAX_DF * len(texts)))
    top = eligible[np.argsort(-df[eligible], kind="stable")][:MAX_KEYWORDS]
    return [Candidate(f"{name} contains '{words[j]}'", "keyword", name, str(words[j]), int(df[j]), float(sums[j]))
            for j in top]


def _cluster_labels(frame, numeric: list[str], seed: int):
    """k-means cluster of every row on standardised numeric features, and a short name per cluster."""
    import numpy as np
    from sklearn.cluster import KMeans

    X = frame[numeric].apply(lambda c: c.astype("float64")).to_numpy()
    mean, sd = np.nanmean(X, axis=0), np.nanstd(X, axis=0)
    sd[~np.isfinite(sd) | (sd == 0)] = 1.0
    Z = np.nan_to_num((X - mean) / sd)
    rng = np.random.default_rng(seed)
    fit_rows = Z if len(Z) <= CLUSTER_SAMPLE else Z[rng.choice(len(Z), CLUSTER_SAMPLE, replace=False)]
    k = min(N_CLUSTERS, max(2, len(fit_rows) // (4 * MIN_SLICE_ROWS)))
    model = KMeans(n_clusters=k, n_init=1, random_state=seed, max_iter=100).fit(fit_rows)
    labels = model.predict(Z.astype(model.cluster_centers_.dtype))
    names = {}
    for c, centre in enumerate(model.cluster_centers_):
        top = np.argsort(-np.abs(centre))[:2]
        names[c] = ", ".join(f"{numeric[j]} {'high' if centre[j] > 0 else 'low'}" for j in top)
    return labels, names


def _cluster_candidates(frame, numeric: list[str], err, seed: int, cache: dict) -> list[Candidate]:
    import numpy as np

    if len(numeric) < 2 or len(frame) < 4 * MIN_SLICE_ROWS:
        return []
    labels, names = _cluster_labels(frame, numeric, seed)
    cache["clusters"] = labels
    counts = np.bincount(labels, minlength=len(names))
    sums = np.bincount(labels, weights=err, minlength=len(names))
    return [Candidate(f"cluster {c} ({names[c]})", "cluster", "+".join(numeric[:5]), c, int(counts[c]),
                      float(sums[c])) for c in names]


def slice_mask(frame, cand: Candidate, seed: int, numeric: list[str], cache: dict):
    """Rows of a candidate slice, rebuilt from its rule."""
    import numpy as np
    import pandas as pd

    col = frame[cand.column] if cand.column in frame.columns else None
    if cand.kind == "category":
        return (col == cand.rule).to_numpy() & col.notna().to_numpy()
    if cand.kind == "missing":
        values = pd.to_numeric(col, errors="coerce") if col.dtype.kind in "iufb" else col
        return ~np.isfinite(np.asarray(values, dtype=np.float64)) if col.dtype.kind in "iufb" else col.isna().to_numpy()
    if cand.kind in ("range", "length"):
        values = col.fillna("").astype(str).str.len() if cand.kind == "length" else pd.to_numeric(col, errors="coerce")
        v = np.asarray(values, dtype=np.float64)
        lo, hi, last = cand.rule
        return (v >= lo) & ((v <= hi) if last else (v < hi))
    if cand.kind == "keyword":
        key = ("tokens", cand.column)
        if key not in cache:
            cache[key] = _tokens(col)
        rows, codes, words = cache[key]
        mask = np.zeros(len(col), dtype=bool)
        if cand.rule in words:
            mask[rows[codes == words.index(cand.rule)]] = True
        return mask
    if cand.kind == "cluster":
        if "clusters" not in cache:
            cache["clusters"] = _cluster_labels(frame, numeric, seed)[0]
        return cache["clusters"] == cand.rule
    raise ValueError(cand.kind)


def column_kinds(frame, numeric: list[str], categorical: list[str], text: list[str]):
    """Low-cardinality numeric columns are also read as categories (e.g. 0/1 flags, small codes)."""
    cats = list(categorical)
    nums = []
    for c in numeric:
        if frame[c].nunique(dropna=True) <= 10:
            cats.append(c)
        else:
            nums.append(c)
    return nums, cats, list(text)


def discover_slices(frame, err, numeric: list[str], categorical: list[str], text: list[str],
                    binary: bool, seed: int = 0) -> dict:
    """Find segments whose mean error is significantly above the rest.

    frame: the rows (features), err: per-row error (0/1 or absolute). Every candidate is tested with a
    one-sided z-test of its mean error against the complement (pooled variance), Benjamini-Hochberg over
    all candidates; kept when q < FDR, size >= MIN_SLICE_ROWS and the excess is large enough to matter.
    """
    import numpy as np
    from scipy.stats import norm

    err = np.asarray(err, dtype=np.float64)
    n_rows = len(err)
    nums, cats, texts = column_kinds(frame, numeric, categorical, text)
    candidates: list[Candidate] = []
    cache: dict = {}  # tokens and cluster labels, reused when the reported slices' rows are rebuilt
    for c in cats:
        candidates += _category_candidates(c, frame[c].to_numpy(), err)[0]
    for c in nums:
        candidates += _range_candidates(c, frame[c].to_numpy(dtype=np.float64, na_value=np.nan), err)
    for c in texts:
        lengths = frame[c].fillna("").astype(str).str.len().to_numpy(dtype=np.float64)
        candidates += [cand for cand in _range_candidates(c, lengths, err, "length", f"length of {c}")
                       if cand.kind == "length"]
        candidates += _keyword_candidates(c, frame[c], err, cache)
    candidates += _cluster_candidates(frame, nums, err, seed, cache)

    mean = float(err.mean()) if n_rows else 0.0
    var = float(err.var()) if n_rows else 0.0
    tested = [c for c in candidates if MIN_SLICE_ROWS <= c.size <= MAX_SLICE_SHARE * n_rows]
    size = np.array([c.size for c in tested], dtype=float)
    sums = np.array([c.error_sum for c in tested], dtype=float)
    rest_n = n_rows - size
    slice_mean = sums / np.maximum(size, 1)
    rest_mean = (err.sum() - sums) / np.maximum(rest_n, 1)
    se = np.sqrt(var * (1 / np.maximum(size, 1) + 1 / np.maximum(rest_n, 1)))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(se > 0, (slice_mean - rest_mean) / se, 0.0)
    q = benjamini_hochberg(norm.sf(z)) if len(tested) else np.array([])
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(rest_mean > 0, slice_mean / np.maximum(rest_mean, 1e-300), np.inf)
    ratio = np.where(slice_mean > 0, ratio, 0.0)
    excess = slice_mean - mean
    min_excess = REPORT_EXCESS if binary else 0.0
    keep = (q < FDR) & (ratio >= REPORT_RATIO) & (excess >= min_excess)
    ranked = sorted(np.flatnonzero(keep), key=lambda i: -size[i] * excess[i])
    found = []
    for i in ranked:
        c = tested[i]
        found.append({"description": c.description, "kind": c.kind, "column": c.column, "rule": c.rule,
                      "size": c.size, "error": float(slice_mean[i]), "rest_error": float(rest_mean[i]),
                      "excess": float(excess[i]), "ratio": float(ratio[i]), "z": float(z[i]), "q": float(q[i]),
                      "excess_errors": float(size[i] * excess[i]),
                      "severe": bool(ratio[i] >= WARN_RATIO and excess[i] >= (WARN_EXCESS if binary else 0.0))})
    return {"rows": n_rows, "mean_error": mean, "candidates": len(candidates), "tested": len(tested),
            "slices": found, "candidate_objects": [tested[i] for i in ranked], "cache": cache}


def deduplicate_slices(frame, result: dict, numeric: list[str], seed: int) -> list[dict]:
    """Drop slices that are the same rows as a higher-ranked one (e.g. a category and a cluster)."""
    kept, masks, cache = [], [], result.get("cache", {})
    for found, cand in zip(result["slices"], result["candidate_objects"]):
        if len(kept) >= MAX_REPORTED:
            break
        mask = slice_mask(frame, cand, seed, numeric, cache)
        if any((mask & m).sum() >= OVERLAP_DUPLICATE * min(mask.sum(), m.sum()) for m in masks):
            continue
        kept.append(found)
        masks.append(mask)
    return kept


# --- the project's [[slices]] where-expressions ---------------------------------------------
# A where-expression is parsed to a Python AST and evaluated here, node by node, over the frame's
# columns; nothing is handed to DataFrame.eval/query or to Python's eval. Allowed: column names (bare,
# or `backquoted` for names with spaces), literals, comparisons (chained too, `in`/`not in` a literal
# list), & | ~, and/or/not (element-wise), arithmetic, and the calls below. Everything else (other
# attributes, dunders, subscripts, lambdas, comprehensions, other calls, `@` local names) is refused
# before any of it runs, so a refused expression has no side effect.
ALLOWED_METHODS = {  # method -> keyword arguments it may take (all arguments must be literals)
    "isin": set(), "between": {"inclusive"}, "isna": set(), "notna": set(), "isnull": set(), "notnull": set(),
}
ALLOWED_STR_METHODS = {  # .str.<method>
    "contains": {"case", "na", "regex", "flags"}, "startswith": {"na"}, "endswith": {"na"},
    "match": {"case", "na", "flags"}, "fullmatch": {"case", "na", "flags"}, "len": set(), "lower": set(),
    "upper": set(), "casefold": set(), "strip": set(), "lstrip": set(), "rstrip": set(), "count": {"flags"},
    "isalpha": set(), "isalnum": set(), "isdigit": set(), "isdecimal": set(), "isnumeric": set(),
    "isspace": set(), "islower": set(), "isupper": set(), "istitle": set(),
}
ALLOWED_FUNCTIONS = {"len"}   # len(column): the length of each value (strings: characters)
MAX_EXPRESSION_CHARS = 10_000  # a where-expression is one line of a config file; beyond this it is a mistake
MAX_POWER_EXPONENT = 64        # a ** b on numbers: a larger literal exponent only builds huge integers
MAX_LITERAL_CHARS = 100_000    # 'x' * n: a literal string longer than this is refused
MAX_INT_BITS = 4096            # literal integer arithmetic beyond this many bits is refused (never needed)
ALLOWED_SUMMARY = ("column names, literals, comparisons, & | ~, and/or/not, arithmetic, .isin(), .between(), "
                   ".isna()/.notna(), .str.<predicate>() and len()")
_BACKQUOTE_PREFIX = "_mltriage_backquoted_"


class SliceError(Exception):
    pass


class _Refused(Exception):
    """A construct the evaluator does not allow; the message names it."""


def _replace_backquotes(expression: str) -> tuple[str, dict[str, str]]:
    """`a column` -> a placeholder name, outside string literals; returns the new text and the names."""
    out, names, i, quote = [], {}, 0, None
    while i < len(expression):
        ch = expression[i]
        if quote:
            out.append(ch)
            if ch == "\\" and i + 1 < len(expression):
                out.append(expression[i + 1])
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        elif ch == "`":
            end = expression.find("`", i + 1)
            if end < 0:
                raise _Refused("an unclosed backquote (write `column name`)")
            placeholder = f"{_BACKQUOTE_PREFIX}{len(names)}"
            names[placeholder] = expression[i + 1:end]
            out.append(placeholder)
            i = end
        else:
            out.append(ch)
        i += 1
    return "".join(out), names


def _literal(node):
    """The value of a literal node (numbers, strings, True/False/None, lists/tuples/sets of those)."""
    import ast

    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool, type(None))):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _literal(node.operand)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [_literal(e) for e in node.elts]
    raise _Refused(f"{_describe(node)} as an argument (arguments must be literals: numbers, strings, lists)")


def _describe(node) -> str:
    """A short name of a construct for messages."""
    import ast

    names = {ast.Lambda: "a lambda", ast.ListComp: "a comprehension", ast.SetComp: "a comprehension",
             ast.DictComp: "a comprehension", ast.GeneratorExp: "a generator expression",
             ast.Subscript: "a subscript [...]", ast.Dict: "a dict", ast.JoinedStr: "an f-string",
             ast.NamedExpr: "an assignment (:=)", ast.IfExp: "an if-else expression", ast.Starred: "a *argument",
             ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield", ast.Slice: "a slice"}
    for kind, text in names.items():
        if isinstance(node, kind):
            return text
    if isinstance(node, ast.Attribute):
        return f"the attribute .{node.attr}"
    if isinstance(node, ast.Call):
        return "a call"
    if isinstance(node, ast.Name):
        return f"the name {node.id}"
    if isinstance(node, ast.Constant):
        return f"the literal {node.value!r}"
    if isinstance(node, ast.BinOp):
        return f"the operator {type(node.op).__name__}"
    return type(node).__name__


class _Evaluator:
    """Checks (evaluate=False) or evaluates one parsed where-expression over a frame."""

    def __init__(self, frame, backquoted: dict[str, str]):
        self.frame = frame
        self.backquoted = backquoted

    # --- the tree walk (check and evaluate share it, so what is allowed is what is evaluated) ----
    def run(self, node, evaluate: bool):
        import ast

        self.evaluate = evaluate
        if isinstance(node, ast.Expression):
            node = node.body
        return self.visit(node)

    def visit(self, node):
        import ast

        if isinstance(node, ast.Constant):
            if not isinstance(node.value, (str, int, float, bool, type(None))):
                raise _Refused(_describe(node))
            return node.value
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            return _literal(node)
        if isinstance(node, ast.Name):
            return self.column(node.id)
        if isinstance(node, ast.UnaryOp):
            value = self.visit(node.operand)
            if not self.evaluate:
                return None
            if isinstance(node.op, (ast.Invert, ast.Not)):
                return ~_as_bool(value) if _is_boolish(value) else (not value if isinstance(node.op, ast.Not) else ~value)
            return -value if isinstance(node.op, ast.USub) else +value
        if isinstance(node, ast.BoolOp):
            values = [self.visit(v) for v in node.values]
            if not self.evaluate:
                return None
            out = _as_bool(values[0])
            for v in values[1:]:
                out = (out & _as_bool(v)) if isinstance(node.op, ast.And) else (out | _as_bool(v))
            return out
        if isinstance(node, ast.BinOp):
            return self.binop(node)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Attribute):
            raise _Refused(f"the attribute .{node.attr}")
        raise _Refused(_describe(node))

    def column(self, name: str):
        if name.startswith("__"):
            raise _Refused(f"the name {name} (dunder names are never allowed)")
        column = self.backquoted.get(name, name)
        if self.frame is None:
            return None
        if column not in self.frame.columns:
            if name in ("True", "False", "None"):  # parsed as constants; kept for clarity
                return {"True": True, "False": False, "None": None}[name]
            raise SliceError(f"the expression could not be evaluated: no column {column!r} in the valid split")
        return self.frame[column] if self.evaluate else None

    def binop(self, node):
        import ast

        ops = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "truediv", ast.FloorDiv: "floordiv",
               ast.Mod: "mod", ast.Pow: "pow", ast.BitAnd: "and", ast.BitOr: "or", ast.BitXor: "xor"}
        kind = ops.get(type(node.op))
        if kind is None:
            raise _Refused(_describe(node))
        left, right = self.visit(node.left), self.visit(node.right)
        if not self.evaluate:
            return None
        _guard_size(kind, left, right)
        if kind in ("and", "or", "xor") and (_is_boolish(left) or _is_boolish(right)):
            left, right = _as_bool(left), _as_bool(right)
        import operator

        return getattr(operator, {"and": "and_", "or": "or_"}.get(kind, kind))(left, right)

    def compare(self, node):
        import ast
        import operator

        ops = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
               ast.Gt: operator.gt, ast.GtE: operator.ge}
        left = self.visit(node.left)
        result = None
        for op, right_node in zip(node.ops, node.comparators):
            if isinstance(op, (ast.In, ast.NotIn)):
                values = _literal(right_node)
                if not isinstance(values, list):
                    raise _Refused("`in` with something other than a literal list, e.g. region in ['a', 'b']")
                right = values
                if self.evaluate:
                    part = _isin(left, values)
                    part = ~part if isinstance(op, ast.NotIn) else part
            elif type(op) in ops:
                right = self.visit(right_node)
                if self.evaluate:
                    part = ops[type(op)](left, right)
            else:
                raise _Refused(f"the comparison {type(op).__name__} (use ==, !=, <, <=, >, >=, in, not in)")
            if self.evaluate:
                result = part if result is None else (_as_bool(result) & _as_bool(part))
            left = right
        return result

    def call(self, node):
        import ast

        func = node.func
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            raise _Refused("*args or **kwargs in a call")
        if isinstance(func, ast.Name):
            if func.id not in ALLOWED_FUNCTIONS:
                raise _Refused(f"a call to {func.id}() (the only function allowed is len())")
            if len(node.args) != 1 or node.keywords:
                raise _Refused("len() with other than one argument")
            value = self.visit(node.args[0])
            if not self.evaluate:
                return None
            import pandas as pd

            if isinstance(value, pd.Series):
                return value.astype("string").str.len() if value.dtype == object or \
                    pd.api.types.is_string_dtype(value) else value.map(lambda v: len(str(v)))
            return len(value)
        if not isinstance(func, ast.Attribute):
            if isinstance(func, ast.Call):
                self.visit(func)  # name what is refused inside, e.g. getattr(...)(...)
            raise _Refused(f"a call of {_describe(func)}")
        name = func.attr
        owner = func.value
        if isinstance(owner, ast.Attribute) and owner.attr == "str":
            if name not in ALLOWED_STR_METHODS:
                raise _Refused(f"the method .str.{name}() (.str methods allowed: "
                               f"{', '.join(sorted(ALLOWED_STR_METHODS))})")
            allowed_keywords, target, accessor = ALLOWED_STR_METHODS[name], owner.value, True
        elif name in ALLOWED_METHODS:
            allowed_keywords, target, accessor = ALLOWED_METHODS[name], owner, False
        else:
            raise _Refused(f"the method .{name}()")
        for keyword in node.keywords:
            if keyword.arg not in allowed_keywords:
                raise _Refused(f"the keyword argument {keyword.arg}= of .{'str.' if accessor else ''}{name}()")
        args = [_literal(a) for a in node.args]
        kwargs = {k.arg: _literal(k.value) for k in node.keywords}
        if name in ("contains", "match", "fullmatch", "count") and not all(isinstance(a, (str, int)) for a in args):
            raise _Refused(f".str.{name}() with a non-string pattern")
        value = self.visit(target)
        if not self.evaluate:
            return None
        import pandas as pd

        if not isinstance(value, pd.Series):
            raise SliceError(f"the expression could not be evaluated: .{name}() applies to a column, not to "
                             f"{type(value).__name__}")
        if accessor:
            if not (value.dtype == object or pd.api.types.is_string_dtype(value)):
                raise SliceError(f"the expression could not be evaluated: .str.{name}() needs a text column, "
                                 f"not {value.dtype}")
            return getattr(value.str, name)(*args, **kwargs)
        return getattr(value, name)(*args, **kwargs)


def _guard_size(kind: str, left, right) -> None:
    """Refuse scalar arithmetic that would build a huge number or string (the evaluator must not hang)."""
    def scalar_int(v):
        return isinstance(v, int) and not isinstance(v, bool)

    if kind == "pow" and isinstance(right, (int, float)) and not isinstance(right, bool):
        if abs(right) > MAX_POWER_EXPONENT or (scalar_int(left) and left.bit_length() * abs(right) > MAX_INT_BITS):
            raise _Refused(f"a power with exponent {right!r} (at most {MAX_POWER_EXPONENT}, results under "
                           f"{MAX_INT_BITS} bits)")
    if kind == "mul":
        for text, times in ((left, right), (right, left)):
            if isinstance(text, (str, list)) and scalar_int(times) and len(text) * abs(times) > MAX_LITERAL_CHARS:
                raise _Refused(f"a repeated literal longer than {MAX_LITERAL_CHARS} characters")
    if kind in ("mul", "add") and scalar_int(left) and scalar_int(right) and \
            max(left.bit_length(), right.bit_length()) > MAX_INT_BITS:
        raise _Refused(f"an integer of more than {MAX_INT_BITS} bits")


def _is_boolish(value) -> bool:
    import numpy as np
    import pandas as pd

    if isinstance(value, (bool, np.bool_)):
        return True
    if isinstance(value, pd.Series):
        if pd.api.types.is_bool_dtype(value):
            return True
        if value.dtype == object:
            return pd.api.types.infer_dtype(value, skipna=True) in ("boolean", "empty")
    return False


def _as_bool(value):
    """A boolean Series (missing values False) or a bool, so &, |, ~ work element-wise."""
    import numpy as np
    import pandas as pd

    if isinstance(value, pd.Series):
        if value.dtype == bool:
            return value
        if _is_boolish(value):
            return value.fillna(False).astype(bool)
        raise SliceError(f"the expression could not be evaluated: & | ~ and/or/not need True/False values, "
                         f"not {value.dtype}")
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise SliceError(f"the expression could not be evaluated: & | ~ and/or/not need True/False values, "
                     f"not {type(value).__name__}")


def _isin(value, values: list):
    import pandas as pd

    if isinstance(value, pd.Series):
        return value.isin(values)
    return value in values


def check_where(expression: str, name: str | None = None) -> None:
    """Raise SliceError when the expression uses a construct that is not allowed (no data needed)."""
    tree, backquoted = _parse(expression, name)
    checker = _Evaluator(None, backquoted)
    try:
        checker.run(tree, evaluate=False)
    except _Refused as exc:
        where = f"[[slices]] '{name}': " if name else ""
        raise SliceError(f"{where}forbidden construct: {exc}. A where-expression may use {ALLOWED_SUMMARY}") from None


def _parse(expression: str, name: str | None):
    import ast

    where = f"[[slices]] '{name}': " if name else ""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise SliceError(f"{where}the expression is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        text, backquoted = _replace_backquotes(expression)
        if "@" in _operators(text):
            raise _Refused("@ (local variables and the matrix operator are not available)")
        tree = ast.parse(text.strip(), mode="eval")
    except _Refused as exc:
        raise SliceError(f"{where}forbidden construct: {exc}. A where-expression may use {ALLOWED_SUMMARY}") from None
    except SyntaxError as exc:
        raise SliceError(f"{where}the expression could not be evaluated: invalid syntax "
                         f"({exc.msg} at column {exc.offset})") from None
    except (RecursionError, MemoryError, ValueError):
        raise SliceError(f"{where}the expression could not be evaluated: it is too deeply nested") from None
    return tree, backquoted


def _operators(text: str) -> set[str]:
    """The operator tokens of an expression (an '@' inside a string literal is just a character)."""
    import io
    import tokenize

    try:
        return {t.string for t in tokenize.generate_tokens(io.StringIO(text).readline) if t.type == tokenize.OP}
    except (tokenize.TokenError, SyntaxError):
        return {"@"} if "@" in text else set()


def evaluate_where(frame, expression: str, name: str | None = None):
    """Boolean row mask of a [[slices]] where-expression over the valid split's columns.

    The whole expression is checked before anything runs; a refused construct raises SliceError with
    "forbidden construct" and its name (and the slice's `name` when given)."""
    import numpy as np
    import pandas as pd

    where = f"[[slices]] '{name}': " if name else ""
    tree, backquoted = _parse(expression, name)
    evaluator = _Evaluator(frame, backquoted)
    try:
        evaluator.run(tree, evaluate=False)
    except _Refused as exc:
        raise SliceError(f"{where}forbidden construct: {exc}. A where-expression may use {ALLOWED_SUMMARY}") from None
    except RecursionError:
        raise SliceError(f"{where}the expression could not be evaluated: it is too deeply nested") from None
    except SliceError as exc:
        raise SliceError(f"{where}{exc}") from None
    try:
        with np.errstate(all="ignore"):
            result = evaluator.run(tree, evaluate=True)
    except _Refused as exc:
        raise SliceError(f"{where}forbidden construct: {exc}. A where-expression may use {ALLOWED_SUMMARY}") from None
    except SliceError as exc:
        raise SliceError(f"{where}{exc}") from None
    except RecursionError:
        raise SliceError(f"{where}the expression could not be evaluated: it is too deeply nested") from None
    except Exception as exc:  # pandas raises many types for a bad expression; the message is what matters
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SliceError(f"{where}the expression could not be evaluated: {type(exc).__name__}: {message}") from None
    if isinstance(result, (bool, np.bool_)):
        raise SliceError(f"{where}the expression gives a single True/False, not one value per row")
    if not isinstance(result, pd.Series):
        raise SliceError(f"{where}the expression gives {type(result).__name__} values, not True/False per row")
    series = result
    if len(series) != len(frame):
        raise SliceError(f"{where}the expression gives {len(series)} values for {len(frame)} rows")
    if not (pd.api.types.is_bool_dtype(series) or series.isna().any() and
            pd.api.types.is_bool_dtype(series.dropna())):
        if not (series.dtype == object and _is_boolish(series)):
            raise SliceError(f"{where}the expression gives {series.dtype} values, not True/False per row")
    return series.astype(object).where(series.notna(), False).to_numpy(dtype=bool)
