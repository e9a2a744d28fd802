"""The process's Prometheus metrics (not in the OpenAPI document)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from interfaces.api.deps import ServicesDep

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def metrics(services: ServicesDep) -> Response:
    return Response(
        generate_latest(services.vigil.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
