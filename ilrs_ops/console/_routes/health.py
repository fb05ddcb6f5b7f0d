"""Liveness, for anyone: no token needed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ilrs_ops.console._deps import StateDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(state: StateDep) -> dict[str, Any]:
    """The console is up; ``broker_connected`` says whether live state is flowing."""
    return {"status": "ok", "broker_connected": state.connected}
