"""Who runs a long action (a storage sweep, a console job) and whether that process is still alive."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from typing import Any

from archive.catalogue.types import utcnow


def owner() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def alive(owner: dict[str, Any], last_seen: datetime, lease: timedelta) -> bool:
    """On this host, whether the owner's pid exists (this very process does not count: the caller knows its own
    work); on another (a container killed and replaced has another hostname), whether it was seen within ``lease``.
    """
    pid = owner.get("pid")
    if owner.get("host") != socket.gethostname():
        return bool(utcnow() - last_seen < lease)
    if not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
