"""Weft's HTTP API on Ray Serve: one FastAPI ingress (OpenAPI at `/docs`), composed with the
model and search deployments through handles.

`build` is the application builder that `serve/weft.yaml` names (`import_path`), so an
operator runs the same app with `serve run` / `serve deploy`, and `weft serve` locally. It
resolves each model reference (`name@alias`) to its version now, and the deployments load
that version by number. (No `from __future__ import annotations` here: FastAPI reads the
routes' annotations at run time.)
"""

import asyncio
import base64
import binascii
import math
from collections.abc import Awaitable
from typing import Annotated, Any, Literal, Self, TypeVar, cast

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from ray import serve
from ray.serve import Deployment
from ray.serve.handle import DeploymentHandle

from weft import storage
from weft.models import images
from weft.models.inspector import UNCERTAIN, parsed
from weft.registry.versions import ModelVersion
from weft.serve import admin, calls, explore, keys, page, telemetry, trainjobs
from weft.serve.deployments import LoadedModel, ModelServer, Refused, SafetyChecker, SearchServer
from weft.serve.fusion import Fusion
from weft.serve.gate import SCOPE_FIELD, Gate, Policy, charge
from weft.serve.rerank import DEPTH as RERANK_DEPTH
from weft.serve.rerank import SHARE as RERANK_SHARE
from weft.serve.rerank import Reranked, rerank
from weft.serve.search import MANIFEST, Filters, Hit, index_location
from weft.serve.spec import AppArgs, Batching
from weft.specs import StorageSpec, parse_spec
from weft.tracking import tracking_uri

Text = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
MAX_IMAGE_BYTES = 8 << 20
T = TypeVar("T")
# A new version's replicas start beside the old ones, which serve until the new are ready.
SURGE = 100
# Each replica's CPU share, what Ray places by (replicas share the cores): small, so that the
# app with all four models, a rolling update and a short training beside it fit on 2 CPUs;
# a config's ray_actor_options may raise them.
CPUS = {"ingress": 0.05, "model": 0.15, "search": 0.1, "safety": 0.1}
# The ingress's health check re-reports the served versions; Ray keeps a gauge for two metric
# export intervals (10 s each by default).
HEALTH_CHECK_S = 5.0


def unready(spec: AppArgs, versions: dict[str, ModelVersion]) -> str | None:
    """Why the app cannot serve these versions yet (the CLIP's index is not built), if so."""
    if spec.index is None or "clip" not in versions:
        return None
    where = index_location(spec.index, versions["clip"], StorageSpec())
    if storage.exists(where.join(MANIFEST)):
        return None
    return f"no index of {versions['clip']} at {where.uri} (weft index)"


class ImageInput(BaseModel):
    """An image: its encoded bytes in base64, or a URI the service may read."""

    model_config = ConfigDict(extra="forbid")
    b64: str | None = Field(default=None, description="PNG, JPEG or WebP bytes, base64.")
    uri: str | None = Field(default=None, description="s3://... or a path the app may read.")

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.b64 is None) == (self.uri is None):
            raise ValueError("give exactly one of b64 and uri")
        return self


class EmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    texts: list[Text] = Field(default=[], max_length=256)
    images: list[ImageInput] = Field(default=[], max_length=64)
    normalize: bool = Field(default=True, description="Unit vectors (cosine = dot product).")

    @model_validator(mode="after")
    def _some(self) -> Self:
        if not self.texts and not self.images:
            raise ValueError("give at least one text or image")
        return self


class Embedding(BaseModel):
    input: Literal["text", "image"]
    index: int
    embedding: list[float]


class EmbeddingsResponse(BaseModel):
    model: str
    version: str
    dim: int
    data: list[Embedding]


class SearchFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lang: str | None = Field(default=None, description="Only items in this language (ISO code).")
    nsfw: bool | None = Field(default=None, description="Only items flagged (true) or not.")
    source: str | None = Field(default=None, description="Only items whose source URI starts so.")


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Text | None = None
    image: ImageInput | None = None
    k: int = Field(default=10, ge=1, le=100)
    filters: SearchFilters = SearchFilters()
    hybrid: float = Field(
        default=0.3, ge=0, le=1, description="BM25's share of the score (text queries)."
    )
    fusion: Fusion = Field(
        default=Fusion.WEIGHTED,
        description="How the vector and BM25 sides combine: `weighted` scores, or `rrf` "
        "(reciprocal ranks, each side weighted by its share).",
    )
    rerank: bool = Field(
        default=False,
        description=f"Rerank the first {RERANK_DEPTH} candidates by how well each image explains "
        "the text, in the captioner's words (text queries; costs one more unit per ten "
        "candidates).",
    )
    rerank_share: float = Field(
        default=RERANK_SHARE,
        ge=0,
        le=1,
        description="With rerank: the captioner's share of the order, fused by reciprocal "
        "ranks with the first stage's (1: the captioner's order alone).",
    )

    @model_validator(mode="after")
    def _one_query(self) -> Self:
        if (self.text is None) == (self.image is None):
            raise ValueError("give exactly one of text and image")
        if self.rerank and self.text is None:
            raise ValueError("rerank: needs a text query")
        return self


class SearchHit(BaseModel):
    id: str
    score: float
    vector_score: float
    bm25_score: float
    rerank_score: float | None = Field(
        default=None, description="The captioner's mean log-probability per token of the query."
    )
    caption: str
    lang: str | None
    nsfw: bool
    source_uri: str
    key: str
    image_url: str


class SearchResponse(BaseModel):
    model: str
    version: str
    hits: list[SearchHit]


class CaptionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    images: list[ImageInput] = Field(min_length=1, max_length=32)
    beam_size: int | None = Field(default=None, ge=1, le=8, description="Default: the model's.")


class CaptionResponse(BaseModel):
    model: str
    version: str
    captions: list[str]


class InspectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image: ImageInput
    prompt: Annotated[str, StringConstraints(min_length=1, max_length=300)] = Field(
        default="is anything wrong with this product?",
        description="A question about the image; it ends at its last `?` (one is added).",
    )
    crops: bool = Field(
        default=False,
        description="Inspect the whole image and overlapping zoomed tiles, answers merged: "
        "finds defects of a few pixels that shrinking the whole image loses; ten times the "
        "work.",
    )

    @field_validator("prompt")
    @classmethod
    def _printable(cls, value: str) -> str:
        if not value.isprintable():
            raise ValueError("holds control characters")
        if not value.strip(" ?"):
            raise ValueError("says nothing: ask a question about the image")
        return value


class InspectResponse(BaseModel):
    model: str
    version: str
    answer: str = Field(description="`<kind> at <place>`, `no defect`, or `uncertain`.")
    kind: str | None = Field(description="The defect's kind; null: none found, or abstained.")
    where: str | None = Field(description="Its cell of a 3 x 3 grid (top left … bottom right).")
    abstained: bool = Field(description="Less confident than the model's calibrated threshold.")
    guess: str = Field(description="The answer behind an abstention (else the answer).")
    confidence: float = Field(description="The probability the model gives its answer.")
    crops: bool
    attention_png: str = Field(
        description="Where the answer looked, drawn over the image: PNG, base64."
    )


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    negative_prompt: Annotated[str, StringConstraints(max_length=500)] | None = None
    cfg_scale: float | None = Field(
        default=None, ge=0, le=30, description="Default: the version's."
    )
    steps: int | None = Field(default=None, ge=1, le=200, description="Default: the version's.")
    seed: int = Field(default=0, ge=0, le=2**31 - 1)


class Problem(BaseModel):
    """An error: what was wrong, naming the field."""

    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "Malformed JSON."},
    401: {"model": Problem, "description": "No valid API key (checked before the body)."},
    403: {"model": Problem, "description": "The key lacks the route's scope."},
    404: {"model": Problem},
    408: {"model": Problem, "description": "The body did not arrive in time."},
    413: {"model": Problem, "description": "The body or an image is over the app's limit."},
    422: {"model": Problem, "description": "A field is invalid; the detail names it."},
    429: {"model": Problem, "description": "Over the key's rate; see Retry-After."},
    503: {
        "model": Problem,
        "description": "Not answered in time, busy, or no such model here; see Retry-After.",
    },
}
api = FastAPI(
    title="Weft",
    summary="Embeddings, search, captions and generation from Weft's registered models.",
    responses=ERRORS,
    # `Authorization: Bearer <key>`: documented here, checked by the gate before the body.
    dependencies=[Depends(HTTPBearer(auto_error=False))],
)
api.add_middleware(Gate)
api.include_router(trainjobs.router)
api.include_router(admin.router)
api.include_router(explore.router)
api.include_router(page.router)


def needs(*scopes: keys.Scope) -> dict[str, Any]:
    """A route's key scopes (a key needs one of them), as the OpenAPI extension the gate
    reads."""
    return {SCOPE_FIELD: list(scopes)}


# The handlers are registered before `@serve.ingress` takes the app.
@api.exception_handler(RequestValidationError)
async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with one line per bad field, each naming it (`body.texts.0: ...`)."""
    lines = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
    return JSONResponse({"detail": "; ".join(lines)}, 422)


@serve.deployment(
    name="ingress",
    max_ongoing_requests=128,
    health_check_period_s=HEALTH_CHECK_S,
    ray_actor_options={"num_cpus": CPUS["ingress"]},
)
@serve.ingress(api)
class Ingress:
    """Routes requests to the deployments; turns bad input into 4xx answers that name it.
    Keys, body limits and time limits are the gate's (`weft.serve.gate`), checked before a
    route runs."""

    def __init__(
        self,
        clip: DeploymentHandle | None,
        captioner: DeploymentHandle | None,
        diffusion: DeploymentHandle | None,
        inspector: DeploymentHandle | None,
        search: DeploymentHandle | None,
        safety: DeploymentHandle | None,
        versions: dict[str, ModelVersion],
        args: AppArgs,
    ) -> None:
        self.models: dict[str, DeploymentHandle | LoadedModel | None] = {
            "clip": LoadedModel(versions["clip"], args.batching) if args.clip_in_ingress else clip,
            "captioner": captioner,
            "diffusion": diffusion,
            "inspector": inspector,
        }
        self.search_index = search
        self.safety = safety
        self.versions = versions
        self.args = args
        self.readable = [storage.resolve(p) for p in args.readable]
        self.defaults: dict[str, dict[str, Any]] = {}  # role → the version's params
        api.state.jobs_address = args.jobs_address
        api.state.search = search
        api.state.public_url = args.public_url
        api.state.policy = Policy(
            keyring=None if args.keys is None else keys.Keyring(args.keys),
            docs=args.docs,
            max_body_bytes=args.max_body_bytes,
            body_timeout_s=args.body_timeout_s,
            timeout_s=args.timeout_s,
        )
        self.check_health()

    def check_health(self) -> None:
        """Serve calls this every `health_check_period_s`: it reports the served versions
        again, as Ray drops a gauge that is not re-reported within about two metric export
        intervals."""
        for role, v in self.versions.items():
            telemetry.served(role, v.name, v.version)
        if self.search_index is not None:
            telemetry.served("index", self.versions["clip"].name, self.versions["clip"].version)

    @api.post(
        "/v1/inference/embeddings", response_model=EmbeddingsResponse, openapi_extra=needs("search")
    )
    async def embeddings(self, body: EmbeddingsRequest, request: Request) -> EmbeddingsResponse:
        """Costs one unit per 16 texts and one per image."""
        charge(request.scope, math.ceil(len(body.texts) / 16) + len(body.images))
        inputs: dict[Literal["text", "image"], tuple[str, list[Any]]] = {
            "text": ("texts", list(body.texts)),
            "image": ("images", await self._images(body.images, "images")),
        }
        data = []
        for kind, (field, values) in inputs.items():
            if values:
                params = {"normalize": body.normalize}
                found = await self._predict("clip", {kind: values}, params, field)
                data += [
                    Embedding(input=kind, index=i, embedding=e.tolist())
                    for i, e in enumerate(found["embedding"])
                ]
        v = self.versions["clip"]
        return EmbeddingsResponse(
            model=v.name, version=v.version, dim=len(data[0].embedding), data=data
        )

    @api.post("/v1/retrieval/search", response_model=SearchResponse, openapi_extra=needs("search"))
    async def search(self, body: SearchRequest, request: Request) -> SearchResponse:
        index = calls.search_index(request)
        columns: dict[str, list[Any]]
        if body.text is not None:
            columns, field = {"text": [body.text]}, "text"
        else:
            assert body.image is not None
            columns, field = {"image": await self._images([body.image], "image")}, "image"
        if body.rerank:
            self._model("captioner")  # a 503 before any work if none is served
            charge(request.scope, math.ceil(RERANK_DEPTH / 10))
        found = await self._predict("clip", columns, {"normalize": True}, field)
        hits: list[Hit] = await self._ask(
            index.search.remote(
                np.asarray(found["embedding"][0], np.float32),
                body.text,
                max(body.k, RERANK_DEPTH) if body.rerank else body.k,
                Filters(**body.filters.model_dump()),
                body.hybrid if body.text is not None else 0.0,
                body.fusion,
            )
        )
        scores: list[float | None] = [None] * len(hits)
        if body.rerank and hits:
            assert body.text is not None
            reranked = await self._reranked(index, hits, body.text, body.k, body.rerank_share)
            hits, scores = [r.hit for r in reranked], [r.likelihood for r in reranked]
        v = self.versions["clip"]
        base = calls.base_url(request)
        return SearchResponse(
            model=v.name,
            version=v.version,
            hits=[
                SearchHit(**vars(h), rerank_score=s, image_url=f"{base}/v1/items/{h.id}/image")
                for h, s in zip(hits, scores, strict=True)
            ],
        )

    async def _reranked(
        self, index: DeploymentHandle, hits: list[Hit], text: str, k: int, share: float
    ) -> list[Reranked]:
        """`hits` reordered by the captioner's likelihood of `text` given each thumbnail,
        fused with their order at `share`."""
        thumbnails = await self._ask(index.thumbnails.remote([h.id for h in hits]))
        model = self._model("captioner")
        images = [t or b"" for t in thumbnails]
        if isinstance(model, LoadedModel):
            likelihoods = await model.likelihood(images, text)
        else:
            likelihoods = await self._ask(model.likelihood.remote(images, text))
        if isinstance(likelihoods, Refused):
            raise HTTPException(503, f"the reranker could not score: {likelihoods.reason}")
        return rerank(hits, likelihoods, k, share)

    @api.post(
        "/v1/inference/caption", response_model=CaptionResponse, openapi_extra=needs("search")
    )
    async def caption(self, body: CaptionRequest, request: Request) -> CaptionResponse:
        """Costs one unit per image."""
        charge(request.scope, len(body.images))
        pictures = await self._images(body.images, "images")
        params = {} if body.beam_size is None else {"beam_size": body.beam_size}
        found = await self._predict("captioner", {"image": pictures}, params, "images")
        v = self.versions["captioner"]
        return CaptionResponse(model=v.name, version=v.version, captions=found["caption"])

    @api.post(
        "/v1/inference/inspect", response_model=InspectResponse, openapi_extra=needs("search")
    )
    async def inspect(self, body: InspectRequest, request: Request) -> InspectResponse:
        """Costs one unit per view: one for the whole image, ten with crops."""
        self._model("inspector")  # a 503 before any work if none is served
        charge(request.scope, 10 if body.crops else 1)
        [picture] = await self._images([body.image], "image")
        try:
            await asyncio.to_thread(images.decode, picture)
        except images.ImageError as err:
            raise HTTPException(422, f"image: cannot be decoded ({err})") from None
        columns: dict[str, list[Any]] = {"image": [picture], "prompt": [body.prompt]}
        found = await self._predict("inspector", columns, {"crops": body.crops}, "prompt")
        kind, where = (
            parsed(found["answer"][0]) if found["answer"][0] != UNCERTAIN else (None, None)
        )
        v = self.versions["inspector"]
        return InspectResponse(
            model=v.name,
            version=v.version,
            answer=found["answer"][0],
            kind=kind,
            where=where,
            abstained=found["answer"][0] == UNCERTAIN,
            guess=found["guess"][0],
            confidence=found["confidence"][0],
            crops=body.crops,
            attention_png=base64.b64encode(found["attention"][0]).decode(),
        )

    @api.post(
        "/v1/inference/generate",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}, "description": "The generated PNG."}},
        openapi_extra=needs("generate"),
    )
    async def generate(self, body: GenerateRequest, request: Request) -> Response:
        """Costs one unit per ten denoising steps."""
        steps = body.steps or (await self._defaults("diffusion"))["steps"]
        charge(request.scope, math.ceil(steps / 10))
        settings = body.model_dump(include={"cfg_scale", "steps", "seed"}, exclude_none=True)
        columns: dict[str, list[Any]] = {
            "prompt": [body.prompt],
            "negative_prompt": [body.negative_prompt],
        }
        found = await self._predict("diffusion", columns, settings, "prompt")
        image = found["image"][0]
        checked = "off"
        if self.safety is not None:
            unsafe, score, labels = await self._ask(self.safety.check.remote(image))
            if unsafe:
                raise HTTPException(
                    422,
                    f"prompt: the generated image was blocked by the safety filter "
                    f"(NSFW score {score:.2f}: {', '.join(labels)}); it is not returned",
                )
            checked = f"passed (NSFW score {score:.2f})"
        v = self.versions["diffusion"]
        headers = {"X-Weft-Model": v.name, "X-Weft-Model-Version": v.version}
        return Response(image, media_type="image/png", headers=headers | {"X-Weft-Safety": checked})

    @api.get("/v1/models", openapi_extra=needs("search", "read"))
    async def deployed(self) -> dict[str, Any]:
        """The versions this app serves, and its index."""
        models = {}
        for role, model in self.models.items():
            if model is not None:
                v = self.versions[role]
                info = await self._describe(role)
                models[role] = info | {"aliases": list(v.aliases), "run_id": v.run_id}
        index = await self._ask(self.search_index.describe.remote()) if self.search_index else None
        return {"models": models, "index": index}

    @api.get(
        "/v1/items/{item}/image",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}, "description": "The item's thumbnail."}},
        openapi_extra=needs("search"),
    )
    async def item_image(
        self, item: Annotated[str, Field(max_length=128)], request: Request
    ) -> Response:
        index = calls.search_index(request)
        data = await self._ask(index.thumbnail.remote(item))
        if data is None:
            raise HTTPException(404, f"item {item}: not in the index")
        return Response(data, media_type="image/png")

    async def _ask(self, response: Awaitable[T]) -> T:
        return await calls.ask(response)

    async def _defaults(self, role: str) -> dict[str, Any]:
        if role not in self.defaults:
            self.defaults[role] = (await self._describe(role))["params"]
        return self.defaults[role]

    def _model(self, role: str) -> DeploymentHandle | LoadedModel:
        model = self.models[role]
        if model is None:
            raise HTTPException(503, f"this app serves no {role} model (args.{role} is null)")
        return model

    async def _describe(self, role: str) -> dict[str, Any]:
        model = self._model(role)
        if isinstance(model, LoadedModel):
            return model.describe()
        return cast(dict[str, Any], await self._ask(model.describe.remote()))

    async def _predict(
        self, role: str, columns: dict[str, list[Any]], params: dict[str, Any], field: str
    ) -> dict[str, list[Any]]:
        model = self._model(role)
        result: dict[str, list[Any]] | Refused
        if isinstance(model, LoadedModel):  # in this replica: no hop
            result = await model.predict(columns, params)
        else:
            result = await self._ask(model.predict.remote(columns, params))
        if isinstance(result, Refused):  # bad input the model could not use: name the field
            raise HTTPException(422, f"{field}: {result.reason}")
        return result

    async def _images(self, given: list[ImageInput], field: str) -> list[bytes]:
        """Each image's bytes, from base64 or an allowed URI, its header checked: one of the
        formats the models take, and no more pixels than curation admits."""
        out = []
        for i, x in enumerate(given):
            name = f"{field}[{i}]" if field == "images" else field
            data = await self._image(x, name)
            try:
                images.open_image(data)
            except images.ImageError as err:
                raise HTTPException(422, f"{name}: cannot be decoded ({err})") from None
            out.append(data)
        return out

    async def _image(self, given: ImageInput, field: str) -> bytes:
        """The image's bytes, decoded from base64 or read from an allowed URI."""
        if given.b64 is not None:
            try:
                data = base64.b64decode(given.b64, validate=True)
            except (binascii.Error, ValueError):
                raise HTTPException(422, f"{field}.b64: not valid base64") from None
        else:
            data = await self._read(str(given.uri), f"{field}.uri")
        if not data:
            raise HTTPException(422, f"{field}: empty image")
        if len(data) > MAX_IMAGE_BYTES:
            raise HTTPException(413, f"{field}: over {MAX_IMAGE_BYTES >> 20} MiB")
        return data

    async def _read(self, uri: str, field: str) -> bytes:
        """An image named by URI: only under a readable prefix, at most MAX_IMAGE_BYTES read,
        off the event loop; errors name the URI as given, never the server's own paths."""
        location = self._readable(uri, field)
        try:
            return await asyncio.to_thread(storage.read_bounded, location, MAX_IMAGE_BYTES)
        except storage.TooLarge:
            raise HTTPException(413, f"{field}: over {MAX_IMAGE_BYTES >> 20} MiB") from None
        except storage.StorageError as err:
            why = "no such file or object" if err.missing else "it cannot be read"
            raise HTTPException(422, f"{field}: {uri}: {why}") from None

    def _readable(self, uri: str, field: str) -> storage.Location:
        """Where a caller's URI points, if it is an absolute path or s3:// URI under one of
        the readable prefixes (compared by whole path parts)."""
        if not uri.isprintable():  # NUL, control characters, lone surrogates
            raise HTTPException(422, f"{field}: not a valid URI")
        plain = uri.removeprefix("file://")
        if not (uri.startswith("s3://") or plain.startswith("/")):
            raise HTTPException(422, f"{field}: give an s3:// URI or an absolute path")
        try:
            location = storage.resolve(uri)
        except (storage.StorageError, ValueError, OSError, RuntimeError):
            raise HTTPException(422, f"{field}: not a valid URI") from None
        if not any(storage.within(location, prefix) for prefix in self.readable):
            raise HTTPException(
                422, f"{field}: {uri} is not under a prefix this app may read (args.readable)"
            )
        return location


def build(args: dict[str, Any]) -> serve.Application:
    """The application `serve/weft.yaml` describes: resolve each model to its version now,
    deploy it by number; a missing model or index is an error that names it."""
    spec = parse_spec(AppArgs, args, "the app's args")
    versions = spec.resolved()
    env = {"runtime_env": {"env_vars": {"MLFLOW_TRACKING_URI": tracking_uri()}}}
    absolute = {  # replicas run elsewhere, in other working directories
        "readable": [storage.resolve(p).uri for p in spec.readable],
        "keys": spec.keys and storage.resolve(spec.keys).uri,
        "index": spec.index and storage.resolve(spec.index).uri,
    }
    spec = spec.model_copy(update=absolute)

    made = spec.deployments()

    def model(role: str, batching: Batching | None = spec.batching) -> Any:
        if role not in made:
            return None
        server = _deployment(ModelServer).options(
            name=role, ray_actor_options=env | {"num_cpus": CPUS["model"]}, max_surge_percent=SURGE
        )
        return server.bind(versions[role], batching)

    search = None
    if "search" in made:
        assert spec.index is not None
        searcher = _deployment(SearchServer).options(
            ray_actor_options=env | {"num_cpus": CPUS["search"]}, max_surge_percent=SURGE
        )
        search = searcher.bind(spec.index, versions["clip"])
    safety = None
    if "safety" in made:
        assert spec.safety is not None
        checker = _deployment(SafetyChecker).options(ray_actor_options={"num_cpus": CPUS["safety"]})
        safety = checker.bind(spec.safety)
    cpus = CPUS["ingress"] + (CPUS["model"] if spec.clip_in_ingress else 0)
    ingress = _deployment(Ingress).options(
        ray_actor_options=env | {"num_cpus": cpus}, max_surge_percent=SURGE
    )
    return ingress.bind(
        model("clip"),
        model("captioner"),
        model("diffusion", batching=None),  # seeded images must not depend on a batch
        model("inspector"),
        search,
        safety,
        versions,
        spec,
    )


def _deployment(decorated: object) -> Deployment:
    """A `@serve.deployment` class as what it is at run time (type checkers see the class)."""
    return cast(Deployment, decorated)
