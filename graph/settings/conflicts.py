"""Settings that contradict each other (`SETTING_CONFLICTS`): each check names both
variables and the fix; `Settings` refuses to start with any of them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from limits import parse_many

from graph.settings.runtime import HEARTBEATS_PER_DEATH

if TYPE_CHECKING:
    from graph.settings.core import Settings


def _worker_over_global(s: Settings) -> str | None:
    if s.worker_concurrency is not None and s.worker_concurrency > s.max_concurrent_generations:
        return (
            f"WORKER_CONCURRENCY={s.worker_concurrency} is more than "
            f"MAX_CONCURRENT_GENERATIONS={s.max_concurrent_generations} (a worker cannot run "
            "more tasks than all workers together): lower WORKER_CONCURRENCY or unset it "
            "(it defaults to min(3, MAX_CONCURRENT_GENERATIONS))"
        )
    return None


def _heartbeat_over_takeover(s: Settings) -> str | None:
    limit = s.worker_dead_after_seconds / HEARTBEATS_PER_DEATH
    if s.heartbeat_seconds is not None and s.heartbeat_seconds > limit:
        return (
            f"HEARTBEAT_SECONDS={s.heartbeat_seconds:g} is more than a third of "
            f"WORKER_DEAD_AFTER_SECONDS={s.worker_dead_after_seconds:g} (a live worker would "
            f"be taken for dead after one late beat): set HEARTBEAT_SECONDS <= {limit:g}, "
            "raise WORKER_DEAD_AFTER_SECONDS, or unset HEARTBEAT_SECONDS"
        )
    return None


def _poll_over_takeover(s: Settings) -> str | None:
    if s.queue_poll_seconds >= s.worker_dead_after_seconds:
        return (
            f"QUEUE_POLL_SECONDS={s.queue_poll_seconds:g} is not below "
            f"WORKER_DEAD_AFTER_SECONDS={s.worker_dead_after_seconds:g} (tasks taken over "
            "from a dead worker would wait longer than the takeover itself): lower "
            "QUEUE_POLL_SECONDS"
        )
    return None


def _call_over_generation(s: Settings) -> str | None:
    call = s.llm_config().call_timeout
    if call >= s.generation_timeout_seconds:
        name = "LLM_TIMEOUT_SECONDS" if s.llm_timeout_seconds else "the default LLM_TIMEOUT_SECONDS"
        return (
            f"{name}={call:g} is not below GENERATION_TIMEOUT_SECONDS="
            f"{s.generation_timeout_seconds:g} (one model call could use up a whole run): "
            "lower LLM_TIMEOUT_SECONDS or raise GENERATION_TIMEOUT_SECONDS"
        )
    return None


def _tokens_over_context(s: Settings) -> str | None:
    if s.llm_provider == "local" and s.llm_max_tokens >= s.local_model_context:
        return (
            f"LLM_MAX_TOKENS={s.llm_max_tokens} does not fit in LOCAL_MODEL_CONTEXT="
            f"{s.local_model_context} (the prompt needs room too): lower LLM_MAX_TOKENS or "
            "raise LOCAL_MODEL_CONTEXT"
        )
    return None


def _half_a_price_table(s: Settings) -> str | None:
    given = {
        "LLM_PRICE_INPUT_PER_MTOK": s.llm_price_input_per_mtok,
        "LLM_PRICE_OUTPUT_PER_MTOK": s.llm_price_output_per_mtok,
    }
    unset = [name for name, price in given.items() if price is None]
    if len(unset) == 1:
        (missing,) = unset
        (present,) = set(given) - {missing}
        return (
            f"{present} is set without {missing} (a call's cost needs both prices; "
            f"guessing 0 for one would understate it): set {missing} (0 if those tokens "
            f"are free) or unset {present}"
        )
    return None


def _rate_limit_parses(s: Settings) -> str | None:
    for name, rates in (
        ("RATE_LIMIT_MUTATIONS", s.rate_limit_mutations),
        ("RATE_LIMIT_AUTH_FAILURES", s.rate_limit_auth_failures),
    ):
        try:
            parse_many(rates)
        except ValueError:
            return (
                f"{name}={rates!r} is not a rate in `limits` notation: use e.g. "
                '"60/minute" or "10/second;500/hour"'
            )
    return None


def _wildcard_origin_without_auth(s: Settings) -> str | None:
    if "*" in s.cors_origins and not (s.jwt_enabled or s.auth_disabled):
        return (
            "CORS_ORIGINS=* lets every web page call the API, and without JWT_ISSUER or "
            "AUTH_DISABLED this server may run in local mode (no API key yet), where such "
            "a page would act as the local admin: list the origins instead "
            "(CORS_ORIGINS=https://app.example.com,http://localhost:3000)"
        )
    return None


def _consume_without_broker(s: Settings) -> str | None:
    if s.broker_consume and not s.broker_url:
        return (
            "BROKER_CONSUME=true needs BROKER_URL (where would the requests come from?): "
            "set BROKER_URL=nats://host:4222 (or amqp://, kafka://) or unset BROKER_CONSUME"
        )
    if s.broker_consume and not s.broker_principals:
        return (
            "BROKER_CONSUME=true with an empty BROKER_PRINCIPALS would refuse every request "
            "(each must name an allowed principal): set BROKER_PRINCIPALS=<principal id>,..."
        )
    if s.broker_consume and (config := s.broker_config()) is not None:
        from agents.integrations.broker import overlapping_subjects

        if overlap := overlapping_subjects(config):
            return (
                "BROKER_EVENTS_SUBJECT overlaps BROKER_REQUESTS_SUBJECT / BROKER_RESULTS_SUBJECT"
                f" / BROKER_DEAD_LETTER_SUBJECT ({overlap}): e.g. BROKER_EVENTS_SUBJECT="
                "postassist.events with BROKER_REQUESTS_SUBJECT=postassist.requests"
            )
    return None


#: Each check returns why two or more settings contradict each other, or None.
SETTING_CONFLICTS = (
    _worker_over_global,
    _heartbeat_over_takeover,
    _poll_over_takeover,
    _call_over_generation,
    _tokens_over_context,
    _half_a_price_table,
    _rate_limit_parses,
    _wildcard_origin_without_auth,
    _consume_without_broker,
)
