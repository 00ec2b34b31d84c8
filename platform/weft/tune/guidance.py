"""`weft tune` of a trained diffusion model's guidance: classifier-free guidance scale (and
the negative prompt, the sampling steps) as Ray Tune trials.

Guidance is an inference-time knob, so a trial trains nothing: it draws the held-out
prompts with its setting and a trained CLIP judges the images (CLIP score against the
prompts, Fréchet distance to the real held-out images in the CLIP's image space). The
objective picks a setting; a copy of the model with that setting as its generation default is
written beside the sweep and logged as the sweep run's MLflow model, which `weft promote`
registers like any trained model. Each trial has a nested MLflow run with its values, scores
and a grid of its images with their prompts.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow import MlflowClient
from ray import tune

from weft import cluster, storage
from weft.models import images, inference, metrics, registry
from weft.models.inference import Embedder, ImageGenerator
from weft.registry.artifacts import SOURCE_RUN, fetch_predictor, source_run_file
from weft.registry.pyfunc import log_model
from weft.specs import SpecError
from weft.tracking import LINEAGE_TAGS, generation_tags, tracking_uri, use_experiment
from weft.train import data
from weft.train.loop import MODEL_DIR
from weft.tune.spec import GuidanceSpec
from weft.tune.sweep import COMPLETED, SweepResult, Trial, domain, log_summary, trials_of

SCORES = ("clip_score", "frechet", "seconds_per_image")
GRID = 16  # images with their prompts in each trial's sample grid


@dataclass(frozen=True)
class _Context:
    """What every trial needs besides its values (shipped once, by `tune.with_parameters`):
    the two model folders as bytes, so a trial on any node loads them."""

    model: dict[str, bytes]
    judge: dict[str, bytes]
    prompts: list[str]
    real_features: np.ndarray
    seed: int
    sweep: str
    parent: str | None
    experiment: str | None
    tracking_uri: str


def guidance_sweep(spec: GuidanceSpec) -> SweepResult:
    """Run the trials, choose a setting by the objective, save and log the model with it."""
    cluster.connect()
    with tempfile.TemporaryDirectory() as tmp:
        generator, model_dir, source_run = fetch_predictor(
            spec.model, "model", spec.storage, Path(tmp), ImageGenerator
        )
        judge, judge_dir, _ = fetch_predictor(
            spec.judge, "judge", spec.storage, Path(tmp), Embedder
        )
        prompts, real = _held_out(spec)
        parent, experiment = _open_parent(spec, source_run)
        try:
            context = _Context(
                inference.packed(model_dir),
                inference.packed(judge_dir),
                prompts,
                judge.image_features(real),
                spec.seed,
                spec.name,
                parent,
                experiment,
                tracking_uri(),
            )
            trials = trials_of(_tuner(spec, context).fit(), spec, parent, SCORES, reports=1)
            best = choose(trials, spec)
            model = _save_chosen(spec, generator, best, parent) if best else None
            if parent:
                log_summary(spec, trials, best, model_run=parent if model else None)
        finally:
            if parent:
                mlflow.end_run()
    return SweepResult(spec, parent, trials, best, model)


def _held_out(spec: GuidanceSpec) -> tuple[list[str], list[bytes]]:
    """The captions and images of the first `prompts` held-out pairs, the same in every run."""
    _, held_out = data.pairs(spec.data, spec.storage)
    held_out.context.execution_options.preserve_order = True
    rows = held_out.limit(spec.prompts).take_all()
    if len(rows) < spec.prompts:
        raise SpecError(
            f"prompts: {spec.data.uri} holds {len(rows)} held-out image-text pairs "
            f"(data.val_percent {spec.data.val_percent:g}), fewer than prompts {spec.prompts}"
        )
    return [r["text"] for r in rows], [r["image"] for r in rows]


def _open_parent(spec: GuidanceSpec, source_run: str | None) -> tuple[str | None, str | None]:
    """The sweep's MLflow run, with the lineage of the run that trained the model."""
    if not spec.mlflow.enabled:
        return None, None
    experiment = use_experiment(spec.mlflow.experiment)
    run = mlflow.start_run(experiment_id=experiment, run_name=spec.name)
    lineage = {}
    if source_run:
        tags = MlflowClient().get_run(source_run).data.tags
        lineage = {k: v for k, v in tags.items() if k in LINEAGE_TAGS}
    mlflow.set_tags(
        lineage
        | {"weft.stage": "tune", "weft.sweep": spec.name, "weft.source_run": source_run or ""}
    )
    mlflow.log_params(
        {
            "model": spec.model,
            "judge": spec.judge,
            "prompts": spec.prompts,
            "objective": spec.objective.metric,
            "frechet_within_percent": spec.objective.frechet_within_percent,
            **{f"space.{p}": f"{d.kind} {d.examples()}" for p, d in spec.space.items()},
        }
    )
    mlflow.log_dict(spec.model_dump(mode="json"), "sweep.yaml")
    mlflow.set_tag("weft.sweep.run", run.info.run_id)  # the version's sweep, on promotion
    return str(run.info.run_id), experiment


def _tuner(spec: GuidanceSpec, context: _Context) -> tune.Tuner:
    out = storage.resolve(spec.output, spec.storage)
    return tune.Tuner(
        tune.with_resources(tune.with_parameters(_run_trial, context=context), {"cpu": spec.cpus}),
        param_space={path: domain(d) for path, d in spec.space.items()},
        tune_config=tune.TuneConfig(
            metric=spec.metric,
            mode=spec.mode,
            num_samples=spec.samples,
            max_concurrent_trials=spec.concurrent,
        ),
        run_config=tune.RunConfig(
            name=spec.name,
            storage_path=out.path,
            storage_filesystem=out.fs,
            verbose=cluster.tune_verbosity(),
        ),
    )


def _run_trial(values: dict[str, Any], context: _Context) -> None:
    """One trial: the held-out prompts drawn with the trial's setting, judged by the CLIP."""
    generator, judge = inference.unpacked(context.model), inference.unpacked(context.judge)
    assert isinstance(generator, ImageGenerator) and isinstance(judge, Embedder)
    generator = generator.with_generation(**values)
    start = time.perf_counter()
    drawn = generator.generate(context.prompts, seed=context.seed)
    seconds = (time.perf_counter() - start) / len(drawn)
    scores = {
        "clip_score": metrics.clip_score_of(
            judge.embed_images(drawn), judge.embed_texts(context.prompts)
        ),
        "frechet": metrics.frechet_distance(context.real_features, judge.image_features(drawn)),
        "seconds_per_image": seconds,
    }
    if context.parent:
        _log_trial(context, values, scores, drawn)
    tune.report(scores)


def _log_trial(
    context: _Context, values: dict[str, Any], scores: dict[str, float], drawn: list[bytes]
) -> None:
    """The trial's nested MLflow run: its values, scores, and images under their prompts."""
    trial = tune.get_context().get_trial_id()
    mlflow.set_tracking_uri(context.tracking_uri)
    tags = {
        "mlflow.parentRunId": str(context.parent),
        "weft.stage": "tune",
        "weft.sweep": context.sweep,
        "weft.sweep.trial": trial,
    }
    with mlflow.start_run(
        experiment_id=context.experiment, run_name=f"{context.sweep}-{trial}", tags=tags
    ):
        mlflow.log_params(values)
        mlflow.log_metrics(scores)
        grid = images.captioned_grid(drawn[:GRID], context.prompts[:GRID])
        mlflow.log_image(grid, "samples.png")


def choose(trials: list[Trial], spec: GuidanceSpec) -> Trial | None:
    """The completed trial with the best objective metric among those whose Fréchet distance
    is within the objective's bound of the lowest."""
    done = [t for t in trials if t.status == COMPLETED and set(SCORES) <= set(t.metrics)]
    if not done:
        return None
    within = spec.objective.frechet_within_percent
    if within is not None:
        lowest = min(t.metrics["frechet"] for t in done)
        done = [t for t in done if t.metrics["frechet"] <= lowest * (1 + within / 100)]
    sign = 1 if spec.mode == "max" else -1
    return max(done, key=lambda t: sign * t.metrics[spec.metric])


def _save_chosen(
    spec: GuidanceSpec, generator: ImageGenerator, best: Trial, parent: str | None
) -> str:
    """The model with the chosen setting as its default, written to `<output>/<name>/model`
    and logged as the sweep run's model; its URI (the MLflow one where there is a run)."""
    chosen = generator.with_generation(**best.values)
    out = storage.resolve(spec.output, spec.storage).join(spec.name, MODEL_DIR)
    with tempfile.TemporaryDirectory() as tmp:
        directory = registry.save(chosen.model, tmp, chosen.tokenizer)
        if parent:
            (directory / SOURCE_RUN).write_bytes(source_run_file(parent))
            mlflow.set_tags(generation_tags(chosen.model.config))
            mlflow.log_metrics({k: best.metrics[k] for k in SCORES})
            log_model(directory, spec.name)
        storage.copy_dir(storage.resolve(str(directory)), out)
    return f"runs:/{parent}/model" if parent else out.uri
