"""Image near-dedup on real drawings, through `curate` on Ray: recall per copy kind and per
caption edit, and the share of distinct drawings removed, for `match: image` and `match:
both`. The drawings are Noto Color Emoji (Debian's fonts-noto-color-emoji), rendered as
transparent PNGs; the copies are resized, JPEG re-encoded (quality 30-90), flattened onto
white or a random colour, cropped by 1-3 %, or all of these (`weft.data.imagepairs`).

Figures, never assertions.

    python -m tests.perf.bench_image_dedup [--distinct 1200] [--copies 600] [--seed 0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tests.integration.test_image_dedup import curated_score
from weft.data.imagepairs import COPIES, EDITS, Score, make_corpus, write_corpus

MATCHES = ("image", "both")
console = Console()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--distinct", type=int, default=1200)
    parser.add_argument("--copies", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw"
        samples, corpus = make_corpus(args.distinct, args.copies, args.seed, edits=tuple(EDITS))
        write_corpus(raw, samples, corpus, shards=4)
        scores: dict[str, Score] = {}
        seconds: dict[str, float] = {}
        for match in MATCHES:
            start = time.perf_counter()
            scores[match] = curated_score(raw, Path(tmp) / match, corpus, match)
            seconds[match] = time.perf_counter() - start
    kept_jaccard = ("recased", "appended")  # captions still at Jaccard >= 0.8
    table = Table(
        title=f"image near dedup: {args.distinct} distinct emoji, {args.copies} planted copies "
        f"(seed {args.seed}); recall per copy kind and caption edit"
    )
    for col in ("copies", "n", "match: image", "match: both", "both, recased/appended"):
        table.add_column(col, justify="left" if col == "copies" else "right")
    image, both = scores["image"], scores["both"]
    for kind in (*COPIES, None):
        n = sum(kind in (None, p.kind) for p in corpus.planted)
        table.add_row(
            kind or "[bold]all",
            str(n),
            f"{image.recall(kind):.3f}",
            f"{both.recall(kind):.3f}",
            f"{both.recall(kind, kept_jaccard):.3f}",
        )
    for edit in EDITS:
        n = sum(p.edit == edit for p in corpus.planted)
        cells = (f"{s.recall(edits=(edit,)):.3f}" for s in (image, both))
        table.add_row(f"caption {edit}", str(n), *cells, "")
    table.add_row(
        "distinct removed",
        str(args.distinct),
        *(f"{s.distinct_removed} ({s.false_positive_rate:.2%})" for s in (image, both)),
        "",
    )
    table.add_row("seconds (dry run)", "", *(f"{seconds[m]:.1f}" for m in MATCHES), "")
    console.print(table)


if __name__ == "__main__":
    main()
