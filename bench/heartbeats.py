"""Shell: device heartbeats — `python -m bench.heartbeats PORT DEVICES PERIOD FANOUT [STOPS]`.

Publishes every device's retained `status` once per PERIOD seconds, spread evenly, QoS 1, from
one client speaking for all device ids (the service sees messages, not connections).
"""

from __future__ import annotations

import sys
import time

from bench import network
from bench.mqtt_client import connect

STATUS = b'{"v":1,"online":true}'


def main(
    port: int,
    devices: int,
    period: float,
    fanout: int,
    stops_per_line: int = network.STOPS_PER_LINE,
) -> None:
    """Heartbeat until killed (the devices of `network.build(devices, fanout, stops_per_line)`)."""
    ids = network.build(devices, fanout, stops_per_line).device_ids()
    topics = [f"carpool/v1/{line}/{folder}/{device}/status" for line, folder, device in ids]
    client = connect(port, "bench-heartbeats")
    interval = period / len(topics)
    started = time.perf_counter()
    sent = 0
    while True:
        due = started + sent * interval
        ahead = due - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)
        client.publish(topics[sent % len(topics)], STATUS, qos=1, retain=True)
        sent += 1


if __name__ == "__main__":
    stops = int(sys.argv[5]) if len(sys.argv) > 5 else network.STOPS_PER_LINE
    main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), stops)
