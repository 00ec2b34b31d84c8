"""The curation report: every input row is kept, removed by a named stage, or quarantined.

`summarise_block` runs on Ray Data over the final rows and returns, per (status, stage,
reason), a count and an order-independent digest sum; `Report.check` proves the accounting
(input = kept + removed + quarantined, and each matches the rows written) in code.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

import numpy as np
import pyarrow as pa
from pydantic import BaseModel

from weft import metrics
from weft.curate.schema import KEPT, QUARANTINED, REMOVED

DATASET_FORMAT = "weft.curated.v1"
PARTIAL_TIMINGS = (
    "Partial: the tally actor died during the run, so stage timings and repeated-key counts"
    " are incomplete; the rows are all accounted for."
)
_MASK = (1 << 64) - 1


class AccountingError(RuntimeError):
    """The report's numbers do not add up: rows were lost or invented."""


def summarise_block(block: pa.Table) -> pa.Table:
    """Per (status, stage, reason, lang): row count and the sum (mod 2^64, two halves) of the
    row digests."""
    digests = np.frombuffer(
        b"".join(
            hashlib.blake2b(f"{i}|{t}|{m}".encode(), digest_size=16).digest()
            for i, t, m in zip(
                block["id"].to_pylist(),
                block["text_hash"].to_pylist(),
                block["image_hash"].to_pylist(),
                strict=True,
            )
        ),
        dtype=np.uint64,
    ).reshape(-1, 2)
    keys = ("status", "stage", "reason", "lang")
    groups: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for row, group in enumerate(zip(*(block[k].to_pylist() for k in keys), strict=True)):
        groups[tuple(g or "" for g in group)].append(row)
    out: dict[str, list[object]] = defaultdict(list)
    for group, rows in groups.items():
        sums = digests[rows].sum(axis=0, dtype=np.uint64)  # wraps mod 2^64
        for name, value in zip(keys, group, strict=True):
            out[name].append(value)
        out["rows"].append(len(rows))
        out["hi"].append(int(sums[0]))
        out["lo"].append(int(sums[1]))
    return pa.table(
        {
            **{k: pa.array(out[k], pa.string()) for k in keys},
            "rows": pa.array(out["rows"], pa.int64()),
            "hi": pa.array(out["hi"], pa.uint64()),
            "lo": pa.array(out["lo"], pa.uint64()),
        }
    )


class Counts(BaseModel):
    """Row counts by decision, built from the summaries of every block."""

    input_rows: int = 0
    kept: int = 0
    removed: dict[str, dict[str, int]] = {}
    quarantined: dict[str, dict[str, int]] = {}
    # rows per language that language ID saw (before) and that were kept (after)
    languages_before: dict[str, int] = {}
    languages_after: dict[str, int] = {}
    content_hash: str = ""

    def rows(self) -> list[metrics.Row]:
        """The counts as metric rows: kept rows under stage `output`, the others under the
        stage that removed or quarantined them, by reason."""
        found = [metrics.Row("output", KEPT, "kept", self.kept)]
        for decision, table in ((REMOVED, self.removed), (QUARANTINED, self.quarantined)):
            found += [
                metrics.Row(stage, decision, reason, n)
                for stage, reasons in table.items()
                for reason, n in reasons.items()
            ]
        return found

    @classmethod
    def from_summaries(cls, summaries: list[pa.Table]) -> Counts:
        counts = cls()
        hi = lo = 0
        for summary in summaries:
            for row in summary.to_pylist():
                counts.input_rows += row["rows"]
                if row["lang"]:
                    before = counts.languages_before
                    before[row["lang"]] = before.get(row["lang"], 0) + row["rows"]
                    if row["status"] == KEPT:
                        after = counts.languages_after
                        after[row["lang"]] = after.get(row["lang"], 0) + row["rows"]
                if row["status"] == KEPT:
                    counts.kept += row["rows"]
                    hi, lo = (hi + row["hi"]) & _MASK, (lo + row["lo"]) & _MASK
                    continue
                table = counts.removed if row["status"] == REMOVED else counts.quarantined
                by_reason = table.setdefault(row["stage"], {})
                by_reason[row["reason"]] = by_reason.get(row["reason"], 0) + row["rows"]
        version = f"{DATASET_FORMAT}:{counts.kept}:{hi:016x}{lo:016x}"
        counts.content_hash = hashlib.sha256(version.encode()).hexdigest()[:32]
        return counts

    def total(self, status: str) -> int:
        table = self.removed if status == REMOVED else self.quarantined
        return sum(n for reasons in table.values() for n in reasons.values())


class StageTiming(BaseModel):
    stage: str
    rows: int
    seconds: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else float("inf")


class FileError(BaseModel):
    uri: str
    reason: str
    detail: str


class Report(BaseModel):
    name: str
    run: str = ""  # its output is published as `<output>/versions/<run>/` (`publish.py`)
    spec_hash: str
    inputs: list[str]
    output: str
    files_read: int
    file_errors: list[FileError]
    # per input file, the records whose key repeats an earlier record's (each keeps its own id)
    repeated_keys: dict[str, int] = {}
    counts: Counts
    written: dict[str, int]
    stages: list[StageTiming]
    # the tally actor died during the run: `stages` and `repeated_keys` miss what it held
    stages_partial: bool = False
    phases: dict[str, float]
    seconds: float
    mlflow_run_id: str | None = None
    dry_run: bool = False

    @property
    def content_hash(self) -> str:
        return self.counts.content_hash

    def check(self) -> None:
        """Raise `AccountingError` unless every input row is accounted for, on disk too."""
        c = self.counts
        removed, quarantined = c.total(REMOVED), c.total(QUARANTINED)
        problems = []
        if c.input_rows != c.kept + removed + quarantined:
            problems.append(
                f"input {c.input_rows} != kept {c.kept} + removed {removed}"
                f" + quarantined {quarantined}"
            )
        expected = (
            {"decisions": c.input_rows}
            if self.dry_run
            else {"data": c.kept, "removed": removed, "quarantine": quarantined}
        )
        problems += [
            f"{part}/ holds {self.written.get(part, 0)} rows, expected {n}"
            for part, n in expected.items()
            if self.written.get(part, 0) != n
        ]
        if problems:
            raise AccountingError(
                f"{self.output}: accounting does not add up: " + "; ".join(problems)
            )

    def to_markdown(self) -> str:
        c = self.counts
        lines = [
            f"# Curation report: {self.name}" + (" (dry run)" if self.dry_run else ""),
            "",
            f"- output: `{self.output}`",
            f"- dataset content hash: `{c.content_hash}`",
            f"- spec hash: `{self.spec_hash}`",
            f"- input files: {self.files_read} ({len(self.file_errors)} with errors)",
            f"- wall time: {self.seconds:.1f} s",
            "",
            "## Accounting",
            "",
            "| rows | count |",
            "|---|---:|",
            f"| input | {c.input_rows} |",
            f"| kept | {c.kept} |",
            f"| removed | {c.total(REMOVED)} |",
            f"| quarantined | {c.total(QUARANTINED)} |",
            "",
            f"input = kept + removed + quarantined: "
            f"{c.input_rows} = {c.kept} + {c.total(REMOVED)} + {c.total(QUARANTINED)} (checked)",
            "",
            "| decision | stage | reason | rows |",
            "|---|---|---|---:|",
        ]
        for status, table in ((REMOVED, c.removed), (QUARANTINED, c.quarantined)):
            for stage, reasons in sorted(table.items()):
                lines += [f"| {status} | {stage} | {r} | {n} |" for r, n in sorted(reasons.items())]
        lines += ["", "## Stages", ""]
        if self.stages_partial:
            lines += [PARTIAL_TIMINGS, ""]
        lines += [
            "| stage | rows | seconds (summed over workers) | rows/s |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {s.stage} | {s.rows} | {s.seconds:.2f} | {s.rows_per_s:,.0f} |" for s in self.stages
        ]
        if c.languages_before:
            lines += ["", "## Languages", "", "| language | before | after |", "|---|---:|---:|"]
            lines += [
                f"| {lang} | {n} | {c.languages_after.get(lang, 0)} |"
                for lang, n in sorted(c.languages_before.items(), key=lambda kv: -kv[1])
            ]
        lines += ["", "| phase | wall seconds |", "|---|---:|"]
        lines += [f"| {p} | {t:.2f} |" for p, t in self.phases.items()]
        if self.file_errors:
            lines += [
                "",
                "## Input files with errors",
                "",
                "| file | reason | error |",
                "|---|---|---|",
            ]
            lines += [f"| `{e.uri}` | {e.reason} | {e.detail} |" for e in self.file_errors]
        if self.repeated_keys:
            lines += [
                "",
                "## Input files with repeated keys",
                "",
                "Each record keeps its own id; `key` is not unique in these files.",
                "",
                "| file | records repeating an earlier key |",
                "|---|---:|",
            ]
            lines += [f"| `{uri}` | {n} |" for uri, n in self.repeated_keys.items()]
        return "\n".join(lines) + "\n"
