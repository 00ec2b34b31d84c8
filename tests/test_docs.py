"""The README, docs/ and the folders' READMEs: every relative link and image resolves to a
file inside the repository (and a `#fragment` to a heading of that page); the README's first
code block is the set-up a newcomer runs; `weft quality`'s default page holds its markers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from weft.quality.table import BEGIN, END

ROOT = Path(__file__).resolve().parent.parent
PAGES = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").rglob("*.md")),
    *sorted(p for p in ROOT.glob("*/README.md") if not p.parent.name.startswith(".")),
]
FENCE = re.compile(r"^(```|~~~)")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
CODE_SPAN = re.compile(r"`[^`]*`")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _prose(text: str) -> list[str]:
    """The page's lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def links(text: str) -> list[str]:
    """Link and image targets outside code (link texts may hold code spans)."""
    found = []
    for line in _prose(text):
        found += LINK.findall(CODE_SPAN.sub("code", line))
    return found


def anchors(text: str) -> set[str]:
    """The ids GitHub gives the page's headings: lower case, punctuation dropped, spaces
    to hyphens, `-1`, `-2`, ... after repeats."""
    seen: dict[str, int] = {}
    ids = set()
    for line in _prose(text):
        match = HEADING.match(line)
        if not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(2).lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        ids.add(slug if count == 0 else f"{slug}-{count}")
    return ids


def test_links_parse_code_spans_and_skip_code_blocks() -> None:
    text = "see [`a.md`](a.md#x) and ![img](p/i.png)\n```\n[no](b.md)\n```\n`[no](c.md)`\n"
    assert links(text) == ["a.md#x", "p/i.png"]
    assert anchors("# Serving on Ray Serve (`weft/serve`)\n## A\n## A\n") == {
        "serving-on-ray-serve-weftserve",
        "a",
        "a-1",
    }


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve_inside_the_repository(page: Path) -> None:
    text = page.read_text()
    broken = []
    for target in links(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path, _, fragment = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.is_relative_to(ROOT) or "shared" in Path(path).parts:
            broken.append(f"{target}: outside the repository")
        elif not resolved.exists():
            broken.append(f"{target}: no such file")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(
            resolved.read_text()
        ):
            broken.append(f"{target}: no such heading")
    assert not broken, f"{page.relative_to(ROOT)}: {broken}"


def test_readme_starts_with_the_setup() -> None:
    """A newcomer's first code block: the two commands that set up, demo and test."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if FENCE.match(line))
    end = next(i for i in range(start + 1, len(lines)) if FENCE.match(lines[i]))
    assert lines[start : end + 1] == ["```bash", "make demo", "make test", "```"]


def test_quality_tables_have_their_markers_in_docs() -> None:
    """`weft quality --readme` defaults to docs/quality.md: one block to replace there."""
    text = (ROOT / "docs" / "quality.md").read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    assert text.index(BEGIN) < text.index(END)
