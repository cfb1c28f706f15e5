"""The people's web UI (柜面、扫描室 …): server-rendered pages (Jinja2 + htmx) over the same domain services as the
API and the CLI. No business rule lives in a view or a template; views translate a form into a service call and
its result into a page. See docs/decisions/0017-web-ui.md.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI

from archive.web import assets, errors
from archive.web.session import check_csrf


def install(app: FastAPI) -> None:
    from archive.web.routes import (
        admin,
        appraisal,
        audit,
        auth,
        cases,
        checks,
        dashboard,
        dq,
        filing,
        home,
        imports,
        jobs,
        lending,
        retention,
        scans,
        search,
        transfers,
    )

    app.include_router(assets.router)
    app.include_router(home.site)
    app.include_router(auth.router)
    for module in (home, cases, filing, scans, jobs, search, appraisal, retention, lending, transfers, checks, audit,
                   admin, dashboard, dq, imports):  # every state change under /ui carries the session's CSRF token
        app.include_router(module.router, dependencies=[Depends(check_csrf)])
    errors.install(app)
