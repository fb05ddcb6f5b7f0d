"""One router per resource; ``ROUTERS`` is what the app includes."""

from ilrs_ops.console._routes import events, health, instruments, live, metrics, status

ROUTERS = [
    health.router,
    status.router,
    instruments.router,
    events.router,
    metrics.router,
    live.router,
]
