"""Times as people read them: in the center's zone (ARCHIVE_TIMEZONE), with the zone shown."""

from __future__ import annotations

from datetime import datetime, tzinfo


def local_time(at: datetime | str | None, zone: tzinfo) -> str:
    """``2026-12-03 13:45:10（UTC+08:00）``: the one way every printed document shows a time.

    An ISO 8601 string (as stored in a transfer register) is converted too; anything else is shown as given.
    """
    if isinstance(at, str):
        try:
            parsed = datetime.fromisoformat(at)
        except ValueError:
            return at
        return local_time(parsed, zone)
    if at is None:
        return ""
    if at.tzinfo is None:
        return f"{at:%Y-%m-%d %H:%M:%S}"  # zone unknown: say nothing rather than guess
    local = at.astimezone(zone)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M:%S}（UTC{offset[:3]}:{offset[3:]}）"
