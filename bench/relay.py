"""Shell: the baseline — a bare aiomqtt echo relay and heartbeat consumer, nothing else.

`python -m bench.relay PORT FANOUT`: every message on `bench/in/{line}/{stop}/{kind}` is
republished, QoS 1 and retained, to `FANOUT` topics `bench/out/{line}/{stop}/{k}` with a payload
shaped and sized like a sign display (blank for a `cancel`), the publishes of one fan-out sent
concurrently; messages on `bench/hb/#` are only counted. Same library, socket options and QoS as
the service: what is left is the broker's two hops and Python's bare minimum.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time

import aiomqtt

QOS = 1
IN_FILTER = "bench/in/#"
HEARTBEAT_FILTER = "bench/hb/#"
READY_TOPIC = "bench/relay/status"


def display_payload(lit: bool) -> bytes:
    """A payload of a sign display's shape and size."""
    seq = int(time.time() * 1000)
    pages = '[["COVOITURAGE","TERMINUS 12"]]' if lit else "[]"
    stamp = "2026-11-23T06:46:30.120000Z"
    return f'{{"v":1,"seq":{seq},"pages":{pages},"expires_at":"{stamp}"}}'.encode()


async def _fan_out(client: aiomqtt.Client, topic: str, fanout: int) -> None:
    _, _, line, stop, kind = topic.split("/", 4)
    payload = display_payload(kind != "cancel")
    await asyncio.gather(
        *(
            client.publish(f"bench/out/{line}/{stop}/{k}", payload, qos=QOS, retain=True)
            for k in range(fanout)
        )
    )


async def main(port: int, fanout: int) -> None:
    """Relay until killed."""
    nodelay = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    tasks: set[asyncio.Task[None]] = set()
    consumed = 0
    async with aiomqtt.Client(
        "127.0.0.1", port, identifier=f"bench-relay-{port}", socket_options=[nodelay]
    ) as client:
        await client.subscribe([(IN_FILTER, QOS), (HEARTBEAT_FILTER, QOS)])
        await client.publish(READY_TOPIC, b'{"online":true}', qos=QOS, retain=False)
        async for message in client.messages:
            topic = message.topic.value
            if topic.startswith("bench/hb/"):
                consumed += 1
                continue
            task = asyncio.create_task(_fan_out(client, topic, fanout))
            tasks.add(task)
            task.add_done_callback(tasks.discard)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
