"""Test support: riders' and drivers' tokens issued straight into a service's database (as a
verified sign-in would), and the sign-in codes the console provider was asked to send."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from line_service.accounts.book import AccountBook, AccountRole, IssuedToken
from line_service.accounts.sign_in import SIGN_IN_REF, code_in_text
from line_service.storage.store import Store
from sms_gateway.console_sender import ConsoleSender

LIFETIME = timedelta(days=1)


def issued_tokens(database_url: str, phones: Iterable[str], role: AccountRole) -> list[IssuedToken]:
    """A token of `role` for the account of each number (created when new), with its account."""
    store = Store(database_url)
    try:
        book = AccountBook(store.engine)
        now = datetime.now(UTC)
        return [book.issue(phone, role, now, LIFETIME) for phone in phones]
    finally:
        store.dispose()


def account_tokens(database_url: str, phones: Iterable[str], role: AccountRole) -> list[str]:
    """A bearer token of `role` for the account of each number (created when new)."""
    return [issued.token for issued in issued_tokens(database_url, phones, role)]


def account_token(database_url: str, phone: str, role: AccountRole) -> str:
    """A bearer token of `role` for the account of `phone`."""
    [token] = account_tokens(database_url, [phone], role)
    return token


def bearer(token: str) -> dict[str, str]:
    """The Authorization header of a token."""
    return {"Authorization": f"Bearer {token}"}


def texted_code(sender: ConsoleSender, phone: str) -> str:
    """The newest sign-in code the console provider was asked to text to `phone`."""
    for message in reversed(sender.sent):
        found = code_in_text(message.body)
        if message.to == phone and message.ref == SIGN_IN_REF and found:
            return found
    raise AssertionError(f"no sign-in code was texted to {phone}")
