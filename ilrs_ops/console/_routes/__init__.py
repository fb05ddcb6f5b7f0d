"""One router per resource; ``ROUTERS`` is what the app includes."""

from ilrs_ops.console._routes import (
    alarms,
    commands,
    events,
    health,
    instruments,
    links,
    live,
    me,
    metrics,
    packets,
    page,
    profiles,
    replays,
    search,
    status,
)

ROUTERS = [
    health.router,
    status.router,
    me.router,
    instruments.router,
    events.router,
    packets.router,
    search.router,
    metrics.router,
    links.router,
    live.router,
    alarms.router,
    alarms.audit_router,
    profiles.router,
    replays.router,
    commands.router,
    page.router,
]
