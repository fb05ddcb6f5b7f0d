"""``python -m ilrs_ops.console``: the console alone, configured by ILRS_CONSOLE_* variables."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ilrs_ops.console._serve import serve
from ilrs_ops.console._settings import ConsoleSettings


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = ConsoleSettings()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings, capture_signals=True))


if __name__ == "__main__":
    main()
