"""How the ingress's routes call the deployments behind it: an answer, or a 503 that says
when to try again; and the search deployment, which the routes beyond `app.py` find on the
app's state."""

from collections.abc import Awaitable
from typing import TypeVar

from fastapi import HTTPException, Request
from ray.exceptions import RayActorError
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError
from ray.serve.handle import DeploymentHandle

from weft.serve import telemetry
from weft.serve.gate import RETRY_AFTER_S

T = TypeVar("T")


async def ask(response: Awaitable[T]) -> T:
    """A deployment's answer; one that is overloaded, restarting or gone is a 503 that says
    when to try again (the gate's time limit covers one that is slow)."""
    try:
        return await response
    except (BackPressureError, DeploymentUnavailableError, RayActorError) as err:
        telemetry.log.warning("a deployment could not answer: %s", type(err).__name__)
        raise HTTPException(
            503,
            "the model is busy or restarting; try again shortly",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        ) from None


def search_index(request: Request) -> DeploymentHandle:
    """The app's search deployment; a 503 in an app that serves none."""
    handle: DeploymentHandle | None = request.app.state.search
    if handle is None:
        raise HTTPException(503, "this app serves no search index (args.index is null)")
    return handle


def base_url(request: Request) -> str:
    """What the app's own URLs in an answer start with: `args.public_url`, else nothing (a
    path from the root), and the proxy's root path."""
    public: str = request.app.state.public_url or ""
    return public.rstrip("/") + request.scope.get("root_path", "")
