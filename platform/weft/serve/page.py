"""The search page and dataset explorer at `/`: static HTML, CSS and JavaScript kept in the
package (`weft/serve/page/`), read once, served by the ingress itself. They hold no data and
need no key (the gate lets PUBLIC_FIELD routes through); the page asks for a key, keeps it
in the browser's session storage, and sends it as `Authorization` on every API call, so it
never appears in a URL. (No `from __future__ import annotations` here: FastAPI reads the
routes' annotations at run time.)"""

from importlib.resources import files

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from weft.serve.gate import PUBLIC_FIELD

router = APIRouter()
TYPES = {
    "index.html": "text/html; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
}
FILES = {name: (files("weft.serve") / "page" / name).read_bytes() for name in TYPES}
HEADERS = {
    # Nothing from elsewhere: scripts, styles and API calls from this app only; images also
    # as the blob: URLs the page makes of the thumbnails it fetched with the key.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; "
    "object-src 'none'; base-uri 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
PUBLIC = {PUBLIC_FIELD: True}


@router.get("/", include_in_schema=False, openapi_extra=PUBLIC)
async def page(request: Request) -> Response:
    """The page, with its base set to the app's root (behind a route prefix too)."""
    root = request.scope.get("root_path", "").rstrip("/") + "/"
    body = FILES["index.html"].replace(b"{{root}}", root.encode())
    return Response(body, media_type=TYPES["index.html"], headers=HEADERS)


@router.get("/ui/{name}", include_in_schema=False, openapi_extra=PUBLIC)
async def asset(name: str) -> Response:
    if name not in FILES or name == "index.html":
        raise HTTPException(404, f"{name}: no such file of the page")
    return Response(FILES[name], media_type=TYPES[name], headers=HEADERS)
