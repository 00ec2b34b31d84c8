"""The serving app's configuration: the `args` of an app in a Serve config
(`serve/weft.yaml`), checked by `weft serve` and by the app's builder alike."""

from __future__ import annotations

from pydantic import Field

from weft.registry.versions import ModelVersion, resolve
from weft.specs import NsfwSpec, _Spec


class Batching(_Spec):
    """How a model replica merges concurrent requests into one forward pass (measured:
    docs/serving.md)."""

    max_size: int = Field(default=16, ge=1, le=256, description="Requests in one batch at most.")
    wait_ms: float = Field(
        default=1.0, ge=0, le=1000, description="How long the first request waits for company."
    )


class AppArgs(_Spec):
    """The `args` of the app in `serve/weft.yaml`: what to serve, and from where."""

    clip: str = Field(default="weft-clip@champion", description="name@alias or name/version")
    captioner: str | None = Field(default="weft-captioner@champion", description="null: none")
    diffusion: str | None = Field(default="weft-diffusion@champion", description="null: none")
    inspector: str | None = Field(
        default=None, description="e.g. inspector@champion (`make inspection`); null: none"
    )
    index: str | None = Field(
        default=".weft/index", description="Index root (weft index --output); null: no search."
    )
    readable: list[str] = Field(
        default=[], description="URI prefixes an image `uri` may name (none: only base64)."
    )
    keys: str | None = Field(
        default=None,
        description="The keys file (`weft keys add`), local or s3://; null: no authentication.",
    )
    clip_in_ingress: bool = Field(
        default=True,
        description="Run the CLIP in the ingress replica, so embeddings and search queries "
        "skip a hop between replicas (measured: docs/serving.md); false: a deployment of its "
        "own, scaled on its own.",
    )
    batching: Batching = Field(
        default=Batching(), description="How CLIP and captioner replicas batch requests."
    )
    safety: NsfwSpec | None = Field(
        default=NsfwSpec(),
        description="The NSFW check generated images pass before they are returned (the "
        "curation's labels and threshold); null: none.",
    )
    max_body_bytes: int = Field(
        default=16 << 20, ge=1024, description="Largest request body, whatever its encoding."
    )
    body_timeout_s: float = Field(
        default=10, gt=0, description="Time for a request's whole body to arrive (else 408)."
    )
    timeout_s: float = Field(
        default=60,
        gt=0,
        description="Time to answer a request once its body is in (else 503, Retry-After); "
        "below the Serve config's http_options.request_timeout_s.",
    )
    docs: bool = Field(default=True, description="Serve /docs and /openapi.json.")
    jobs_address: str | None = Field(
        default=None,
        pattern=r"^https?://[^/?#\s]+/?$",
        description="The Ray job API that POST /v1/train/jobs submits to; null: that of the "
        "cluster the app runs in.",
    )
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^/?#\s]+(/[^?#\s]*)?$",
        description="The app's address as callers reach it (https://weft.example.com), the "
        "base of the `image_url`s it returns; null: URLs relative to the host.",
    )
    pinned: dict[str, str] = Field(
        default={},
        description="role → version: what the aliases named when `weft serve` last deployed "
        "(set by it; a change makes Serve roll the app to those versions).",
    )

    @property
    def refs(self) -> dict[str, str]:
        """role → the model reference the app serves for it."""
        given = {
            "clip": self.clip,
            "captioner": self.captioner,
            "diffusion": self.diffusion,
            "inspector": self.inspector,
        }
        return {role: ref for role, ref in given.items() if ref is not None}

    def deployments(self) -> set[str]:
        """The deployments the app makes for these args: what a Serve config's
        `deployments` may name."""
        models = {r for r in self.refs if not (r == "clip" and self.clip_in_ingress)}
        search = {"search"} if self.index is not None else set()
        safety = {"safety"} if self.safety is not None and self.diffusion is not None else set()
        return {"ingress"} | models | search | safety

    def resolved(self) -> dict[str, ModelVersion]:
        """role → the version served: the pinned one, else what the reference names now."""
        return {
            role: resolve(by_number(ref, self.pinned[role]) if role in self.pinned else ref)
            for role, ref in self.refs.items()
        }


def by_number(ref: str, version: str) -> str:
    """`name@alias` (or `name/3`) as `name/<version>`."""
    name = ref.removeprefix("models:/").split("@")[0].split("/")[0]
    return f"{name}/{version}"
