"""Input examples in evidence (sanity.input_batch: images as PNG, token ids, decoded text): what is shown,
and its HTML. The app's widget (tui/widgets/input_examples.py) draws the same evidence in the terminal."""

from __future__ import annotations

import re

from ..wording import printable

# sanity.input_batch's evidence (and any check's `examples` holding one of these) is drawn as pictures/text.
INPUT_EXAMPLE_FIELDS = ("png", "text", "ids")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
PNG_MAX_CHARS = 64_000  # a 64x64 RGB PNG is at most ~16 KB raw, ~22 KB as base64; far larger is not a thumbnail


def shows_input_examples(check: str, evidence) -> bool:
    """Whether a finding's evidence is an input batch to draw (images, tokens), not only key: value lines."""
    if not isinstance(evidence, dict):
        return False
    examples = evidence.get("examples")
    drawable = isinstance(examples, list) and any(
        isinstance(e, dict) and any(e.get(k) is not None for k in INPUT_EXAMPLE_FIELDS) for e in examples)
    return check == "sanity.input_batch" or drawable


def _number(value) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "?"


def input_table_rows(evidence: dict) -> list[tuple[str, str, str, str, str]]:
    """(name, shape, dtype, range, mean ± std) per input tensor; the caller escapes them for its medium."""
    rows = []
    for item in evidence.get("inputs") or []:
        if not isinstance(item, dict):
            continue
        shape = item.get("shape")
        shape_text = "×".join(str(d) for d in shape) if isinstance(shape, list) else "?"
        rows.append((str(item.get("name", "?")), shape_text, str(item.get("dtype", "?")),
                     f"{_number(item.get('min'))} … {_number(item.get('max'))}",
                     f"{_number(item.get('mean'))} ± {_number(item.get('std'))}"))
    return rows


def padding_run(ids) -> int:
    """How many trailing ids repeat the last id (2 or more: padding to the batch's length), else 0."""
    if not isinstance(ids, list) or len(ids) < 2:
        return 0
    run = 1
    while run < len(ids) and ids[-run - 1] == ids[-1]:
        run += 1
    return run if run >= 2 else 0


def png_base64(value) -> str | None:
    """`value` if it is plausible base64 PNG data (safe to put in a data: URL), else None."""
    import base64
    import binascii

    if not isinstance(value, str) or not 0 < len(value) <= PNG_MAX_CHARS or not _BASE64.fullmatch(value):
        return None
    try:
        head = base64.b64decode(value[:12], validate=True)
    except (binascii.Error, ValueError):
        return None
    return value if head.startswith(b"\x89PNG") else None


def _html_example(example) -> str:
    import html

    if not isinstance(example, dict):
        return "<li class='miss'>an example that is not an object</li>"
    label = html.escape(printable(str(example.get("label"))))
    pred = example.get("prediction")
    pred_text = html.escape(printable(str(pred)))
    caption = f"label {label}" + (f"<br><span class='{'right' if pred_text == label else 'wrong'}'>pred {pred_text}"
                                  "</span>" if pred is not None else "")
    if example.get("png") is not None:
        data = png_base64(example["png"])
        if data is None:
            return (f"<figure class='example'><span class='miss'>image not readable</span>"
                    f"<figcaption>{caption}</figcaption></figure>")
        return (f"<figure class='example'><img src=\"data:image/png;base64,{data}\" alt=\"label {label}\">"
                f"<figcaption>{caption}</figcaption></figure>")
    if isinstance(example.get("text"), str):
        body = html.escape(printable(example["text"]))
    elif isinstance(example.get("ids"), list):
        ids = [html.escape(str(i)) for i in example["ids"]]
        pad = padding_run(example["ids"])
        body = " ".join(ids[:len(ids) - pad]) + (f" <span class='pad'>{' '.join(ids[len(ids) - pad:])}</span>"
                                                  if pad else "")
    else:
        body = "<span class='miss'>no image, text or ids</span>"
    return f"<li>{caption.replace('<br>', ' · ')}: <code>{body}</code></li>"


def html_input_examples(check: str, title: str, evidence: dict) -> str:
    """The inputs table, then the examples: images as inline PNGs with captions, token rows as text."""
    import html

    rows = "".join("<tr>" + "".join(f"<td>{html.escape(printable(c))}</td>" for c in row) + "</tr>"
                   for row in input_table_rows(evidence))
    parts = [f"<div class='input-batch'><h4><code>{html.escape(check)}</code>: {html.escape(title)}</h4>"]
    target = evidence.get("target") if isinstance(evidence.get("target"), dict) else {}
    facts = [str(evidence[k]) + suffix for k, suffix in (("modality", ""), ("batch_size", " per batch"))
             if evidence.get(k) is not None]
    if target:
        facts.append(f"target shape {target.get('shape')}, {target.get('dtype')}")
    if facts:
        parts.append(f"<p>{html.escape(printable(' · '.join(facts)))}</p>")
    if rows:
        parts.append("<table><tr><th>input</th><th>shape</th><th>dtype</th><th>range</th><th>mean ± std</th>"
                     f"</tr>{rows}</table>")
    examples = evidence.get("examples") if isinstance(evidence.get("examples"), list) else []
    is_picture = [isinstance(e, dict) and e.get("png") is not None for e in examples]
    parts.extend(_html_example(e) for e, pic in zip(examples, is_picture) if pic)
    if not all(is_picture):
        parts.append("<ol class='tokens'>" + "".join(_html_example(e) for e, pic in zip(examples, is_picture)
                                                     if not pic) + "</ol>")
    parts.append("</div>")
    return "".join(parts)
