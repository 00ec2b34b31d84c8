"""`weft data`: the corpora that install offline (weft.data), written for `weft curate`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from weft.cli.common import console, user_errors

data_app = typer.Typer(help="Corpora that install offline, written for `weft curate`.")


@data_app.command("emoji")
def data_emoji(
    out: Annotated[str, typer.Argument(help="Local folder or s3://bucket/prefix.")],
    languages: Annotated[
        str | None,
        typer.Option(
            help="CLDR locales, comma-separated, whose names and keywords each record carries "
            "(default: en, de, fr, es, it, pt, nl, sv, pl, ru, tr, ar, hi, ja, ko, zh)."
        ),
    ] = None,
    per_emoji: Annotated[
        int, typer.Option(help="Records per emoji: English and this many minus one others.")
    ] = 4,
    size: Annotated[int, typer.Option(help="Image side in pixels.")] = 64,
) -> None:
    """Noto Color Emoji with CLDR's names and keywords in many languages, as WebDataset
    shards per split (train, val, test, and subgroups held out whole for zero-shot), the
    variants of an emoji (skin tones, genders) always in one split."""
    from weft.data.emoji import LANGUAGES, write_corpus

    with user_errors():
        given = languages.split(",") if languages else LANGUAGES
        wanted = [code.strip() for code in given if code.strip()]
        manifest = write_corpus(out, wanted, per_emoji=per_emoji, size=size)
    table = Table(title=f"emoji corpus → {out}")
    for column in ("split", "emoji", "records"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for split, count in manifest.records.items():
        table.add_row(split, str(manifest.emoji[split]), str(count))
    console.print(table)
    console.print(
        f"languages: {', '.join(manifest.languages)}; held-out subgroups: "
        f"{', '.join(manifest.held_out)}; skipped: {manifest.skipped or 'none'}",
        highlight=False,
    )
