"""The Prometheus metrics of the agents layer (prometheus-client, default registry;
multiprocess-safe when `PROMETHEUS_MULTIPROC_DIR` is set before the process starts).

Labels take bounded values only (a status, a team or agent name of `agents.teams.state`,
a result word), never an id or a text, so the series are few and say nothing about whom.
Incrementing one costs a label lookup and a lock (1-2 us on a busy 2-core machine,
`python -m benchmarks.telemetry`): nothing is read to do it.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

#: Seconds: a scripted run takes ~1 s, a real one minutes, the default timeout is 900 s.
RUN_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 900, 1800)
#: Seconds: one agent's work or one model call.
STEP_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
#: Seconds from queued to running: ~10 ms on an idle worker, the queue's wait when busy.
PICKUP_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)

TASK_RUN_SECONDS = Histogram(
    "postassist_task_run_duration_seconds",
    "Wall time of one run (attempt) of a task on a worker, from its start event to its "
    "end; outcome: completed, failed, cancelled, stopped (for a person: review, pause), "
    "interrupted (shutdown, or ended elsewhere)",
    ["kind", "outcome"],
    buckets=RUN_BUCKETS,
)
TASK_PICKUP_SECONDS = Histogram(
    "postassist_task_pickup_latency_seconds",
    "Seconds a task waited in the queue: from its last change while PENDING (created, "
    "retried, resumed) to the RUNNING event of the worker that took it",
    ["kind"],
    buckets=PICKUP_BUCKETS,
)
AGENT_SECONDS = Histogram(
    "postassist_agent_duration_seconds",
    "Seconds from an agent's AGENT_STARTED to its AGENT_FINISHED (outcome finished) or "
    "AGENT_ERROR (outcome error)",
    ["team", "agent", "outcome"],
    buckets=STEP_BUCKETS,
)
LLM_CALLS = Counter(
    "postassist_llm_calls_total",
    "Model calls that answered (one LLM_USAGE event each), by the agent that made them",
    ["agent"],
)
LLM_SECONDS = Histogram(
    "postassist_llm_call_duration_seconds",
    "Seconds of one model call, its wait for a slot at a busy model included (the "
    "LLM_USAGE event's `seconds`)",
    ["agent"],
    buckets=STEP_BUCKETS,
)
LLM_TOKENS = Counter(
    "postassist_llm_tokens_total",
    "Tokens of the model's calls as the provider counted them; type: input or output",
    ["agent", "type"],
)
WEBHOOK_DELIVERIES = Counter(
    "postassist_webhook_deliveries_total",
    "Webhook delivery attempts by result: succeeded (2xx), retrying (failed, another "
    "try is scheduled), failed (failed, no try left), ended (the delivery had already "
    "ended, e.g. its webhook was deleted)",
    ["result"],
)
BROKER_MESSAGES = Counter(
    "postassist_broker_messages_total",
    "Broker messages by direction and result: out acked / failed (the outbox's "
    "publishes), in accepted / rejected / dead_letter / nacked (requests taken)",
    ["direction", "result"],
)


def webhook_result(*, succeeded: bool, retrying: bool, ended: bool) -> str:
    """The `result` label of one delivery attempt (see `WEBHOOK_DELIVERIES`)."""
    if ended:
        return "ended"
    if succeeded:
        return "succeeded"
    return "retrying" if retrying else "failed"
