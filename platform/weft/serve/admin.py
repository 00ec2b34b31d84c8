"""The HTTP API's operator routes: moving a model's alias (`promote` scope), and adding and
revoking API keys (`keys` scope), through the same code as `weft alias` and `weft keys`, each
an audit line naming the key that asked. (No `from __future__ import annotations` here:
FastAPI reads the routes' annotations at run time.)"""

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from weft.registry.promote import move_alias
from weft.serve import keys
from weft.serve.gate import SCOPE_FIELD, caller
from weft.specs import SpecError

router = APIRouter()
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]


class AliasMove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(pattern=r"^[0-9]{1,9}$", description="The version the alias is to name.")
    unchecked: bool = Field(default=False, description="Also a version that failed its gate.")


class AliasMoved(BaseModel):
    model: str
    alias: str
    version: str
    previous: str | None = Field(description="The version the alias named before, if any.")


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    role: keys.Role | None = Field(default=None, description="Its scopes: the role's.")
    scopes: list[keys.Scope] | None = Field(default=None, description="Instead of a role.")
    per_minute: int = Field(default=600, ge=1, le=1_000_000)


class MadeKey(BaseModel):
    name: str
    scopes: list[str]
    key: str = Field(description="The key: shown this once, stored only as its hash.")


@router.put(
    "/v1/models/{model}/aliases/{alias}",
    response_model=AliasMoved,
    openapi_extra={SCOPE_FIELD: ["promote"]},
)
async def put_alias(model: Name, alias: Name, body: AliasMove, request: Request) -> AliasMoved:
    """Point a registered model's alias at a version that passed its gate (a rollback, or
    forward again); serving apps that follow the alias move with it."""
    try:
        previous = await asyncio.to_thread(
            move_alias,
            model,
            alias,
            body.version,
            unchecked=body.unchecked,
            who=caller(request.scope),
        )
    except SpecError as err:
        status = 404 if "has no version" in str(err) else 422
        raise HTTPException(status, str(err)) from None
    return AliasMoved(model=model, alias=alias, version=body.version, previous=previous)


def _keys_file(request: Request) -> str:
    uri: str | None = request.app.state.policy.keyring and request.app.state.policy.keyring.uri
    if uri is None:
        raise HTTPException(404, "keys: this app has no keys file (args.keys is null)")
    return uri


@router.post(
    "/v1/keys", status_code=201, response_model=MadeKey, openapi_extra={SCOPE_FIELD: ["keys"]}
)
async def post_key(body: NewKey, request: Request) -> MadeKey:
    """Make an API key with a role's scopes (or scopes of its own); the key is in this answer
    alone. Running replicas take it within seconds."""
    if (body.role is None) == (body.scopes is None):
        raise HTTPException(422, "body: give a role or scopes, not both and not neither")
    file = _keys_file(request)
    try:
        made = await asyncio.to_thread(
            keys.add,
            file,
            body.name,
            body.scopes,
            body.per_minute,
            body.role,
            who=caller(request.scope),
        )
    except SpecError as err:
        raise HTTPException(409 if "already" in str(err) else 422, str(err)) from None
    scopes: list[Any] = list(keys.ROLES[body.role]) if body.role else list(body.scopes or [])
    return MadeKey(name=body.name, scopes=scopes, key=made)


@router.delete("/v1/keys/{name}", status_code=204, openapi_extra={SCOPE_FIELD: ["keys"]})
async def delete_key(name: Name, request: Request) -> Response:
    """Revoke a key; running replicas refuse it within seconds."""
    file = _keys_file(request)
    try:
        await asyncio.to_thread(keys.revoke, file, name, who=caller(request.scope))
    except SpecError as err:
        raise HTTPException(404, str(err)) from None
    return Response(status_code=204)
