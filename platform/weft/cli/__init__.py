"""The `weft` command: the typer `app`, assembled from one module per command group, each thin:
parse, load the spec, call the stage (or weft.demo's and weft.quality's flows), print a
summary. What the groups share is in `common`. The stages are imported inside the commands,
so `weft --help` starts no Ray, torch or MLflow."""

from __future__ import annotations

import logging

import typer

from weft.cli import (
    audit,
    curate,
    data,
    demo,
    index,
    jobs,
    lineage,
    quality,
    registry,
    serve,
    train,
    tune,
)
from weft.cli import eval as evaluation

app = typer.Typer(
    help="Weft: curate image-text data, pretrain, sweep and serve multimodal models on Ray.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# In the order `weft --help` lists them.
for name, command in (
    ("curate", curate.curate),
    ("calibrate", curate.calibrate),
    ("train", train.train),
    ("tune", tune.tune),
    ("promote", registry.promote),
    ("alias", registry.alias),
    ("models", registry.models),
    ("index", index.index_command),
    ("serve", serve.serve_command),
    ("lineage", lineage.lineage_command),
    ("submit", jobs.submit_command),
    ("audit", audit.audit_command),
    ("demo-data", demo.demo_data),
    ("demo", demo.demo),
    ("quality", quality.quality),
    ("inspection", quality.inspection),
):
    app.command(name)(command)
app.add_typer(jobs.jobs_app, name="jobs")
app.add_typer(serve.keys_app, name="keys")
app.add_typer(data.data_app, name="data")
app.add_typer(evaluation.eval_app, name="eval")


def main() -> None:
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("weft").setLevel(logging.INFO)
    app()
