"""Ownership through the task service: another principal's task is NOT_FOUND before any
other check (the queue cap included), exactly as an unknown id is."""

from __future__ import annotations

from typing import Any

import pytest

from db.enums import TaskStatus
from db.events import Event
from tests.graph.api.test_hostile_queries import GENERATE, INPUT, client_of, new_key, settings_for

pytestmark = pytest.mark.anyio

RETRY = "mutation($id: ID!) { retryTask(id: $id) { id status } }"
CANCEL = "mutation($id: ID!) { cancelTask(id: $id) { id status } }"


def error_of(body: dict[str, Any]) -> tuple[str, str]:
    (error,) = body["errors"]
    return error["extensions"]["code"], error["message"]


async def test_a_foreign_task_is_not_found_before_the_queue_cap(sqlite_url: str) -> None:
    alice, bob = await new_key(sqlite_url), await new_key(sqlite_url)
    settings = settings_for(sqlite_url, run_worker=False, max_queued_per_principal=1)
    async with client_of(settings) as gql:

        async def as_(token: str, query: str, **variables: Any) -> dict[str, Any]:
            body = {"query": query, "variables": variables}
            headers = {"Authorization": f"Bearer {token}"}
            return (await gql.client.post("/graphql", json=body, headers=headers)).json()

        failed = []
        for token in (alice, bob):
            task_id = (await as_(token, GENERATE, input=INPUT))["data"]["generatePost"]["id"]
            log = gql.client.app.state.services.event_log  # type: ignore[attr-defined]
            await log.append(task_id, Event.task_status(TaskStatus.FAILED, "boom"))
            failed.append(task_id)
        mine, bobs = failed
        # Alice is at her cap (one PENDING generation): her own retry waits for a place.
        assert (await as_(alice, GENERATE, input=INPUT))["data"]["generatePost"]["id"]
        assert error_of(await as_(alice, RETRY, id=mine))[0] == "RATE_LIMITED"
        # Bob's task and an unknown id answer alike, before the cap is looked at.
        unknown = "0" * 32
        for query in (RETRY, CANCEL):
            foreign = error_of(await as_(alice, query, id=bobs))
            missing = error_of(await as_(alice, query, id=unknown))
            assert foreign == ("NOT_FOUND", f"no task with id {bobs}")
            assert missing == ("NOT_FOUND", f"no task with id {unknown}")
        # Bob's own retry is his to make.
        retried = (await as_(bob, RETRY, id=bobs))["data"]["retryTask"]
        assert retried == {"id": bobs, "status": "PENDING"}
