"""Annotated dependency aliases for the routers.

The providers are ``async def`` although they do no I/O: FastAPI runs a plain ``def`` dependency in the
thread pool, a thread hop per dependency per request.
"""

from __future__ import annotations

from typing import Annotated

from edgekit.server.db import Database
from edgekit.server.settings import Settings
from edgekit.server.state import AppState
from edgekit.server.store import Store
from edgekit.server.worker import Worker
from fastapi import Depends, Request


async def get_state(request: Request) -> AppState:
    return request.app.state.edgekit


async def get_settings(state: Annotated[AppState, Depends(get_state)]) -> Settings:
    return state.settings


async def get_db(state: Annotated[AppState, Depends(get_state)]) -> Database:
    return state.db


async def get_store(state: Annotated[AppState, Depends(get_state)]) -> Store:
    return state.store


async def get_worker(state: Annotated[AppState, Depends(get_state)]) -> Worker:
    return state.worker


StateDep = Annotated[AppState, Depends(get_state)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
DbDep = Annotated[Database, Depends(get_db)]
StoreDep = Annotated[Store, Depends(get_store)]
WorkerDep = Annotated[Worker, Depends(get_worker)]
