"""Request bodies bounded on every route: FastAPI reads a JSON body whole, before any token is
checked, so without a bound anyone could make the console buffer gigabytes."""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ilrs_ops.console._errors import TooLargeError

MAX_BODY = 1024 * 1024  # profile uploads have their own, smaller bound


class BodyLimit:
    """ASGI middleware: 413 for a declared Content-Length over ``limit``; a body sent without
    one is counted as it comes and cut off (TooLargeError) once over."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                detail = f"body larger than {self.limit // 1024} KiB"
                await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)
                return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise TooLargeError(f"body larger than {self.limit // 1024} KiB")
            return message

        await self.app(scope, counted, send)
