"""/dashboard: placeholder until the HTML dashboard lands."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["dashboard"])
