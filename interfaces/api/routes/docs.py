"""The API's interactive documentation at ``/docs``: Swagger UI, served from the
``swagger-ui-bundle`` package's own files, never from a CDN, and started by a script file of
ours, never an inline one; so the page runs under a CSP that allows only this origin (plus the
inline styles Swagger UI sets on its elements). ReDoc is not served."""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle  # type: ignore[import-untyped]
from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS = Path(swagger_ui_bundle.swagger_ui_path)
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline';"
    " object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""``/docs`` only: the page's CSP, plus inline styles (Swagger UI sets style attributes)."""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>Vigil API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" href="/docs/assets/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"""
INIT = """window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
});
"""

router = APIRouter()


@router.get("/docs", include_in_schema=False, response_class=HTMLResponse)
def docs() -> HTMLResponse:
    return HTMLResponse(PAGE, headers={"Content-Security-Policy": DOCS_CSP})


@router.get("/docs/init.js", include_in_schema=False)
def docs_init() -> Response:
    return Response(INIT, media_type="text/javascript")


def mount_docs(api: FastAPI) -> None:
    """Serve Swagger UI's files under ``/docs/assets`` (a router cannot carry a mount)."""
    api.mount("/docs/assets", StaticFiles(directory=ASSETS), name="docs-assets")
