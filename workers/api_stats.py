"""Supervision statistics over HTTP (the same reports as ``vigil stats``), for supervisors and
auditors; mounted by ``workers.api.create_api``."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
