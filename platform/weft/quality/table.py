"""The quality table: each figure with its bar and whether it is met, as rows and as markdown."""

from __future__ import annotations

from weft.quality.figures import Figure

COLUMNS = ("model", "measure", "on", "figure", "chance", "n", "bar", "met")


def _shown(value: float, percent: bool) -> str:
    return f"{value:.1%}" if percent else f"{value:.3g}"


def table_rows(figures: list[Figure]) -> list[tuple[str, ...]]:
    """One row of `COLUMNS` per figure (chance: what ranking at random scores); a figure on
    the wrong side of its bar says NOT MET."""
    rows: list[tuple[str, ...]] = []
    for f in figures:
        bar = "" if f.bar is None else f"{'<' if f.below else '>'} {_shown(f.bar, f.percent)}"
        met = "" if f.met is None else ("yes" if f.met else "NOT MET")
        chance = "" if f.chance is None else _shown(f.chance, f.percent)
        value = _shown(f.value, f.percent)
        rows.append((f.model, f.measure, f.on, value, chance, str(f.count), bar, met))
    return rows


def markdown(figures: list[Figure], title: str, tried: dict[str, str] | None = None) -> str:
    """The figures as a markdown table under a heading; under it, for each model that misses
    a bar, what was `tried`."""
    rule = "|---|---|---|---:|---:|---:|---|---|"
    lines = [f"## {title}", "", f"| {' | '.join(COLUMNS)} |", rule]
    lines += [f"| {' | '.join(row)} |" for row in table_rows(figures)]
    tried = tried or {}
    missed = dict.fromkeys(f.model for f in figures if f.met is False)
    notes = [f"- **{m}** misses a bar. Tried: {tried[m]}" for m in missed if m in tried]
    lines += ["", *notes] if notes else []
    return "\n".join(lines) + "\n"


BEGIN, END = "<!-- weft quality: begin -->", "<!-- weft quality: end -->"


def replace_block(document: str, block: str) -> str:
    """`document` with the text between its quality markers replaced by `block`."""
    start, end = document.find(BEGIN), document.find(END)
    if start < 0 or end < start:
        raise ValueError(f"no {BEGIN} ... {END} block")
    return document[: start + len(BEGIN)] + "\n" + block + document[end:]
