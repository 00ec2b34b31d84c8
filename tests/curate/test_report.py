"""The report adds up or refuses to exist; the content hash ignores row order only."""

from __future__ import annotations

import pyarrow as pa
import pytest

from weft.curate.report import (
    PARTIAL_TIMINGS,
    AccountingError,
    Counts,
    Report,
    summarise_block,
)
from weft.curate.schema import KEPT, QUARANTINED, REMOVED


def block(rows: list[tuple[str, str, str | None, str | None]]) -> pa.Table:
    """(id, status, stage, reason) rows with fixed hashes."""
    return pa.table(
        {
            "id": [r[0] for r in rows],
            "status": [r[1] for r in rows],
            "stage": pa.array([r[2] for r in rows], pa.string()),
            "reason": pa.array([r[3] for r in rows], pa.string()),
            "lang": pa.array([None] * len(rows), pa.string()),
            "text_hash": [f"t{r[0]}" for r in rows],
            "image_hash": [f"i{r[0]}" for r in rows],
        }
    )


ROWS = [
    ("a", KEPT, None, None),
    ("b", KEPT, None, None),
    ("c", REMOVED, "exact_dedup", "dup"),
    ("d", QUARANTINED, "validate", "empty_text"),
    ("e", KEPT, None, None),
]


def test_counts_add_up_by_stage_and_reason() -> None:
    counts = Counts.from_summaries([summarise_block(block(ROWS))])
    assert (counts.input_rows, counts.kept) == (5, 3)
    assert counts.removed == {"exact_dedup": {"dup": 1}}
    assert counts.quarantined == {"validate": {"empty_text": 1}}


def test_content_hash_is_independent_of_block_split_and_order() -> None:
    whole = Counts.from_summaries([summarise_block(block(ROWS))]).content_hash
    split = Counts.from_summaries(
        [summarise_block(block(ROWS[3:])), summarise_block(block(ROWS[:3][::-1]))]
    ).content_hash
    assert whole == split


def test_content_hash_changes_when_a_kept_row_changes() -> None:
    base = Counts.from_summaries([summarise_block(block(ROWS))]).content_hash
    other = Counts.from_summaries([summarise_block(block([("z", KEPT, None, None), *ROWS[1:]]))])
    assert other.content_hash != base


def report(counts: Counts, written: dict[str, int]) -> Report:
    return Report(
        name="t",
        spec_hash="h",
        inputs=[],
        output="out",
        files_read=1,
        file_errors=[],
        counts=counts,
        written=written,
        stages=[],
        phases={},
        seconds=1.0,
    )


def test_check_passes_when_disk_matches_the_counts() -> None:
    counts = Counts.from_summaries([summarise_block(block(ROWS))])
    report(counts, {"data": 3, "removed": 1, "quarantine": 1}).check()
    assert (
        "input = kept + removed + quarantined"
        in report(counts, {"data": 3, "removed": 1, "quarantine": 1}).to_markdown()
    )


def test_check_refuses_rows_lost_on_the_way_to_disk() -> None:
    counts = Counts.from_summaries([summarise_block(block(ROWS))])
    with pytest.raises(AccountingError, match="data/ holds 2 rows, expected 3"):
        report(counts, {"data": 2, "removed": 1, "quarantine": 1}).check()
    counts.input_rows += 1
    with pytest.raises(AccountingError, match="input 6 != kept 3"):
        report(counts, {"data": 3, "removed": 1, "quarantine": 1}).check()


def test_files_with_repeated_keys_are_listed_in_the_markdown() -> None:
    counts = Counts.from_summaries([summarise_block(block(ROWS))])
    done = report(counts, {"data": 3, "removed": 1, "quarantine": 1})
    assert "repeated keys" not in done.to_markdown()
    done.repeated_keys = {"s3://b/docs.jsonl": 4}
    assert "| `s3://b/docs.jsonl` | 4 |" in done.to_markdown()


def test_partial_stage_timings_are_said_so_in_the_report() -> None:
    partial = report(Counts(), {}).model_copy(update={"stages_partial": True})
    assert PARTIAL_TIMINGS in partial.to_markdown()
