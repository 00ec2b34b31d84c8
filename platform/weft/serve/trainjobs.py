"""The HTTP API's training jobs: `POST /v1/train/jobs` submits a training spec as a Ray Job,
`GET /v1/train/jobs/{id}` reports it, through the same code as `weft submit` and `weft jobs
status` (`weft.jobs`). (No `from __future__ import annotations` here: FastAPI reads the
routes' annotations at run time.)

The spec comes as data (a training spec's YAML as JSON), never as a path: it travels alone
in the job's working directory, the code in the job's runtime env. Credentials in it are
refused; the job uses the cluster's. The job is submitted to `args.jobs_address`, else to
the job API of the cluster the app runs in.
"""

import asyncio
import shutil
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from weft.jobs import follow, submit
from weft.jobs.kinds import kind_of
from weft.serve.gate import SCOPE_FIELD, caller
from weft.specs import SpecError

router = APIRouter()


class TrainJobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spec: dict[str, Any] = Field(
        description="A training spec, as a file in jobs/ holds it (name, model, data, optim, "
        "workers, ...), validated by the job when it starts."
    )


class TrainJob(BaseModel):
    id: str
    status: str = Field(description="PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED.")
    name: str
    submitted_by: str
    started: datetime | None
    ended: datetime | None
    exit_code: int | None = Field(description="Once it has ended: 0 when it succeeded.")
    message: str | None = Field(description="Why it failed, when it did.")
    mlflow_runs: list[str] = Field(description="The MLflow runs it started, once it has.")
    output: str | None


def _shown(view: follow.JobView) -> TrainJob:
    return TrainJob(
        id=view.id,
        status=view.status,
        name=view.name,
        submitted_by=view.user,
        started=view.started,
        ended=view.ended,
        exit_code=view.code if view.done else None,
        message=view.reason if view.status == "FAILED" else None,
        mlflow_runs=follow.mlflow_runs(view.id),
        output=view.output,
    )


def _address(request: Request) -> str:
    address: str | None = request.app.state.jobs_address or follow.this_cluster()
    if address is None:
        raise HTTPException(503, "jobs: this cluster runs no Ray dashboard, which takes jobs")
    return address


def _client(address: str) -> Any:
    try:
        return follow.client(address)
    except SpecError as err:
        raise HTTPException(503, f"jobs: {err}") from None


@router.post(
    "/v1/train/jobs",
    status_code=202,
    response_model=TrainJob,
    openapi_extra={SCOPE_FIELD: ["train"]},
)
async def submit_training(body: TrainJobRequest, request: Request) -> TrainJob:
    """Submit a training job; 202 with its id, to follow with GET /v1/train/jobs/{id}."""
    user = caller(request.scope)
    try:
        if kind_of(body.spec, "body.spec") != "train":
            raise SpecError("body.spec: not a training spec (it needs a data block)")
        job = submit.prepare_inline(body.spec, "train", user)
    except SpecError as err:
        raise HTTPException(422, str(err)) from None
    try:
        address = _address(request)
        api = await asyncio.to_thread(_client, address)
        job_id = await asyncio.to_thread(submit.send, api, job, address)
        view = await asyncio.to_thread(follow.status, api, job_id)
    except SpecError as err:
        raise HTTPException(503, f"jobs: {err}") from None
    finally:
        shutil.rmtree(job.root, ignore_errors=True)  # uploaded already
    return await asyncio.to_thread(_shown, view)


@router.get(
    "/v1/train/jobs/{job_id}",
    response_model=TrainJob,
    openapi_extra={SCOPE_FIELD: ["train", "read"]},
)
async def training_job(job_id: str, request: Request) -> TrainJob:
    """A training job's state, its MLflow runs and output."""
    api = await asyncio.to_thread(_client, _address(request))
    try:
        view = await asyncio.to_thread(follow.status, api, job_id)
    except SpecError:
        raise HTTPException(404, f"job {job_id}: no such job") from None
    if view.kind != "train":
        raise HTTPException(404, f"job {job_id}: not a training job")
    return await asyncio.to_thread(_shown, view)
