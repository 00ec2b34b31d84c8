"""`weft quality`'s flow: every figure of the quality tables from nothing. Write the three
drawing corpora (emoji, openclipart, Symbola) and curate them as one dataset; train the
drawings models and promote each behind its gate; index the corpus with the champion CLIP;
measure the models (`weft eval models`) and search's gold queries (`weft eval retrieval`,
reranked by the champion captioner); write both tables into a document's quality block.

The steps are handed in (`Steps`; weft.cli's commands run each stage and print its summary):
this module holds their order, the drawings jobs, each step's wall time, and what stops the
flow (a model that is not promoted). It prints nothing itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

from weft.quality.table import replace_block
from weft.specs import SpecError

SOURCES = ("emoji", "openclipart", "symbola")  # `weft data <source>`, each into raw/<source>
# The drawings models, each trained then promoted by its run.
JOBS = {
    Path(f"jobs/drawings-{kind}.yaml"): Path(f"jobs/promote-drawings-{kind}.yaml")
    for kind in ("clip", "captioner", "diffusion")
}
CLIP = "drawings-clip@champion"  # the CLIP the curated corpus is indexed with
CAPTIONER = "drawings-captioner@champion"  # the reranker of the gold queries' answers
# BM25's share of the weighted hybrid, chosen on the gold set's dev half (docs/quality.md).
HYBRID = 0.5


class NotPromoted(RuntimeError):
    """A model the tables measure was not trained or did not pass its gate; names its spec."""


class Steps(Protocol):
    """The stages as the flow runs them, each showing what it did."""

    def corpus(self, source: str, out: str) -> None:
        """Write the corpus of `source` (one of SOURCES) to `out`."""

    def curate(self, spec: Path) -> str:
        """Curate with a curation spec; the output's URI."""

    def train(self, spec: Path) -> str | None:
        """Train with a training spec; its MLflow run, if tracked."""

    def promote(self, spec: Path, *, run: str) -> bool:
        """Register a training run's model; whether it passed the gate."""

    def index(self, data: str, model: str) -> None:
        """Index a curated dataset's images with a registered CLIP."""

    def evaluate(self, spec: Path) -> str:
        """Measure the models of a quality spec; the table, as markdown."""

    def retrieval(self, gold: Path, model: str, captioner: str, hybrid: float) -> str:
        """Score search on gold queries, with a registered CLIP's index and captioner and
        BM25's share of the hybrid; the summary, as markdown."""

    def done(self, step: str, seconds: float) -> None:
        """A step ended after `seconds`."""


def run(
    steps: Steps, raw: str, spec: Path, evaluation: Path, gold: Path, readme: Path
) -> dict[str, float]:
    """The corpora to `raw`/<source>, curated with `spec`; the drawings models trained and
    promoted; the index; the tables of the quality spec `evaluation` and the gold queries `gold`
    written into `readme`'s quality block. Each step's wall time in seconds, in order."""
    times: dict[str, float] = {}
    timed = _stopwatch(steps, times)
    for source in SOURCES:
        with timed(f"corpus {source}"):
            steps.corpus(source, f"{raw.rstrip('/')}/{source}")
    with timed("curation"):
        curated = steps.curate(spec)
    for job, promotion in JOBS.items():
        with timed(job.stem):
            _trained_and_promoted(steps, job, promotion)
    with timed("index"):
        steps.index(curated, CLIP)
    with timed("eval models"):
        tables = [steps.evaluate(evaluation)]
    with timed("eval retrieval"):
        tables.append(steps.retrieval(gold, CLIP, CAPTIONER, HYBRID))
    _write_block(readme, "\n".join(tables))
    return times


class InspectionSteps(Protocol):
    """The stages of `weft inspection`, each showing what it did."""

    def sets(self, out: str) -> None:
        """Write the inspection sets (training rows, gold val and test) under `out`."""

    def curate(self, spec: Path) -> str:
        """Curate with a curation spec; the output's URI."""

    def train(self, spec: Path) -> str | None:
        """Train with a training spec; its MLflow run, if tracked."""

    def promote(self, spec: Path, *, run: str) -> bool:
        """Register a training run's model; whether it passed the gate."""

    def inspect(self, gold: Path, model: str) -> str:
        """The inspector on a gold set; its tables, as markdown."""

    def done(self, step: str, seconds: float) -> None:
        """A step ended after `seconds`."""


INSPECTION_JOB = (Path("jobs/inspector.yaml"), Path("jobs/promote-inspector.yaml"))
INSPECTOR = "models:/inspector@champion"


def inspection(steps: InspectionSteps, out: str, spec: Path, document: Path) -> dict[str, float]:
    """The inspection sets to `out`, their training rows curated with `spec`; the inspector
    trained (its thresholds calibrated on `out`/gold/val) and promoted; its tables on
    `out`/gold/test written into `document`'s quality block. Each step's wall time."""
    times: dict[str, float] = {}
    timed = _stopwatch(steps, times)
    with timed("sets"):
        steps.sets(out)
    with timed("curation"):
        steps.curate(spec)
    with timed("inspector"):
        _trained_and_promoted(steps, *INSPECTION_JOB)
    with timed("eval inspection"):
        table = steps.inspect(Path(out) / "gold" / "test", INSPECTOR)
    _write_block(document, table)
    return times


def _stopwatch(
    steps: Steps | InspectionSteps, times: dict[str, float]
) -> Callable[[str], AbstractContextManager[None]]:
    """A context manager per step that records its wall time and reports it."""

    @contextmanager
    def timed(step: str) -> Iterator[None]:
        started = time.monotonic()
        yield
        times[step] = time.monotonic() - started
        steps.done(step, times[step])

    return timed


def _trained_and_promoted(steps: Steps | InspectionSteps, job: Path, promotion: Path) -> None:
    trained = steps.train(job)
    if not (trained and steps.promote(promotion, run=trained)):
        raise NotPromoted(f"{job}: its model was not promoted")


def _write_block(document: Path, tables: str) -> None:
    try:
        document.write_text(replace_block(document.read_text(), tables))
    except (OSError, ValueError) as err:
        raise SpecError(f"--readme {document}: {err}") from None
