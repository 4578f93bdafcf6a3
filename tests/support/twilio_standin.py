"""Test support: a local HTTP server standing in for Twilio's Messages REST API, and signing."""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import httpx
from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "test-auth-token-0123456789"
FROM_NUMBER = "+33700000001"


def sign(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    """X-Twilio-Signature as Twilio computes it (the twilio library's own code)."""
    signature: str = RequestValidator(token).compute_signature(url, params)
    return signature


@dataclass(frozen=True)
class ReceivedSms:
    """One POST the stand-in received."""

    path: str
    username: str
    password: str
    to: str
    from_: str
    body: str
    status_callback: str | None


@dataclass
class TwilioStandIn:
    """Answers `POST /2010-04-01/Accounts/{sid}/Messages.json` like Twilio (201 + JSON)."""

    failures: list[int] = field(default_factory=list)  # statuses to answer first, in order
    received: list[ReceivedSms] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        """What CARPOOL_TWILIO_API_BASE must be."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        """Listen on a free port in a thread."""
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                standin._answer(self)

            def log_message(self, *_args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def bodies_to(self, number: str) -> list[str]:
        """Texts sent to one number so far."""
        with self._lock:
            return [sms.body for sms in self.received if sms.to == number]

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length", "0"))
        form = {k: v[-1] for k, v in parse_qs(handler.rfile.read(length).decode()).items()}
        auth = handler.headers.get("Authorization", "")
        username, _, password = (
            base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")
            if auth.startswith("Basic ")
            else ("", "", "")
        )
        with self._lock:
            failure = self.failures.pop(0) if self.failures else None
            if failure is None:
                self.received.append(
                    ReceivedSms(
                        path=handler.path,
                        username=username,
                        password=password,
                        to=form.get("To", ""),
                        from_=form.get("From", ""),
                        body=form.get("Body", ""),
                        status_callback=form.get("StatusCallback"),
                    )
                )
        expected = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
        if failure is None and (handler.path != expected or password != AUTH_TOKEN):
            failure = 401
        if failure is not None:
            payload: dict[str, Any] = {"code": 20003, "message": "refused", "status": failure}
            self._reply(handler, failure, payload)
            return
        payload = {
            "sid": "SM" + uuid.uuid4().hex,
            "account_sid": ACCOUNT_SID,
            "to": form.get("To"),
            "from": form.get("From"),
            "body": form.get("Body"),
            "status": "queued",
            "num_segments": "1",
        }
        self._reply(handler, 201, payload)

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)


PUBLIC_URL_FOR_TESTS = "https://carpool.example"


def twilio_env(api_base: str, salt: str, public_url: str = PUBLIC_URL_FOR_TESTS) -> dict[str, str]:
    """The service's settings for Twilio mode against a stand-in at `api_base`."""
    return {
        "CARPOOL_SMS_PROVIDER": "twilio",
        "CARPOOL_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "CARPOOL_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "CARPOOL_TWILIO_FROM": FROM_NUMBER,
        "CARPOOL_TWILIO_API_BASE": api_base,
        "CARPOOL_PUBLIC_URL": public_url,
        "CARPOOL_PHONE_HASH_SALT": salt,
    }


def text_as_twilio(
    base_url: str, body: str, sender: str, public_url: str = PUBLIC_URL_FOR_TESTS
) -> str:
    """POST a signed SMS to the service as Twilio would; return the TwiML reply's message."""
    params = {"MessageSid": "SM" + uuid.uuid4().hex, "From": sender, "To": FROM_NUMBER}
    params["Body"] = body
    response = httpx.post(
        f"{base_url}/sms/twilio",
        data=params,
        headers={"X-Twilio-Signature": sign(public_url + "/sms/twilio", params)},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    found = re.search(r"<Message>(.*)</Message>", response.text, re.S)
    return found.group(1) if found else ""
