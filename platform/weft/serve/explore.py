"""The HTTP API's routes for looking at the data behind the answers: the curated dataset the
served index was built from (its report, pages of its kept, removed and quarantined rows, any
one row with the row it duplicates, thumbnails) and an item's lineage (`weft.serve.lineage`).
The dataset is read through its own reader (`weft.curate.dataset`), at the version the index
read. (No `from __future__ import annotations` here: FastAPI reads the routes' annotations
at run time.)"""

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from weft import storage
from weft.curate import dataset
from weft.serve.calls import ask, base_url, search_index
from weft.serve.gate import SCOPE_FIELD
from weft.serve.lineage import Lineage, trace
from weft.specs import SpecError, StorageSpec

router = APIRouter()
READ = {SCOPE_FIELD: ["search", "read"]}
RowId = Annotated[str, Field(max_length=128)]
Status = Literal["kept", "removed", "quarantined"]
T = TypeVar("T")
PNG: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}}, "description": "A PNG thumbnail."}
}


class DatasetView(BaseModel):
    uri: str = Field(description="The curation output the index was built from.")
    version: str = Field(description="The published version of it that the index read.")
    current: bool = Field(description="Whether that version is still the one published.")
    report: dict[str, Any] = Field(description="Its curation report (report.json).")


class RowsPage(BaseModel):
    status: Status
    reason: str | None
    total: int = Field(description="Rows with this status (and reason).")
    offset: int
    rows: list[dict[str, Any]] = Field(
        description="Each row's columns but its bytes; `thumbnail_url` where it has an image."
    )


class RowView(BaseModel):
    row: dict[str, Any]
    duplicate_of: dict[str, Any] | None = Field(
        description="For a removed duplicate: the row kept in its place."
    )


async def _read(call: Callable[..., T], *args: Any) -> T:
    """A reading of the dataset, off the event loop: a version that is gone is a 404 that
    names it, a store that fails a 503."""
    try:
        return await asyncio.to_thread(call, *args)
    except SpecError as err:
        raise HTTPException(404, str(err)) from None
    except storage.StorageError as err:
        raise HTTPException(503, f"the curated dataset cannot be read now: {err}") from None


async def _described(request: Request) -> dict[str, Any]:
    described: dict[str, Any] = await ask(search_index(request).describe.remote())
    return described


def _shown(row: dict[str, Any], request: Request) -> dict[str, Any]:
    """A row as the API shows it: `has_image` becomes the thumbnail's URL (or null)."""
    url = f"{base_url(request)}/v1/dataset/rows/{row['id']}/thumbnail"
    return {k: v for k, v in row.items() if k != "has_image"} | {
        "thumbnail_url": url if row.get("has_image") else None
    }


@router.get("/v1/dataset", response_model=DatasetView, openapi_extra=READ)
async def dataset_view(request: Request) -> DatasetView:
    """The curated dataset behind the served index, with its curation report."""
    described = await _described(request)
    version = described["data_version"]
    report = await _read(dataset.report, version, StorageSpec())
    current = await _read(dataset.version_uri, described["data"], StorageSpec())
    return DatasetView(
        uri=described["data"], version=version, current=current == version, report=report
    )


@router.get("/v1/dataset/rows", response_model=RowsPage, openapi_extra=READ)
async def dataset_rows(
    request: Request,
    status: Status = "kept",
    reason: Annotated[str | None, Query(max_length=64)] = None,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 24,
) -> RowsPage:
    """A page of the rows curation kept, removed or quarantined (optionally for one reason),
    in the order they are stored."""
    version = (await _described(request))["data_version"]
    total, rows = await _read(dataset.rows, version, StorageSpec(), status, offset, limit, reason)
    return RowsPage(
        status=status,
        reason=reason,
        total=total,
        offset=offset,
        rows=[_shown(r, request) for r in rows],
    )


@router.get("/v1/dataset/rows/{row}", response_model=RowView, openapi_extra=READ)
async def dataset_row(row: RowId, request: Request) -> RowView:
    """One row with its decision; a removed duplicate with the row kept in its place."""
    version = (await _described(request))["data_version"]
    found = await _read(dataset.row, version, StorageSpec(), row)
    if found is None:
        raise HTTPException(404, f"row {row}: not in the curated dataset {version}")
    kept = None
    if found["status"] == "removed" and found.get("duplicate_of"):
        kept = await _read(dataset.row, version, StorageSpec(), found["duplicate_of"])
    return RowView(
        row=_shown(found, request), duplicate_of=None if kept is None else _shown(kept, request)
    )


@router.get(
    "/v1/dataset/rows/{row}/thumbnail",
    response_class=Response,
    responses=PNG,
    openapi_extra=READ,
)
async def dataset_thumbnail(row: RowId, request: Request) -> Response:
    """A row's thumbnail: a kept row's from the index, a removed row's as curation kept it."""
    version = (await _described(request))["data_version"]
    data = await _read(dataset.thumbnail, version, StorageSpec(), row)
    if data is None:
        data = await ask(search_index(request).thumbnail.remote(row))
    if data is None:
        raise HTTPException(404, f"row {row}: no thumbnail (no image, or none was kept)")
    return Response(data, media_type="image/png")


@router.get("/v1/items/{item}/lineage", response_model=Lineage, openapi_extra=READ)
async def item_lineage(item: RowId, request: Request) -> Lineage:
    """Where an indexed item came from: its source object, curation's decisions, the curated
    dataset version, the training run, the registered version and the index version."""
    found, manifest, uri = await ask(search_index(request).item.remote(item))
    if found is None:
        raise HTTPException(404, f"item {item}: not in the index")
    return await _read(trace, found, manifest, uri)
