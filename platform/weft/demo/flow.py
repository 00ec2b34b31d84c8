"""`weft demo`'s flow: make the synthetic corpus and curate it; train the demo's models; sweep
CLIP's temperature and the diffusion model's guidance, promoting each sweep's best behind its
gate, and the captioner as trained; index the curated images with the champion CLIP; deploy
the champions and visit each endpoint once.

The steps are handed in (`Steps`; weft.cli's commands run each stage and print its summary):
this module holds their order, the demo's jobs, and which step waits on which (a sweep or a
training without an MLflow run promotes nothing; a refused promotion is shown, and the demo
goes on). It prints nothing itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

JOBS = (Path("jobs/clip.yaml"), Path("jobs/diffusion.yaml"), Path("jobs/captioner.yaml"))
# The demo's sweeps, each followed by the promotion of its model; the runs promoted as trained.
SWEEPS = (
    (Path("jobs/sweep-clip.yaml"), Path("jobs/promote-clip.yaml")),
    (Path("jobs/sweep-cfg.yaml"), Path("jobs/promote-diffusion.yaml")),
)
PROMOTIONS = {Path("jobs/captioner.yaml"): Path("jobs/promote-captioner.yaml")}
APP = Path("serve/weft.yaml")
CLIP = "weft-clip@champion"  # the CLIP the curated images are indexed with


class Steps(Protocol):
    """The stages as the demo runs them, each showing what it did."""

    def corpus(self, raw: str, pairs: int) -> None:
        """Write the synthetic corpus, `pairs` image-text pairs, to `raw`."""

    def curate(self, spec: Path) -> str:
        """Curate with a curation spec; the output's URI."""

    def train(self, spec: Path) -> str | None:
        """Train with a training spec; its MLflow run, if tracked."""

    def sweep(self, spec: Path) -> str | None:
        """Sweep with a sweep spec; the sweep's MLflow run, if tracked."""

    def promote(self, spec: Path, *, run: str | None = None, sweep: str | None = None) -> bool:
        """Register a training run's model, or a sweep's best; whether it passed the gate."""

    def models(self) -> None:
        """Show the registered models."""

    def index(self, data: str, model: str) -> None:
        """Index a curated dataset's images with a registered CLIP."""

    def tour(self, config: Path, home: Path) -> None:
        """Deploy a Serve config's apps, visit each endpoint once, and shut them down."""


def run(steps: Steps, spec: Path, raw: str, pairs: int, train: list[Path] | None = None) -> None:
    """The demo: the corpus (`pairs` pairs) to `raw`, curated with `spec`; the demo's models
    trained, or the training specs `train` instead; then sweeps, promotions, the index and
    the tour, whose files go beside `raw`."""
    steps.corpus(raw, pairs)
    from weft.cluster import DASHBOARD  # imports Ray

    os.environ[DASHBOARD] = "1"  # the sweep's Ray Train needs it to free a stopped trial's CPUs
    curated = steps.curate(spec)
    runs = {job: steps.train(job) for job in train or JOBS}
    for sweep_spec, promotion in SWEEPS:
        sweep_run = steps.sweep(sweep_spec)
        if sweep_run:  # a refused promotion is shown, and the demo goes on
            steps.promote(promotion, sweep=sweep_run)
    for job, promotion in PROMOTIONS.items():
        if runs.get(job):
            steps.promote(promotion, run=runs[job])
    steps.models()
    steps.index(curated, CLIP)
    steps.tour(APP, Path(raw).parent)
