"""The audit log's one writer: called by every staff, manager and editor service inside its transaction."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from events.models import AuditEntry, utcnow


def _jsonable(value: Any) -> Any:
    """Datetimes as ISO strings and enums as their values, at any depth (the log is JSON)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    return value


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """``{field: [before, after]}`` for the fields whose value changed."""
    return {
        name: [_jsonable(before.get(name)), _jsonable(value)]
        for name, value in after.items()
        if before.get(name) != value
    }


async def audit_log(
    session: AsyncSession,
    *,
    actor_id: int | None,
    action: str,
    object_type: str,
    object_id: int | None,
    association_id: int | None = None,
    changes: dict[str, Any] | None = None,
) -> None:
    """Append one entry. The caller's transaction commits it together with the change it describes."""
    await session.execute(insert(AuditEntry), {
        "actor_id": actor_id, "action": action, "object_type": object_type, "object_id": object_id,
        "association_id": association_id,
        "changes": {key: _jsonable(value) for key, value in (changes or {}).items()},
        "created_at": utcnow(),
    })
