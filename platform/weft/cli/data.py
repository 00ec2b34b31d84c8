"""`weft data`: the corpora that install offline (weft.data), written for `weft curate`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from weft.cli.common import console, user_errors

if TYPE_CHECKING:
    from weft.data.corpus import Manifest

data_app = typer.Typer(help="Corpora that install offline, written for `weft curate`.")

Out = Annotated[str, typer.Argument(help="Local folder or s3://bucket/prefix.")]
Size = Annotated[int, typer.Option(help="Image side in pixels.")]
Languages = Annotated[
    str | None,
    typer.Option(
        help="CLDR locales, comma-separated, whose names and keywords the records carry "
        "(default: en, de, fr, es, it, pt, nl, sv, pl, ru, tr, ar, hi, ja, ko, zh)."
    ),
]


def _languages(given: str | None) -> list[str]:
    from weft.data.emoji import LANGUAGES

    return [code.strip() for code in (given.split(",") if given else LANGUAGES) if code.strip()]


def _show(manifest: Manifest, out: str) -> None:
    table = Table(title=f"{manifest.source} corpus → {out}")
    for column in ("split", "images", "records"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for split, count in manifest.records.items():
        table.add_row(split, str(manifest.items[split]), str(count))
    console.print(table)
    about = "; ".join(
        f"{name.replace('_', '-')}: {', '.join(value) if isinstance(value, list) else value}"
        for name, value in manifest.about.items()
    )
    console.print(f"{about}; skipped: {manifest.skipped or 'none'}", highlight=False)


@data_app.command("emoji")
def data_emoji(
    out: Out,
    languages: Languages = None,
    per_emoji: Annotated[
        int, typer.Option(help="Records per emoji: English and this many minus one others.")
    ] = 4,
    size: Size = 64,
) -> None:
    """Noto Color Emoji with CLDR's names and keywords in many languages, as WebDataset
    shards per split (train, val, test, and subgroups held out whole for zero-shot), the
    variants of an emoji (skin tones, genders) always in one split."""
    from weft.data.emoji import write_corpus

    with user_errors():
        manifest = write_corpus(out, _languages(languages), per_emoji=per_emoji, size=size)
    _show(manifest, out)


@data_app.command("openclipart")
def data_openclipart(out: Out, size: Size = 64) -> None:
    """Openclipart's public-domain drawings with the title, keywords and description their
    authors wrote (cleaned of collection names, authors' names and tagging noise), as
    WebDataset shards per split, subject folders held out whole for zero-shot."""
    from weft.data.openclipart import write_corpus

    with user_errors():
        manifest = write_corpus(out, size=size)
    _show(manifest, out)


@data_app.command("symbola")
def data_symbola(
    out: Out,
    languages: Languages = None,
    per_symbol: Annotated[
        int,
        typer.Option(help="Records per symbol: English and up to this many minus one others."),
    ] = 2,
    size: Size = 64,
) -> None:
    """Symbola's monochrome symbols and emoji, named by Unicode and CLDR, as WebDataset
    shards per split; an emoji takes the emoji corpus's split and held-out subgroups."""
    from weft.data.symbola import write_corpus

    with user_errors():
        manifest = write_corpus(out, _languages(languages), per_symbol=per_symbol, size=size)
    _show(manifest, out)


@data_app.command("inspection")
def data_inspection(
    out: Annotated[str, typer.Argument(help="Folder for the rows and the gold sets.")],
    seed: Annotated[int, typer.Option(help="Seeds the defects and the prompts.")] = 0,
    per_kind: Annotated[int, typer.Option(help="Test gold images per defect kind.")] = 10,
) -> None:
    """The inspection sets from openclipart's object drawings, with defects made on purpose
    and recorded exactly: training rows (views of train/val drawings, seen kinds only) as
    WebDataset shards, a val gold set (calibration) and a test gold set with every kind,
    held-out kinds too, and as many normal images; each gold set with its
    inspection_labels.json."""
    from weft.data.inspection import write_sets

    with user_errors():
        counts = write_sets(out, seed=seed, per_kind=per_kind)
    for part, n in counts.items():
        console.print(f"{out}/{part}: {n:,} {'images' if part.startswith('gold') else 'rows'}")
