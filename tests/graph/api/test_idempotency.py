"""Idempotent submissions (issue 16 part 4) through GraphQL on a real SQLite file and a
real PostgreSQL database, no worker (tasks stay PENDING): one key gives one task (and
one DBOS workflow), another input under it is CONFLICT, concurrent calls with one key
give one task, keys are per principal, generatePosts takes one, an expired key is
reusable, a replay passes the queue cap and the mutation budget, and the loser of a
race inside the transaction rolls back its task and workflow."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from agents.runtime.idempotency import Claim, IdempotencyConflictError, Replayed, fingerprint
from db.models import IdempotencyKey, PostRequest, utcnow
from tests.graph.api.test_hostile_queries import client_of, new_key, settings_for

pytestmark = pytest.mark.anyio

GENERATE = """mutation($input: GeneratePostInput!, $key: String) {
  generatePost(input: $input, idempotencyKey: $key) { id status batchId }
}"""
BATCH = """mutation($inputs: [GeneratePostInput!]!, $key: String) {
  generatePosts(inputs: $inputs, idempotencyKey: $key) { id batchId }
}"""
TASKS = "{ tasks(first: 50) { totalCount edges { node { id } } } }"
INPUT = {"paperTitle": "Attention Is All You Need", "additionalContext": "Attention alone."}
OTHER = {**INPUT, "tone": "CASUAL"}
KEY = "3f1c2e9a-7b1d-4d3e-9a51-0c2f4b6d8e10"


def error_of(body: dict[str, Any]) -> dict[str, Any]:
    assert body.get("data") is None, body
    (error,) = body["errors"]
    return error["extensions"]


class Caller:
    """GraphQL over one app as the principal of `token`."""

    def __init__(self, gql: Any, token: str) -> None:
        self.gql, self.headers = gql, {"Authorization": f"Bearer {token}"}

    async def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        body = {"query": query, "variables": variables}
        return (await self.gql.client.post("/graphql", json=body, headers=self.headers)).json()

    async def task_ids(self) -> list[str]:
        page = (await self(TASKS))["data"]["tasks"]
        assert page["totalCount"] == len(page["edges"])
        return [edge["node"]["id"] for edge in page["edges"]]


def services_of(gql: Any) -> Any:
    return gql.client.app.state.services


async def workflow_ids(gql: Any) -> list[str]:
    workflows = await services_of(gql).tasks.client.list_workflows_async()
    return sorted(w.workflow_id for w in workflows)


async def key_rows(gql: Any) -> list[IdempotencyKey]:
    async with services_of(gql).tasks.session_factory() as session:
        return list((await session.exec(select(IdempotencyKey))).all())


async def test_one_key_gives_one_task_and_another_input_is_a_conflict(database_url: str) -> None:
    token = await new_key(database_url)
    async with client_of(settings_for(database_url, run_worker=False)) as gql:
        alice = Caller(gql, token)
        first = (await alice(GENERATE, input=INPUT, key=KEY))["data"]["generatePost"]
        again = (await alice(GENERATE, input=INPUT, key=KEY))["data"]["generatePost"]
        assert again == first
        assert await alice.task_ids() == [first["id"]]
        assert await workflow_ids(gql) == [first["id"]]  # nothing enqueued the second time
        # The same request once normalised (white space, defaults spelled out) is a replay.
        spelled = {**INPUT, "paperTitle": " Attention Is All You Need ", "maxHashtags": 10}
        assert (await alice(GENERATE, input=spelled, key=KEY))["data"]["generatePost"] == first

        conflict = error_of(await alice(GENERATE, input=OTHER, key=KEY))
        assert conflict["code"] == "CONFLICT"
        assert conflict["field"] == "idempotencyKey"
        # The other operation under the same key is another submission too.
        assert error_of(await alice(BATCH, inputs=[INPUT], key=KEY))["code"] == "CONFLICT"
        assert await alice.task_ids() == [first["id"]]
        assert await workflow_ids(gql) == [first["id"]]
        (row,) = await key_rows(gql)
        assert row.task_ids == [first["id"]]
        assert row.fingerprint == fingerprint("generatePost", [PostRequest(**_snake(INPUT))])
        # Without a key every call is a new submission, as before.
        other = (await alice(GENERATE, input=INPUT))["data"]["generatePost"]
        assert other["id"] != first["id"]


async def test_concurrent_calls_with_one_key_start_one_task(database_url: str) -> None:
    token = await new_key(database_url)
    async with client_of(settings_for(database_url, run_worker=False)) as gql:
        alice = Caller(gql, token)
        bodies = await asyncio.gather(*(alice(GENERATE, input=INPUT, key=KEY) for _ in range(8)))
        ids = {body["data"]["generatePost"]["id"] for body in bodies}
        assert len(ids) == 1, bodies
        assert await alice.task_ids() == list(ids)
        assert await workflow_ids(gql) == list(ids)
        # Concurrent calls with one key and different inputs: one wins, the rest conflict.
        inputs = [{**INPUT, "maxHashtags": n} for n in range(1, 7)]
        bodies = await asyncio.gather(*(alice(GENERATE, input=i, key="k2") for i in inputs))
        won = [body for body in bodies if body.get("data")]
        assert len(won) == 1, bodies
        assert all(error_of(b)["code"] == "CONFLICT" for b in bodies if b not in won)
        assert len(await alice.task_ids()) == 2


async def test_the_loser_of_a_race_rolls_back_its_task_and_workflow(database_url: str) -> None:
    """Both submissions passed the lookup (the race `replay` cannot see): the key's row
    is written in the task's transaction, so the second insert fails, its task row and
    workflow are rolled back, and it answers with the first's task."""
    async with client_of(settings_for(database_url, run_worker=False)) as gql:
        tasks = services_of(gql).tasks
        request = PostRequest(**_snake(INPUT))
        claim = Claim("alice", KEY, fingerprint("generatePost", [request]), timedelta(hours=1))
        first = await tasks.create_generation(request, owner="alice", claim=claim)
        with pytest.raises(Replayed) as replayed:
            await tasks.create_generation(request, owner="alice", claim=claim)
        assert [task.id for task in replayed.value.tasks] == [first.id]
        other = Claim("alice", KEY, "0" * 64, timedelta(hours=1))
        with pytest.raises(IdempotencyConflictError):
            await tasks.create_generation(request, owner="alice", claim=other)
        assert await workflow_ids(gql) == [first.id]
        async with tasks.session_factory() as session:
            assert await tasks.queued_count("alice") == 1
            (row,) = (await session.exec(select(IdempotencyKey))).all()
        assert row.task_ids == [first.id]


async def test_keys_are_per_principal(database_url: str) -> None:
    alice_token, bob_token = await new_key(database_url), await new_key(database_url)
    async with client_of(settings_for(database_url, run_worker=False)) as gql:
        alice, bob = Caller(gql, alice_token), Caller(gql, bob_token)
        mine = (await alice(GENERATE, input=INPUT, key=KEY))["data"]["generatePost"]
        # Bob's same key, even with another input, is his own submission, not a conflict.
        bobs = (await bob(GENERATE, input=OTHER, key=KEY))["data"]["generatePost"]
        assert bobs["id"] != mine["id"]
        assert (await bob(GENERATE, input=OTHER, key=KEY))["data"]["generatePost"] == bobs
        assert await alice.task_ids() == [mine["id"]]
        assert await bob.task_ids() == [bobs["id"]]


async def test_generate_posts_takes_a_key(database_url: str) -> None:
    token = await new_key(database_url)
    async with client_of(settings_for(database_url, run_worker=False)) as gql:
        alice = Caller(gql, token)
        inputs = [INPUT, OTHER, {**INPUT, "tone": "ACADEMIC"}]
        first = (await alice(BATCH, inputs=inputs, key=KEY))["data"]["generatePosts"]
        again = (await alice(BATCH, inputs=inputs, key=KEY))["data"]["generatePosts"]
        assert again == first  # the same tasks in input order, one batchId
        assert len({task["batchId"] for task in first}) == 1
        assert sorted(await alice.task_ids()) == sorted(task["id"] for task in first)
        reordered = error_of(await alice(BATCH, inputs=inputs[::-1], key=KEY))
        assert reordered["code"] == "CONFLICT"
        assert error_of(await alice(GENERATE, input=INPUT, key=KEY))["code"] == "CONFLICT"
        assert len(await alice.task_ids()) == 3
        (row,) = await key_rows(gql)
        assert row.task_ids == [task["id"] for task in first]
        assert row.batch_id == first[0]["batchId"]


async def test_an_expired_key_is_reusable_and_swept(database_url: str) -> None:
    token = await new_key(database_url)
    async with client_of(settings_for(database_url, run_worker=False)) as gql:
        alice = Caller(gql, token)
        old = (await alice(GENERATE, input=INPUT, key=KEY))["data"]["generatePost"]
        stale = (await alice(GENERATE, input=INPUT, key="stale"))["data"]["generatePost"]
        past = utcnow() - timedelta(seconds=1)
        async with services_of(gql).tasks.session_factory() as session:
            await session.exec(update(IdempotencyKey).values(expires_at=past))
            await session.commit()
        # Expired: the key starts a new task, even with another input.
        new = (await alice(GENERATE, input=OTHER, key=KEY))["data"]["generatePost"]
        assert new["id"] != old["id"]
        assert (await alice(GENERATE, input=OTHER, key=KEY))["data"]["generatePost"] == new
        assert sorted(await alice.task_ids()) == sorted([old["id"], stale["id"], new["id"]])
        # The other expired key was swept after that submission; this one names the new task.
        (row,) = await key_rows(gql)
        assert (row.key, row.task_ids) == (KEY, [new["id"]])
        assert row.expires_at - row.created_at == timedelta(hours=24)


async def test_a_replay_passes_the_queue_cap_and_the_budget(sqlite_url: str) -> None:
    token = await new_key(sqlite_url)
    settings = settings_for(
        sqlite_url, run_worker=False, max_queued_per_principal=1, rate_limit_mutations="3/minute"
    )
    async with client_of(settings) as gql:
        alice = Caller(gql, token)
        first = (await alice(GENERATE, input=INPUT, key=KEY))["data"]["generatePost"]  # 1 of 3
        for _ in range(5):  # the cap (1 waiting) and the budget (3 a minute) do not count these
            assert (await alice(GENERATE, input=INPUT, key=KEY))["data"]["generatePost"] == first
        assert error_of(await alice(GENERATE, input=INPUT, key="new"))["code"] == "RATE_LIMITED"
        assert error_of(await alice(GENERATE, input=INPUT, key="new2"))["limit"] == 1  # 3 of 3
        assert error_of(await alice(GENERATE, input=INPUT, key="new3"))["code"] == "RATE_LIMITED"
        assert await alice.task_ids() == [first["id"]]


# (A NUL anywhere in the variables is refused before, naming the variable.)
@pytest.mark.parametrize("key", ["", "x" * 256, "line\nbreak", "tab\there", "bell\x07"])
async def test_a_malformed_key_is_bad_user_input(sqlite_url: str, key: str) -> None:
    token = await new_key(sqlite_url)
    async with client_of(settings_for(sqlite_url, run_worker=False)) as gql:
        alice = Caller(gql, token)
        for query, variables in ((GENERATE, {"input": INPUT}), (BATCH, {"inputs": [INPUT]})):
            error = error_of(await alice(query, **variables, key=key))
            assert (error["code"], error["field"]) == ("BAD_USER_INPUT", "idempotencyKey")
        assert await alice.task_ids() == []
        # The longest and an unusual but printable key are fine.
        for fine in ("x" * 255, "é ✓ key/with:punctuation"):
            assert (await alice(GENERATE, input=INPUT, key=fine))["data"]["generatePost"]


def _snake(values: dict[str, Any]) -> dict[str, Any]:
    names = {"paperTitle": "paper_title", "additionalContext": "additional_context"}
    return {names.get(name, name): value for name, value in values.items()}


async def test_rows_name_their_owner(database_url: str) -> None:
    """The key's row is the caller's principal id, the key as sent, and 24 h by default."""
    token = await new_key(database_url)
    async with client_of(settings_for(database_url, run_worker=False)) as gql:
        alice = Caller(gql, token)
        task = (await alice(GENERATE, input=INPUT, key=KEY))["data"]["generatePost"]
        async with services_of(gql).tasks.session_factory() as session:
            query = select(IdempotencyKey).where(col(IdempotencyKey.key) == KEY)
            (row,) = (await session.exec(query)).all()
        assert row.owner == f"key:{token.split('_')[1]}"
        assert row.task_ids == [task["id"]]


async def test_a_replay_returns_the_task_as_it_is_now(gql: Any) -> None:
    """With a worker (local mode, the scripted model): the replay after the run is the
    COMPLETED task, not the PENDING copy the first call returned."""
    first = (await gql(GENERATE, input=INPUT, key=KEY))["data"]["generatePost"]
    assert first["status"] == "PENDING"
    assert (await gql.wait_until_finished(first["id"]))["status"] == "COMPLETED"
    again = (await gql(GENERATE, input=INPUT, key=KEY))["data"]["generatePost"]
    assert again == {**first, "status": "COMPLETED"}
    assert (await gql(TASKS))["data"]["tasks"]["totalCount"] == 1
