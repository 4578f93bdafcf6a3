"""Accounts and personal data on SQLite and PostgreSQL: `privacy export` shows a number's
account, its tokens and codes; `privacy erase` removes them and unlinks the trips it drove;
retention deletes accounts that no longer sign in; operators list and revoke accounts."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from typer.testing import CliRunner, Result

from dispatcher.request_machine import Cause, RequestState, transition
from dispatcher.state import DispatcherState
from line_service.accounts.book import AccountBook, AccountRole, IssuedToken, hash_token
from line_service.accounts.sign_in import SignIn
from line_service.authority.driver_identity import identify_with
from line_service.authority.trips import TripBook, draft_trip
from line_service.cli import app
from line_service.driver_trips.announcements import DriverTrips
from line_service.network.lines_file import load_network
from line_service.privacy.personal_data import erase_expired
from line_service.storage.store import Store
from sms_gateway.console_sender import ConsoleSender
from sms_gateway.phones import phone_hash
from tests.support.requests import waiting_request
from tests.test_privacy import LINE, NOW, REPO, RIDER, SALT, dump, run

DRIVER = "+33698765432"


@pytest.fixture
async def driver(store: Store) -> IssuedToken:
    """A driver's account with a token, a code just texted, a trip it validated and one it
    announced."""
    book = AccountBook(store.engine)
    issued = book.issue(DRIVER, AccountRole.DRIVER, NOW, timedelta(days=30))
    sign_in = SignIn(store.engine, ConsoleSender(), lambda p: phone_hash(p, SALT), lambda: NOW)
    await sign_in.send_code(DRIVER, AccountRole.DRIVER)
    asked = waiting_request("r-1", NOW, phone=RIDER)
    picked = transition(asked, Cause.CODE_VALIDATED, NOW, issued.account.ref)
    store.save([(asked, None), (picked, RequestState.WAITING)])
    network = load_network(REPO / "config" / "lines.yaml")
    line = network.line(LINE)
    assert line is not None
    draft = draft_trip(line, picked, RequestState.WAITING, identify_with(book.phone_of_ref))
    assert draft is not None
    TripBook(store).record(draft)
    announced = DriverTrips(
        store.engine, ConsoleSender(), lambda: DispatcherState(network=network), lambda: NOW
    )
    await announced.declare(line, issued.account.ref, "calais-est", "dunkerque-est", timedelta())
    return issued


def test_export_shows_the_account_its_tokens_and_codes_without_secrets(
    store: Store, database_url: str, driver: IssuedToken
) -> None:
    result = run(database_url, "export", "--phone", "06 98 76 54 32")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    tables = sorted(row["table"] for row in data["account"])
    assert tables == ["account", "account_token", "driver_trip", "sign_in_challenge"]
    account = next(row for row in data["account"] if row["table"] == "account")
    assert (account["id"], account["phone"]) == (driver.account.id, DRIVER)
    assert hash_token(driver.token) not in result.stdout
    assert [request["role"] for request in data["requests"]] == ["driver"]
    [trip] = data["trips"]
    assert trip["driver_ref"] == driver.account.ref


def test_erase_removes_the_account_and_its_tokens_and_unlinks_its_trips(
    store: Store, database_url: str, driver: IssuedToken
) -> None:
    result = run(database_url, "erase", "--phone", DRIVER)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["erased"] == {
        "account": 1,
        "account_token": 1,
        "driver_trip": 1,
        "sign_in_challenge": 1,
        "ride_request.driver_ref": 1,
        "trip.driver": 1,
    }
    text = dump(store)
    for trace in (DRIVER, DRIVER[:-2], driver.account.id, hash_token(driver.token)):
        assert trace not in text
    assert AccountBook(store.engine).resolve(hash_token(driver.token), NOW) is None
    again = run(database_url, "erase", "--phone", DRIVER)
    assert json.loads(again.stdout)["rows"] == 0


def test_retention_deletes_accounts_that_no_longer_sign_in(
    store: Store, driver: IssuedToken
) -> None:
    book = AccountBook(store.engine)
    stale = book.issue(RIDER, AccountRole.RIDER, NOW - timedelta(days=70), timedelta(days=30))
    counts = erase_expired(store.engine, SALT, NOW - timedelta(days=30))
    assert (counts["account"], counts["account_token"]) == (1, 1)
    assert book.account_of_phone(RIDER) is None
    assert stale.account.id not in dump(store)
    assert book.account_of_phone(DRIVER) == driver.account  # signed in lately: kept


def accounts_cli(database_url: str, *args: str) -> Result:
    return CliRunner().invoke(app, ["accounts", *args], env={"CARPOOL_DATABASE_URL": database_url})


def test_operators_list_accounts_and_revoke_their_tokens(
    store: Store, database_url: str, driver: IssuedToken
) -> None:
    listed = accounts_cli(database_url, "list")
    assert listed.exit_code == 0, listed.output
    [row] = listed.stdout.splitlines()
    assert row.startswith(f"{driver.account.id}\t+33…32\t")
    assert row.endswith("\t1")
    assert DRIVER not in listed.stdout
    assert driver.token not in listed.stdout
    revoked = accounts_cli(database_url, "revoke", "06 98 76 54 32")
    assert revoked.exit_code == 0, revoked.output
    assert "revoked 1 token(s)" in revoked.stdout
    assert AccountBook(store.engine).resolve(hash_token(driver.token), NOW) is None
    unknown = accounts_cli(database_url, "revoke", "feedface")
    assert unknown.exit_code == 1
    assert "no account 'feedface'" in unknown.stderr
