"""Adapter: Twilio — the only module importing the twilio library (REST sender, signatures).

Sending is asynchronous for the engine: `send` puts the message in a bounded queue and returns;
worker tasks drain it, each running the blocking REST call in a thread, retrying transient
failures with capped backoff. A slow or failing provider never blocks dispatch; a full queue or
a permanent refusal drops the message with a log line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import structlog
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from sms_gateway.sender import OutgoingSms, masked

log = structlog.get_logger(__name__)

SentCallback = Callable[[str, str], None]


def signature_is_valid(
    auth_token: str, url: str, params: Mapping[str, str], signature: str | None
) -> bool:
    """True when `signature` is Twilio's X-Twilio-Signature of `url` and `params`."""
    if not auth_token or not signature:
        return False
    try:
        return bool(RequestValidator(auth_token).validate(url, dict(params), signature))
    except Exception:
        return False


@dataclass(frozen=True, slots=True)
class TwilioAccount:
    """Where and as whom to send."""

    account_sid: str
    auth_token: str
    from_number: str
    api_base: str = "https://api.twilio.com"
    status_callback: str | None = None


class TwilioSender:
    """Sends through Twilio's Messages REST API, off the event loop."""

    def __init__(
        self,
        account: TwilioAccount,
        queue_size: int = 1000,
        workers: int = 2,
        max_attempts: int = 4,
        first_retry_delay: float = 0.5,
        max_retry_delay: float = 30.0,
        request_timeout: float = 10.0,
        on_sent: SentCallback | None = None,
    ) -> None:
        self._account = account
        self._queue: asyncio.Queue[OutgoingSms] = asyncio.Queue(maxsize=queue_size)
        self._workers = workers
        self._max_attempts = max_attempts
        self._first_retry_delay = first_retry_delay
        self._max_retry_delay = max_retry_delay
        self._request_timeout = request_timeout
        self._on_sent = on_sent
        self._threads: ThreadPoolExecutor | None = None
        self.sent = 0
        self.dropped = 0

    def send(self, message: OutgoingSms) -> None:
        """Queue a message; drop it (logged) when the queue is full."""
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped += 1
            log.error("sms.dropped", reason="queue_full", ref=message.ref, to=masked(message.to))

    async def run(self) -> None:
        """Deliver queued messages until cancelled.

        The blocking REST calls get threads of their own: a hung provider must never take the
        shared pool that database writes run in.
        """
        self._threads = ThreadPoolExecutor(self._workers, thread_name_prefix="twilio")
        try:
            async with asyncio.TaskGroup() as group:
                for index in range(self._workers):
                    group.create_task(self._work(self._client()), name=f"twilio-sender-{index}")
        finally:
            self._threads.shutdown(wait=False, cancel_futures=True)

    def _client(self) -> Client:
        account = self._account
        client = Client(
            account.account_sid,
            account.auth_token,
            http_client=TwilioHttpClient(timeout=self._request_timeout),
        )
        client.api.base_url = account.api_base.rstrip("/")
        return client

    async def _work(self, client: Client) -> None:
        while True:
            message = await self._queue.get()
            try:
                await self._deliver(client, message)
            finally:
                self._queue.task_done()

    async def _deliver(self, client: Client, message: OutgoingSms) -> None:
        delay = self._first_retry_delay
        for attempt in range(1, self._max_attempts + 1):
            try:
                loop = asyncio.get_running_loop()
                sid, status = await loop.run_in_executor(
                    self._threads, self._create, client, message
                )
            except TwilioRestException as exc:
                permanent = 400 <= exc.status < 500 and exc.status != 429
                log.warning(
                    "sms.send_failed",
                    ref=message.ref,
                    status=exc.status,
                    attempt=attempt,
                    error=str(exc.msg)[:200],
                )
                if permanent:
                    break
            except Exception as exc:
                log.warning(
                    "sms.send_failed", ref=message.ref, attempt=attempt, error=str(exc)[:200]
                )
            else:
                self.sent += 1
                log.info("sms.sent", ref=message.ref, to=masked(message.to), sid=sid)
                if self._on_sent is not None:
                    self._on_sent(sid, status)
                return
            if attempt < self._max_attempts:
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_retry_delay)
        self.dropped += 1
        log.error("sms.dropped", reason="send_failed", ref=message.ref, to=masked(message.to))

    def _create(self, client: Client, message: OutgoingSms) -> tuple[str, str]:
        account = self._account
        created = client.messages.create(
            to=message.to,
            from_=account.from_number,
            body=message.body,
            status_callback=account.status_callback,
        )
        return str(created.sid), str(created.status)
