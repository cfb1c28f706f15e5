"""Run one API process with uvicorn, and start the work that must not delay its first answer once it listens.

`archive serve` is ready when /healthz answers (issue 17: within 3 s). The signer's check (the signing libraries and
the key: ~1.3 s), scan resumption and the embedded indexer used to run before uvicorn bound its socket, and as
threads beside the start-up they competed with it for the interpreter. They now start from :class:`Server` once the
socket listens; until the signer's check is done /readyz says so (archive.signer_status.BackgroundCheck).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import uvicorn
from uvicorn.main import STARTUP_FAILURE

if TYPE_CHECKING:
    import socket

log = logging.getLogger(__name__)


class Server(uvicorn.Server):
    """uvicorn's server, calling ``after_listen`` (in order, on the event loop: each must return at once, starting
    a thread for its work) once its sockets listen."""

    def __init__(self, config: uvicorn.Config, after_listen: Sequence[Callable[[], object]] = ()) -> None:
        super().__init__(config)
        self.after_listen = list(after_listen)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.should_exit:  # the socket could not be bound: nothing listens
            return
        for start in self.after_listen:
            try:
                start()
            except Exception:  # one failing start must not keep the others (or the service) from running
                log.exception("start-up task %s failed", getattr(start, "__name__", start))


def run(app: Any, host: str, port: int, log_level: str, after_listen: Sequence[Callable[[], object]] = ()) -> None:
    """``uvicorn.run(app, …)`` for one process (our access log replaces uvicorn's), with ``after_listen``."""
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, log_level=log_level)
    server = Server(config, after_listen)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:  # as uvicorn.run: a port already in use is a failed start
        sys.exit(STARTUP_FAILURE)
