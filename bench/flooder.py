"""Shell: one device flooding its own status — `python -m bench.flooder PORT LINE SIGN`.

Publishes offline and online in turn for one sign, QoS 0, at FLOOD_RATE messages a second (400
times what the service lets one device send), on that sign's own topic — what a broken or
hostile device on its own account can do — until killed.
"""

from __future__ import annotations

import sys
import time

from bench.mqtt_client import connect

PAYLOADS = (b'{"v":1,"online":false}', b'{"v":1,"online":true}')
FLOOD_RATE = 2000.0
BATCH = 20


def main(port: int, line_id: str, sign_id: str) -> None:
    """Flood until killed."""
    client = connect(port, "bench-flooder")
    topic = f"carpool/v1/{line_id}/signs/{sign_id}/status"
    started = time.perf_counter()
    sent = 0
    while True:
        for _ in range(BATCH):
            client.publish(topic, PAYLOADS[sent % 2], qos=0)
            sent += 1
        ahead = started + sent / FLOOD_RATE - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3])
