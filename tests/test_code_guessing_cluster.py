"""A cluster (CARPOOL_CLUSTER=true, two real `carpool-line serve` on one PostgreSQL): a driver
who spent the wrong-code budget on the owner is still refused by the node that takes over."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from line_service.accounts.book import AccountRole
from tests.support.accounts import account_token, bearer
from tests.support.faults import eventually
from tests.support.service import LINE
from tests.test_cluster import Pair, owns_the_line, pair

__all__ = ["pair"]  # the fixture: two nodes, devices, a locked-down broker

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

DRIVER = "+33698765432"
VALIDATIONS = f"/api/v1/lines/{LINE}/validations"


async def test_the_node_that_takes_over_refuses_a_guesser_the_owner_refused(pair: Pair) -> None:
    token = await asyncio.to_thread(account_token, pair.database_url, DRIVER, AccountRole.DRIVER)
    async with httpx.AsyncClient(base_url=pair.first.base_url) as owner:
        for code in ("0001", "0002", "0003", "0004", "0005"):
            answer = await owner.post(VALIDATIONS, json={"code": code}, headers=bearer(token))
            assert answer.status_code == 404, answer.text
        answer = await owner.post(VALIDATIONS, json={"code": "0006"}, headers=bearer(token))
        assert answer.status_code == 429
    await asyncio.to_thread(pair.first.kill)
    await eventually(lambda: asyncio.to_thread(owns_the_line, pair.second), 30, "a takeover")
    async with httpx.AsyncClient(base_url=pair.second.base_url) as new_owner:
        answer = await new_owner.post(VALIDATIONS, json={"code": "0007"}, headers=bearer(token))
        assert answer.status_code == 429, answer.text  # the same budget, not a fresh one
        assert 86_000 < int(answer.headers["Retry-After"]) <= 86_400
        other = await asyncio.to_thread(
            account_token, pair.database_url, "+33622222222", AccountRole.DRIVER
        )
        answer = await new_owner.post(VALIDATIONS, json={"code": "0008"}, headers=bearer(other))
        assert answer.status_code == 404  # another driver's code is still checked
