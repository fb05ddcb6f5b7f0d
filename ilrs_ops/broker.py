"""The embedded MQTT broker (amqtt, MQTT 3.1.1) for the zero-setup default: no Mosquitto needed.

Real deployments use Mosquitto, EMQX or HiveMQ; this one serves `ilrs-ops up` on a laptop.
"""

from __future__ import annotations

import logging
from types import TracebackType

from amqtt.broker import Broker
from amqtt.errors import AMQTTError

from ilrs_ops.errors import BrokerError

log = logging.getLogger(__name__)


class _LateAcks(logging.Filter):
    """amqtt waits a fixed 5 s for a subscriber's PUBACK, then logs a warning, a traceback and
    later one line per acknowledgement that came after all. A subscriber that acknowledges
    late (the ingest's first commit while Numba compiles) has its message all the same: one
    warning says so, and ``late`` counts them. Also the two warnings amqtt logs for an MQTT 5
    client it refuses (it speaks 3.1.1): the clients of ilrs-ops fall back and say so once."""

    def __init__(self) -> None:
        super().__init__()
        self.late = 0

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if text.startswith("Invalid connection from") or (
            text.startswith("Failed to initialize client session: Invalid protocol")
            and text.endswith(": 5")
        ):
            # An MQTT 5 client, refused: ours fall back to 3.1.1 and say so themselves.
            log.debug("embedded broker (MQTT 3.1.1 only): %s", text)
            return False
        if "PUBACK" not in text and "Timeout waiting for PUBACK" not in str(record.exc_info):
            return True
        if text.startswith("Timeout waiting for PUBACK"):
            self.late += 1
            if self.late == 1:
                log.warning(
                    "embedded broker: a subscriber acknowledged later than amqtt's fixed 5 s "
                    "(the delivery stands; further late acknowledgements are counted, not logged)"
                )
        return False


LATE_ACKS = _LateAcks()


class EmbeddedBroker:
    """An in-process MQTT broker bound to ``host:port`` while the context is open."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.host = host
        self.port = port
        self._broker: Broker | None = None

    async def __aenter__(self) -> EmbeddedBroker:
        # amqtt logs every packet at INFO; that is noise for operators.
        logging.getLogger("amqtt").setLevel(logging.WARNING)
        for name in ("amqtt.broker", "amqtt.mqtt.protocol.handler"):
            if LATE_ACKS not in logging.getLogger(name).filters:
                logging.getLogger(name).addFilter(LATE_ACKS)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        try:
            self._broker = Broker(config)
            await self._broker.start()
        except (AMQTTError, OSError) as exc:
            raise BrokerError(
                f"cannot start the embedded broker on {self.host}:{self.port}: {exc}; "
                "is another broker listening there? pass --broker to use it"
            ) from exc
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None
