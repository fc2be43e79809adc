"""data.token_ids (DESIGN §6): token ids against the model's embedding tables, padding, truncation, and
whether the model's outputs change when only pads are added (padding not masked)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...analyses.tensor_stats import np

from ...engine.context import RunContext
from ...engine.registry import check
from ...findings import Finding, SkipCheck, fail, passed, warn
from ...project.usercode import UserCodeError
from ...analyses.image_quality import sample_indices
from ...analyses.tensor_stats import named_arrays
from ._common import stack_rows
from .tensors import _scans

# --- token ids -----------------------------------------------------------------------------------------
# Padding above half of all positions means most of the model's compute goes to pads (sort or bucket
# sequences by length, as torchtext's BucketIterator and Hugging Face's group_by_length do).
PAD_WARN_FRACTION = 0.5
# A length cap is usually set to cover the large majority of sequences (e.g. the 95th percentile of
# lengths); when more than 10% sit exactly at the longest length, the cap cut them, and whatever came
# after the cut (often the end of a review, where the verdict is) never reaches the model.
TRUNCATION_WARN_SHARE = 0.10
# Outputs that change by more than this share of their largest magnitude when only pads are added are
# not float noise: float32 sums of a few thousand terms differ by ~1e-6 relative at most.
PAD_INVARIANCE_TOLERANCE = 1e-4
TOKEN_SAMPLE = 4096          # items read through the collate for padding and length statistics
INVARIANCE_ROWS = 4          # real sequences padded further in the invariance test


@dataclass
class TokenMeasure:
    ids_input: str
    id_range: dict[str, tuple[int, int]]           # split -> (min, max) over every item
    tables: list = field(default_factory=list)     # EmbeddingTable of the model
    table: object = None                            # the one that reads the ids
    pad_id: int | None = None
    pad_source: str = ""
    tokens: object = None                           # TokenStats of a sample of train batches
    sample: int = 0
    invariance: dict | None = None                  # {"max_delta", "scale", "rows", "added_pads"}
    skipped: dict[str, str] = field(default_factory=dict)   # sub-test -> why it did not run
    item_length_p95: int = 0                        # of the items before the collate (a sample)

    @property
    def min_id(self) -> int:
        return min(lo for lo, _ in self.id_range.values())

    @property
    def max_id(self) -> int:
        return max(hi for _, hi in self.id_range.values())


def _ids_input_name(x) -> str:
    from ...analyses.tensor_stats import token_ids_of

    ids = token_ids_of(x)
    for name, t in named_arrays(x):
        if t is ids:
            return name
    raise SkipCheck("no integer token-id tensor in the items (a 1-D integer tensor, or a dict with input_ids)")


def _identify_table(ctx: RunContext, model, xb, tables):
    """The Embedding that reads the token ids: run the model on a batch whose ids are clamped into every
    table's range and see which table receives exactly those ids; the largest table when none does."""
    import torch

    from ...analyses.modeling import call_model
    from ...analyses.tensor_stats import largest_table, token_ids_of
    from ...engine.inputs import replace_inputs

    ids = token_ids_of(xb)
    safe = ids.clamp(0, min(t.num_embeddings for t in tables) - 1)
    seen, hooks = {}, []
    modules = dict(model.named_modules())
    for t in tables:
        hooks.append(modules["" if t.name == "(model)" else t.name].register_forward_pre_hook(
            lambda mod, args, name=t.name: seen.setdefault(name, args[0] if args else None)))
    was = model.training
    try:
        model.eval()
        with torch.no_grad():
            call_model(model, replace_inputs(xb, lambda v: safe if v is ids else v))
    except Exception:  # noqa: BLE001 - the model cannot run here; the range test still has the fallback
        pass
    finally:
        model.train(was)
        for h in hooks:
            h.remove()
    for t in tables:
        got = seen.get(t.name)
        if isinstance(got, torch.Tensor) and got.shape == safe.shape and torch.equal(got, safe):
            return t
    return largest_table(tables)


def _short_and_long(s, indices):
    from ...analyses.tensor_stats import sequence_length

    lengths = {int(i): sequence_length(s.item(int(i))[0]) for i in indices}
    order = sorted(lengths, key=lambda i: lengths[i])
    return order, lengths


def _find_pad(ctx: RunContext, s, m: TokenMeasure, order, lengths) -> None:
    from ...analyses.tensor_stats import infer_pad_id

    if lengths[order[0]] < lengths[order[-1]]:
        m.pad_id = infer_pad_id(lambda items: s.collate_items(items), s.item(order[0]), s.item(order[-1]))
        m.pad_source = "collate" if m.pad_id is not None else ""
    if m.pad_id is None and m.table is not None and m.table.padding_idx is not None:
        m.pad_id, m.pad_source = int(m.table.padding_idx), f"{m.table.name}.padding_idx"


def _token_statistics(ctx: RunContext, s, m: TokenMeasure) -> None:
    from ...analyses.tensor_stats import TokenStats, attention_mask_of, token_ids_of

    idx = np.random.default_rng(ctx.seed).permutation(sample_indices(len(s), TOKEN_SAMPLE, ctx.seed))
    m.tokens, m.sample = TokenStats(), len(idx)
    for xb, _ in s.loader(indices=idx, batch_size=ctx.config.batch_size or 64):
        ids, mask = token_ids_of(xb), attention_mask_of(xb)
        if ids is None or ids.dim() < 2:
            break   # ids concatenated with offsets (EmbeddingBag) or packed: no padding; lengths per item
        if mask is not None and not m.pad_source:
            m.pad_source = "attention_mask"
        m.tokens.update(ids, m.pad_id, mask)
    else:
        return
    m.tokens = TokenStats()
    for _, x, _ in s.iter_items(idx):
        m.tokens.update(token_ids_of(x).reshape(1, -1))


def _padding_invariance(ctx: RunContext, model, split: str, m: TokenMeasure) -> None:
    import torch

    from ...analyses.modeling import call_model

    s = ctx.tensor_split(split)
    order, lengths = _short_and_long(s, sample_indices(len(s), 256, ctx.seed))
    longest = order[-1]
    shorts = [i for i in order if lengths[i] < lengths[longest]][:INVARIANCE_ROWS]
    if not shorts:
        m.skipped["padding_invariance"] = f"every sampled {split} sequence has the same length"
        return
    xa, _ = s.collate_items([s.item(i) for i in shorts])
    xb, _ = s.collate_items([s.item(i) for i in shorts + [longest]])
    was = model.training
    try:
        model.eval()
        with torch.no_grad():
            out_a, out_b = call_model(model, xa).float(), call_model(model, xb)[:len(shorts)].float()
    finally:
        model.train(was)
    common = tuple(min(a, b) for a, b in zip(out_a.shape, out_b.shape))
    if out_a.dim() != out_b.dim():
        m.skipped["padding_invariance"] = f"output shapes {tuple(out_a.shape)} and {tuple(out_b.shape)} differ in rank"
        return
    crop = tuple(slice(0, n) for n in common)
    delta = float((out_a[crop] - out_b[crop]).abs().max())
    m.invariance = {"max_delta": delta, "scale": float(out_a.abs().max()), "rows": len(shorts), "split": split,
                    "added_pads": int(lengths[longest] - max(lengths[i] for i in shorts))}


def _invariance_split(m: TokenMeasure) -> str | None:
    """valid, else train: the first split whose ids all fit the embedding (the forward pass runs)."""
    limit = m.table.num_embeddings if m.table is not None else None
    for split in ("valid", "train"):
        lo, hi = m.id_range.get(split, (-1, 0))
        if lo >= 0 and (limit is None or hi < limit):
            return split
    return None


def measure_tokens(ctx: RunContext) -> TokenMeasure:
    from ...analyses.tensor_stats import embedding_tables

    s = ctx.tensor_split("train")
    name = _ids_input_name(s.item(0)[0])
    scans = _scans(ctx)
    m = TokenMeasure(ids_input=name, id_range={n: sc.stats.int_range[name] for n, sc in scans.items()
                                               if name in sc.stats.int_range})
    model = ctx.first_model() if ctx.has_model else None
    m.tables = embedding_tables(model)
    if m.tables:
        xb, _ = s.collate_items([s.item(i) for i in range(min(4, len(s)))])
        m.table = _identify_table(ctx, model, xb, m.tables)
    else:
        m.skipped["id_range"] = "no model" if model is None else "the model has no nn.Embedding / nn.EmbeddingBag"
    order, lengths = _short_and_long(s, sample_indices(len(s), 256, ctx.seed))
    m.item_length_p95 = int(np.percentile(list(lengths.values()), 95))
    _find_pad(ctx, s, m, order, lengths)
    _token_statistics(ctx, s, m)
    if model is None:
        m.skipped["padding_invariance"] = "no model ([model] build)"
    elif m.pad_source != "collate":
        m.skipped["padding_invariance"] = "no padding collate: items are not padded against each other"
    elif _invariance_split(m) is None:
        m.skipped["padding_invariance"] = "token ids out of the embedding's range: the forward pass would fail"
    else:
        try:
            _padding_invariance(ctx, model, _invariance_split(m), m)
        except UserCodeError as exc:   # a broken forward is sanity.forward_pass's finding, not this one's
            m.skipped["padding_invariance"] = f"the model's forward failed ({str(exc).splitlines()[0][:120]})"
    return m


def _range_issue(m: TokenMeasure) -> Finding | None:
    if m.min_id < 0:
        return fail(f"negative token ids (down to {m.min_id}) in {m.ids_input}",
                    detail=f"Id ranges per split: {m.id_range}. nn.Embedding raises on negative indices (on a GPU: "
                           f"a device-side assert that names no line).",
                    fix="Map unknown tokens to an <unk> id and pad with a valid id (0 is usual).")
    t = m.table
    if t is not None and m.max_id >= t.num_embeddings:
        return fail(f"token ids reach {m.max_id} but {t.name} has {t.num_embeddings} rows",
                    detail=f"Id ranges per split: {m.id_range}. Every id must be below num_embeddings "
                           f"({t.num_embeddings}); on CPU the forward raises IndexError, on a GPU it is a "
                           f"device-side assert that names no line.",
                    fix=f"Build {t.kind}(num_embeddings=len(vocab), ...) from the vocabulary the Dataset uses "
                        f"(including pad and unknown ids), or cap the vocabulary when encoding.")
    return None


def token_verdict(m: TokenMeasure) -> Finding:
    st = m.tokens
    evidence = {"ids_input": m.ids_input, "id_range": m.id_range, "embedding_tables": [vars(t) for t in m.tables],
                "token_table": vars(m.table) if m.table is not None else None, "pad_id": m.pad_id,
                "pad_source": m.pad_source, "sampled_items": m.sample, "pad_fraction": round(st.pad_fraction, 4),
                "max_length": st.max_length, "share_at_max_length": round(st.at_max_share, 4),
                "length_p95": st.length_percentile(95), "item_length_p95": m.item_length_p95,
                "padding_invariance": m.invariance, "not_run": m.skipped}
    broken = _range_issue(m)
    notes, worries = [], []
    if m.invariance is not None:
        inv = m.invariance
        if inv["max_delta"] > PAD_INVARIANCE_TOLERANCE * max(inv["scale"], 1e-12):
            worries.append(("padding is not masked: adding pads changes the model's output",
                            f"{inv['rows']} {inv['split']} sequences padded with {inv['added_pads']} more pad tokens "
                            f"(id {m.pad_id}) change the fresh model's eval output by up to {inv['max_delta']:.3g} "
                            f"(largest output {inv['scale']:.3g}; tolerance {PAD_INVARIANCE_TOLERANCE:g} of it). "
                            f"Predictions then depend on which sequences share a batch.",
                            "Give nn.Embedding padding_idx and average over real tokens only (mask), pack sequences "
                            "(pack_padded_sequence) before an RNN, or use EmbeddingBag with offsets."))
        else:
            notes.append(f"adding {inv['added_pads']} pads leaves the output unchanged (max change {inv['max_delta']:.2g})")
    if st.pad_fraction > PAD_WARN_FRACTION:
        worries.append((f"{st.pad_fraction:.0%} of all positions are padding",
                        f"Over {m.sample:,} train items in batches of the training size, {st.pad_fraction:.0%} of "
                        f"positions are pad (id {m.pad_id}, from {m.pad_source}): most compute goes to pads "
                        f"(threshold {PAD_WARN_FRACTION:.0%}).",
                        "Bucket or sort sequences by length before batching, or lower the maximum length."))
    if st.varying_lengths and st.at_max_share > TRUNCATION_WARN_SHARE:
        worries.append((f"{st.at_max_share:.0%} of sequences are exactly {st.max_length} tokens: truncated",
                        f"{st.at_max_share:.0%} of {st.sequences:,} sampled sequences have the maximum length "
                        f"{st.max_length} (threshold {TRUNCATION_WARN_SHARE:.0%}; 95th percentile of lengths "
                        f"{st.length_percentile(95)}). A cap should cover most sequences whole; the part cut off "
                        f"never reaches the model."
                        + (f" The items themselves are longer (95th percentile {m.item_length_p95} tokens before "
                           f"the collate): the collate cuts them." if m.item_length_p95 > st.max_length else ""),
                        "Raise the maximum length, or keep the part of the text that carries the label "
                        "(e.g. head and tail)."))
    elif not st.varying_lengths and st.sequences:
        notes.append(f"every sequence has {st.max_length} tokens (fixed windows: truncation cannot be judged)")
    detail_tail = "; ".join(notes + [f"{k} not run: {v}" for k, v in m.skipped.items()])
    more = "".join(f" Also: {w[0]}. {w[1]}" for w in worries) + (f" ({detail_tail})" if detail_tail else "")
    if broken is not None:
        broken.detail, broken.evidence = broken.detail + more, evidence
        broken.fix += "".join(f" Then: {w[2]}" for w in worries)
        return broken
    if worries:
        title, detail, fix = worries[0]
        more = "".join(f" Also: {w[0]}. {w[1]}" for w in worries[1:]) + (f" ({detail_tail})" if detail_tail else "")
        return warn(title, detail=detail + more, fix=fix + "".join(f" Also: {w[2]}" for w in worries[1:]),
                    evidence=evidence)
    table = f" (< {m.table.num_embeddings} rows of {m.table.name})" if m.table is not None else ""
    return passed(f"token ids 0..{m.max_id}{table}; {st.pad_fraction:.0%} padding",
                  detail=detail_tail, evidence=evidence)


def out_of_range_rows(ctx: RunContext, m: TokenMeasure):
    """Items whose token ids fall outside the embedding (negative, or not below num_embeddings), with their
    smallest and largest id; None when every id fits."""
    limit = m.table.num_embeddings if m.table is not None else None
    parts = []
    for split, sc in _scans(ctx).items():
        chunks = sc.int_ranges.get(m.ids_input, [])
        if not chunks:
            continue
        items, lo, hi = (np.concatenate([c[k] for c in chunks]) for k in range(3))
        bad = (lo < 0) | ((hi >= limit) if limit is not None else False)
        parts.append({"position": items[bad].tolist(), "split": [split] * int(bad.sum()), "label": [
            sc.labels[i] for i in items[bad]], "min_id": lo[bad].tolist(), "max_id": hi[bad].tolist(),
            "num_embeddings": [limit] * int(bad.sum()), "is_out_of_range": [True] * int(bad.sum())})
    return stack_rows(parts)


@check("data.token_ids", title="Token ids, padding and truncation", needs=("tokens",), tensor=True)
def token_ids(ctx: RunContext):
    m = measure_tokens(ctx)
    finding = token_verdict(m)
    if _range_issue(m) is not None:
        finding.rows = out_of_range_rows(ctx, m)
    return finding
