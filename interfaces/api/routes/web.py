"""The reviewers' web page (``interfaces/api/web``): the page itself, its static files, and the
Content-Security-Policy it is served under."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

WEB = Path(__file__).parent.parent / "web"
PAGE_CSP = (
    "default-src 'self'; media-src 'self' blob:; img-src 'self' data:; object-src 'none';"
    " base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

router = APIRouter()


@router.get("/", include_in_schema=False, response_class=HTMLResponse)
def index() -> HTMLResponse:
    page = WEB / "index.html"
    if not page.exists():
        return HTMLResponse("<h1>Vigil</h1><p>The web page is not installed.</p>")
    return HTMLResponse(page.read_text(encoding="utf-8"))


def mount_static(api: FastAPI) -> None:
    """Serve the page's static files under ``/static`` (a router cannot carry a mount)."""
    if WEB.is_dir():
        api.mount("/static", StaticFiles(directory=WEB / "static"), name="static")
