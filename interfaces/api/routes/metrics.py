"""The process's Prometheus metrics (not in the OpenAPI document), only to a scraper that
presents ``VIGIL_METRICS_TOKEN`` as its bearer token; without one configured the API does not
serve them (``VIGIL_METRICS_PORT`` serves them on their own bind address)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from interfaces.api.deps import ServicesDep
from interfaces.api.guard import client_source

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def metrics(
    request: Request,
    services: ServicesDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    expected = services.vigil.settings.metrics_token.get_secret_value()
    if not expected:
        raise HTTPException(404, "Not Found")
    source = client_source(request)
    services.guard.check(source)
    given = (authorization or "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        services.guard.failed(source, "metrics token", where="GET /metrics")
        raise HTTPException(401, "a scrape token is required", {"WWW-Authenticate": "Bearer"})
    return Response(
        generate_latest(services.vigil.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
