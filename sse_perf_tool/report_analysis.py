"""A model's answer (analysis.md) in the report: untrusted text, so never HTML. It is cut into
blocks the template renders escaped: headings (`#` lines), paragraphs, bulleted and numbered
lists, and fenced code; every other mark (bold, links, inline HTML) stays as the text it is.
Imports nothing of sse-perf.
"""

from __future__ import annotations

import re

_BULLET = re.compile(r"^\s*[-*+]\s+(.*)$")
_NUMBER = re.compile(r"^\s*\d+[.)]\s+(.*)$")
_HEADING = re.compile(r"^#{1,6}\s+(.*)$")
MAX_CHARS = 40_000  # an answer longer than this is shown up to here, with a note


def analysis_blocks(text: str) -> list[dict]:
    """[{kind: h | p | ul | ol | pre, text | items}] of the answer, in order."""
    blocks: list[dict] = []
    paragraph: list[str] = []
    items: list[str] = []
    kind = None
    lines = text[:MAX_CHARS].split("\n")

    def flush() -> None:
        nonlocal paragraph, items, kind
        if paragraph:
            blocks.append({"kind": "p", "text": " ".join(line.strip() for line in paragraph)})
        if items:
            blocks.append({"kind": kind, "items": items})
        paragraph, items, kind = [], [], None

    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip().startswith("```"):
            flush()
            code = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                code.append(lines[i])
                i += 1
            blocks.append({"kind": "pre", "text": "\n".join(code)})
            i += 1
            continue
        heading, bullet, number = _HEADING.match(line), _BULLET.match(line), _NUMBER.match(line)
        if not line.strip():
            flush()
        elif heading:
            flush()
            blocks.append({"kind": "h", "text": heading.group(1).strip()})
        elif bullet or number:
            wanted = "ul" if bullet else "ol"
            if paragraph or (kind is not None and kind != wanted):
                flush()
            kind = wanted
            items.append((bullet or number).group(1).strip())
        elif items:  # a list item's continued line
            items[-1] += " " + line.strip()
        else:
            paragraph.append(line)
        i += 1
    flush()
    if len(text) > MAX_CHARS:
        blocks.append({"kind": "p", "text": f"(cut at {MAX_CHARS:,} of {len(text):,} characters)"})
    return blocks
