"""The `idempotencyKey` argument of `generatePost` and `generatePosts`: a retried
submission answers with the task(s) its first attempt created instead of starting a
second run (the rules and the storage: `agents.runtime.idempotency`).

`Idempotent` is a field extension listed after `RateLimited` (the last extension runs
first), so a replay answers before the mutation budget and the queue cap count it, and
enqueues nothing; a new submission goes through both as any other. Errors: a key that
is not 1-255 printable characters is BAD_USER_INPUT, a key used within
`IDEMPOTENCY_TTL_HOURS` for another submission is CONFLICT, both with
`extensions.field = "idempotencyKey"`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Annotated, Any

import strawberry
from strawberry.extensions import FieldExtension

from agents.runtime.idempotency import (
    Claim,
    IdempotencyConflictError,
    IdempotencyKeyError,
    Replayed,
    check_key,
    fingerprint,
    sweep,
)
from db.models import IDEMPOTENCY_KEY_MAX, PostRequest
from db.models import Task as TaskRow
from graph.api.context import Info
from graph.errors import ConflictError, UserInputError

#: The argument: an optional key, the same on every retry of one submission (what it
#: does is in the mutations' descriptions, `KEY_HELP`, so their SDL stays one line).
IdempotencyKeyArgument = Annotated[str | None, strawberry.argument()]
#: The sentence about `idempotencyKey` in the descriptions of the mutations that take it.
KEY_HELP = (
    f"idempotencyKey (optional, 1-{IDEMPOTENCY_KEY_MAX} printable characters, a UUID say; "
    "the same on every retry): within IDEMPOTENCY_TTL_HOURS (24) the same key from the "
    "same principal returns what the first call created, as it is now, and starts "
    "nothing; the same key with another input is CONFLICT."
)


def claim_of(
    info: Info, operation: str, requests: Sequence[PostRequest], key: str | None
) -> Claim | None:
    """The caller's `Claim` on `key` for `requests` (None without a key); raises
    `UserInputError` (BAD_USER_INPUT, field idempotencyKey) for a malformed key."""
    if key is None:
        return None
    try:
        check_key(key)
    except IdempotencyKeyError as exc:
        raise UserInputError(str(exc), field="idempotencyKey") from None
    hours = info.context.services.settings.idempotency_ttl_hours
    return Claim(
        owner=info.context.principal.id,
        key=key,
        fingerprint=fingerprint(operation, requests),
        ttl=timedelta(hours=hours),
    )


class Idempotent(FieldExtension):
    """Answers a mutation called with an `idempotency_key` already used by the caller:
    `shape(tasks)` of the tasks it created, looked up before the mutation (a retry after
    the first call committed) or raised out of it (`Replayed`: a concurrent call won).
    `requests_of(kwargs)` gives the validated requests (raising BAD_USER_INPUT like the
    resolver would); `operation` names the mutation in the fingerprint, so one key cannot
    serve both mutations. After a new keyed submission the expired keys are swept."""

    def __init__(
        self,
        operation: str,
        requests_of: Callable[[Mapping[str, Any]], Sequence[PostRequest]],
        shape: Callable[[list[TaskRow]], Any],
    ) -> None:
        super().__init__()
        self.operation, self.requests_of, self.shape = operation, requests_of, shape

    async def resolve_async(self, next_: Any, source: Any, info: Any, **kwargs: Any) -> Any:
        """Replay, refuse (CONFLICT), or resolve."""
        claim = claim_of(
            info, self.operation, self.requests_of(kwargs), kwargs.get("idempotency_key")
        )
        if claim is None:
            return await next_(source, info, **kwargs)
        session_factory = info.context.services.tasks.session_factory
        try:
            tasks = await claim.replay(session_factory)
            if tasks is None:
                result = await next_(source, info, **kwargs)
                await sweep(session_factory)
                return result
        except Replayed as won:
            tasks = won.tasks
        except IdempotencyConflictError as exc:
            raise ConflictError(str(exc), field="idempotencyKey") from None
        return self.shape(tasks)
