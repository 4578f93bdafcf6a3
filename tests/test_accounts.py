"""Sign-in rules against SQLite and PostgreSQL: codes texted through the console provider,
tries, expiry, resend limits, tokens kept as hashes only, opted-out numbers left alone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from line_service.accounts.book import AccountBook, AccountRole, IssuedToken, hash_token
from line_service.accounts.sign_in import CodeRefused, CodeSent, SignIn, TooSoon
from line_service.sms.opt_outs import OptOuts, OptOutSender
from line_service.storage.account_tables import AccountTokenRecord, SignInChallengeRecord
from line_service.storage.store import Store
from sms_gateway.console_sender import ConsoleSender
from sms_gateway.phones import phone_hash
from tests.support.accounts import texted_code

T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
RIDER = "+33612345678"


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def console() -> ConsoleSender:
    return ConsoleSender()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def opt_outs() -> OptOuts:
    return OptOuts(lambda phone: phone_hash(phone, "pepper"))


@pytest.fixture
def sign_in(store: Store, console: ConsoleSender, clock: Clock, opt_outs: OptOuts) -> SignIn:
    sender = OptOutSender(console, opt_outs)
    return SignIn(store.engine, sender, lambda phone: phone_hash(phone, "pepper"), clock)


async def signed_in(sign_in: SignIn, console: ConsoleSender, role: AccountRole) -> IssuedToken:
    assert isinstance(await sign_in.send_code(RIDER, role), CodeSent)
    issued = await sign_in.exchange(RIDER, texted_code(console, RIDER))
    assert isinstance(issued, IssuedToken), issued
    return issued


async def test_a_texted_code_gets_a_token_of_the_role_asked_for(
    sign_in: SignIn, console: ConsoleSender, store: Store, clock: Clock
) -> None:
    issued = await signed_in(sign_in, console, AccountRole.DRIVER)
    [text] = console.sent
    assert text.to == RIDER
    assert "votre code de connexion" in text.body
    assert (issued.role, issued.account.phone) == (AccountRole.DRIVER, RIDER)
    book = AccountBook(store.engine)
    assert book.resolve(hash_token(issued.token), clock()) == (issued.account, AccountRole.DRIVER)
    # Neither the code nor the token nor the number is stored in clear with them.
    code = texted_code(console, RIDER)
    with Session(store.engine) as session:
        stored = [
            *session.exec(select(SignInChallengeRecord)).all(),
            *session.exec(select(AccountTokenRecord)).all(),
        ]
    dumped = repr([row.model_dump() for row in stored])
    for secret in (code, issued.token, RIDER):
        assert secret not in dumped
    # The same code does not open a second session; the same number keeps its account.
    assert isinstance(await sign_in.exchange(RIDER, code), CodeRefused)
    clock.advance(minutes=2)
    again = await signed_in(sign_in, console, AccountRole.RIDER)
    assert again.account == issued.account
    assert again.token != issued.token


async def test_five_wrong_codes_close_the_challenge(
    sign_in: SignIn, console: ConsoleSender
) -> None:
    await sign_in.send_code(RIDER, AccountRole.RIDER)
    right = texted_code(console, RIDER)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    lefts = []
    for _ in range(5):
        refused = await sign_in.exchange(RIDER, wrong)
        assert isinstance(refused, CodeRefused)
        lefts.append(refused.attempts_left)
    assert lefts == [4, 3, 2, 1, 0]
    dead = await sign_in.exchange(RIDER, right)
    assert isinstance(dead, CodeRefused)
    assert "ask for a new one" in dead.reason


async def test_an_expired_code_is_refused(
    sign_in: SignIn, console: ConsoleSender, clock: Clock
) -> None:
    await sign_in.send_code(RIDER, AccountRole.RIDER)
    clock.advance(minutes=5, seconds=1)
    refused = await sign_in.exchange(RIDER, texted_code(console, RIDER))
    assert isinstance(refused, CodeRefused)


async def test_a_number_gets_one_code_a_minute_and_five_an_hour(
    sign_in: SignIn, console: ConsoleSender, clock: Clock
) -> None:
    assert isinstance(await sign_in.send_code(RIDER, AccountRole.RIDER), CodeSent)
    clock.advance(seconds=20)
    assert await sign_in.send_code(RIDER, AccountRole.RIDER) == TooSoon(40)
    assert isinstance(await sign_in.send_code("+33698765432", AccountRole.RIDER), CodeSent)
    for _ in range(4):
        clock.advance(seconds=60)
        assert isinstance(await sign_in.send_code(RIDER, AccountRole.RIDER), CodeSent)
    clock.advance(seconds=60)
    # Five codes since T0 (the first at T0): the sixth waits until T0 + 1 h.
    assert await sign_in.send_code(RIDER, AccountRole.RIDER) == TooSoon(3600 - 20 - 5 * 60)
    assert len([sms for sms in console.sent if sms.to == RIDER]) == 5
    clock.now = T0 + timedelta(hours=1)
    assert isinstance(await sign_in.send_code(RIDER, AccountRole.RIDER), CodeSent)


async def test_a_new_code_closes_the_older_one(
    sign_in: SignIn, console: ConsoleSender, clock: Clock
) -> None:
    await sign_in.send_code(RIDER, AccountRole.RIDER)
    first = texted_code(console, RIDER)
    clock.advance(seconds=61)
    await sign_in.send_code(RIDER, AccountRole.RIDER)
    second = texted_code(console, RIDER)
    if first != second:
        assert isinstance(await sign_in.exchange(RIDER, first), CodeRefused)
    assert isinstance(await sign_in.exchange(RIDER, second), IssuedToken)


async def test_a_number_that_wrote_stop_is_not_texted_and_the_answer_is_the_same(
    sign_in: SignIn, console: ConsoleSender, opt_outs: OptOuts
) -> None:
    opt_outs.add(RIDER)
    assert isinstance(await sign_in.send_code(RIDER, AccountRole.RIDER), CodeSent)
    assert console.sent == []


async def test_revoked_and_expired_tokens_resolve_to_nobody(
    sign_in: SignIn, console: ConsoleSender, store: Store, clock: Clock
) -> None:
    issued = await signed_in(sign_in, console, AccountRole.RIDER)
    book = AccountBook(store.engine)
    digest = hash_token(issued.token)
    assert book.resolve(digest, clock() + timedelta(days=30)) is None
    assert book.revoke_account(issued.account.id) == 1
    assert book.resolve(digest, clock()) is None
    assert book.revoke_account("no-such-account") is None
