"""Shell: sign-in by a one-time code texted to the number — send, limits, exchange for a token.

Rules (each tunable in settings):
- `send_code`: a 6-digit code goes by SMS through the service's sender (console or Twilio;
  numbers that wrote STOP are dropped there, and the answer does not say so). One code per
  number every `resend_window`, at most `hourly_limit` an hour: beyond, `TooSoon` with the
  seconds to wait. A new code closes the number's older ones: only the newest works.
- `exchange`: the newest live code of the number, within `code_lifetime`, gets a token; each
  try takes one of `max_attempts` (taken atomically in the database, so concurrent guesses
  cannot exceed it); the last wrong one closes the code.
- Stored: the number's salted hash, the code's hash salted with its challenge id, never either
  in clear; codes are compared in constant time.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import delete, update
from sqlalchemy.engine import CursorResult, Engine
from sqlmodel import Session, col, select

from line_service.accounts.book import AccountBook, AccountRole, IssuedToken
from line_service.storage.account_tables import SignInChallengeRecord
from line_service.storage.store import as_utc
from sms_gateway.sender import OutgoingSms, SmsSender, masked

log = structlog.get_logger(__name__)

CODE_DIGITS = 6
SIGN_IN_REF = "sign-in"  # the `ref` of the texts that carry a code (logs, the demo)
CHALLENGE_KEPT = timedelta(hours=1)  # the hourly limit counts them; older ones are deleted


def code_in_text(body: str) -> str | None:
    """The code a sign-in text carries (what a phone's auto-fill reads; the demo too)."""
    found = re.search(rf"\b(\d{{{CODE_DIGITS}}})\b", body)
    return found.group(1) if found else None


def code_text(code: str, minutes: int) -> str:
    """The SMS that carries a sign-in code (French, GSM-7: one segment)."""
    return (
        f"Covoiturage: votre code de connexion est {code} (valable {minutes} min). "
        "Ne le donnez à personne."
    )


@dataclass(frozen=True, slots=True)
class SignInRules:
    """How long a code lives, how many tries it allows, how often a number may get one."""

    code_lifetime: timedelta = timedelta(minutes=5)
    max_attempts: int = 5
    resend_window: timedelta = timedelta(seconds=60)
    hourly_limit: int = 5
    token_lifetime: timedelta = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class CodeSent:
    """A code was texted (unless the number opted out: the caller is not told)."""

    expires_in: timedelta


@dataclass(frozen=True, slots=True)
class TooSoon:
    """No new code for this number yet."""

    retry_after_seconds: int


@dataclass(frozen=True, slots=True)
class CodeRefused:
    """The code did not open a session; `attempts_left` on the live code (0: ask again)."""

    reason: str
    attempts_left: int


class SignIn:
    """Sends codes and exchanges them for account tokens."""

    def __init__(
        self,
        engine: Engine,
        sender: SmsSender,
        hasher: Callable[[str], str],
        clock: Callable[[], datetime],
        rules: SignInRules = SignInRules(),
        book: AccountBook | None = None,
    ) -> None:
        self._engine = engine
        self._sender = sender
        self._hasher = hasher
        self._clock = clock
        self.rules = rules
        self.book = book or AccountBook(engine)

    async def send_code(self, phone: str, role: AccountRole) -> CodeSent | TooSoon:
        """Text a fresh code to `phone` (E.164), or say how long to wait."""
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        opened = await asyncio.to_thread(self._open, self._hasher(phone), role, code, self._clock())
        if isinstance(opened, TooSoon):
            log.info("sign_in.too_soon", to=masked(phone), retry_after=opened.retry_after_seconds)
            return opened
        minutes = max(1, round(self.rules.code_lifetime.total_seconds() / 60))
        self._sender.send(OutgoingSms(phone, code_text(code, minutes), SIGN_IN_REF))
        log.info("sign_in.code_sent", to=masked(phone), role=role.value)
        return opened

    async def exchange(self, phone: str, code: str) -> IssuedToken | CodeRefused:
        """A token for `phone` when `code` is its live code; else why not."""
        return await asyncio.to_thread(self._exchange, phone, code, self._clock())

    def _open(
        self, phone_hash: str, role: AccountRole, code: str, now: datetime
    ) -> CodeSent | TooSoon:
        rules = self.rules
        with Session(self._engine) as session:
            session.execute(
                delete(SignInChallengeRecord).where(
                    col(SignInChallengeRecord.created_at) < now - CHALLENGE_KEPT
                )
            )
            recent = sorted(
                as_utc(row.created_at)
                for row in session.exec(
                    select(SignInChallengeRecord).where(
                        SignInChallengeRecord.phone_hash == phone_hash
                    )
                ).all()
            )
            wait = _wait(recent, now, rules)
            if wait is not None:
                session.commit()
                return TooSoon(wait)
            session.execute(
                update(SignInChallengeRecord)
                .where(col(SignInChallengeRecord.phone_hash) == phone_hash)
                .values(closed=True)
            )
            challenge_id = uuid.uuid4().hex
            session.add(
                SignInChallengeRecord(
                    id=challenge_id,
                    phone_hash=phone_hash,
                    role=role.value,
                    code_hash=_code_hash(challenge_id, code),
                    created_at=now,
                    expires_at=now + rules.code_lifetime,
                )
            )
            session.commit()
        return CodeSent(rules.code_lifetime)

    def _exchange(self, phone: str, code: str, now: datetime) -> IssuedToken | CodeRefused:
        rules = self.rules
        with Session(self._engine) as session:
            challenge = session.exec(
                select(SignInChallengeRecord)
                .where(
                    SignInChallengeRecord.phone_hash == self._hasher(phone),
                    col(SignInChallengeRecord.closed).is_(False),
                    col(SignInChallengeRecord.expires_at) > now,
                )
                .order_by(col(SignInChallengeRecord.created_at).desc())
            ).first()
            if challenge is None:
                return CodeRefused("no live code for this number: ask for a new one", 0)
            taken = session.execute(
                update(SignInChallengeRecord)
                .where(
                    col(SignInChallengeRecord.id) == challenge.id,
                    col(SignInChallengeRecord.closed).is_(False),
                    col(SignInChallengeRecord.attempts) < rules.max_attempts,
                )
                .values(attempts=col(SignInChallengeRecord.attempts) + 1)
            )
            if cast(CursorResult[Any], taken).rowcount != 1:
                session.commit()
                return CodeRefused("no live code for this number: ask for a new one", 0)
            attempts = session.exec(
                select(SignInChallengeRecord.attempts).where(
                    SignInChallengeRecord.id == challenge.id
                )
            ).one()
            right = hmac.compare_digest(_code_hash(challenge.id, code), challenge.code_hash)
            if right or attempts >= rules.max_attempts:
                session.execute(
                    update(SignInChallengeRecord)
                    .where(col(SignInChallengeRecord.id) == challenge.id)
                    .values(closed=True)
                )
            session.commit()
            role = AccountRole(challenge.role)
        if not right:
            left = max(0, rules.max_attempts - attempts)
            log.info("sign_in.wrong_code", attempts_left=left)
            reason = "wrong code" if left else "wrong code; this code is closed: ask for a new one"
            return CodeRefused(reason, left)
        issued = self.book.issue(phone, role, now, rules.token_lifetime)
        log.info("sign_in.signed_in", account=issued.account.id, role=role.value)
        return issued


def _code_hash(challenge_id: str, code: str) -> str:
    return hashlib.sha256(f"{challenge_id}:{code}".encode()).hexdigest()


def _wait(recent: list[datetime], now: datetime, rules: SignInRules) -> int | None:
    """Seconds before this number may get another code (None: now), from its recent codes."""
    if not recent:
        return None
    waits = []
    since_last = now - recent[-1]
    if since_last < rules.resend_window:
        waits.append(rules.resend_window - since_last)
    in_hour = [at for at in recent if now - at < CHALLENGE_KEPT]
    if len(in_hour) >= rules.hourly_limit:
        waits.append(in_hour[-rules.hourly_limit] + CHALLENGE_KEPT - now)
    if not waits:
        return None
    return max(1, math.ceil(max(waits).total_seconds()))
