"""The PaperResearcher as three nodes, so LangGraph's node cache can serve its notes.

```
content_supervisor -> paper_researcher -> paper_researcher_notes -> paper_researcher_done
        ^             (AGENT_STARTED,     (the work: sources, the   (AGENT_FINISHED: cached
        |              the cache key)      model call; CachePolicy)  or not, by which task)
        └──────────────────────────────────────────────────────────────────┘
```

A cache hit skips `paper_researcher_notes` entirely, so the events a client sees live in
the nodes around it: `paper_researcher` reports AGENT_STARTED and puts the cache key and a
fresh call id in the state; the notes node does the work (its LLM_CALL, TOOL_CALL and
LLM_USAGE events happen only when it runs) and writes the notes with their origin (the
call id it answered, the task that computed them, when); `paper_researcher_done`
reports AGENT_FINISHED, with `data.cached` true and `data.computed_by` the computing task
when the origin's call id is not this run's (the writes came from the cache).

The cache key (`notes_key`, a SHA-256 of JSON) is what the notes depend on: the paper's
title and context as the user gave them, the model's name, the review feedback the
prompt carries (none in a first round), where research may fetch real sources (whether
enabled, the arXiv root, whether web search is configured; never the key), and
`RunContext.cache_scope`, the task's owner. So notes are shared by one principal's tasks
(a batch of tones of one paper researches it once) and never served to another
principal: a hit would tell them, through `cached` and its timing, that someone else
submitted the same text within the TTL, and would name that task.

Imports: `agents.teams` and `db` only.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.graph import StateGraph
from langgraph.runtime import Runtime
from langgraph.types import CachePolicy

from agents.teams import content, plan
from agents.teams.nodes import Reporter, RunContext
from agents.teams.sources import SourcesConfig
from agents.teams.state import PAPER_RESEARCHER, TEAM_OF, PostState, given_request_of
from db.enums import EventKind
from db.events import TaskResult
from db.models import utcnow
from db.outputs import ResearchNotes

#: The node that does the research (cached), and the one that reports it finished.
NOTES_NODE = f"{PAPER_RESEARCHER}_notes"
DONE_NODE = f"{PAPER_RESEARCHER}_done"
#: What the PaperResearcher reports it is doing when it starts.
ACTIVITY = "researching the paper"
#: Seconds cached notes are served: a day (a paper's record and a model do not change
#: within one; a new model name is a new key anyway).
NOTES_TTL = 24 * 3600


def model_name(model: BaseChatModel) -> str:
    """The name a chat model is asked by (`model_name` of `ChatOpenAI`), else its class."""
    for attribute in ("model_name", "model"):
        value = getattr(model, attribute, None)
        if isinstance(value, str) and value:
            return value
    return type(model).__name__


def _sources_key(sources: SourcesConfig) -> dict[str, Any]:
    if not sources.enabled:
        return {"enabled": False}
    return {
        "enabled": True,
        "arxiv": sources.arxiv_api_url,
        "web": sources.tavily_api_key is not None,
        "web_url": sources.tavily_api_url,
    }


def cache_key(state: PostState, context: RunContext) -> str:
    """The notes' cache key in `state` under `context` (see the module docstring)."""
    request = given_request_of(state)
    parts = {
        "title": request.paper_title,
        "context": request.additional_context,
        "model": model_name(context.model),
        "feedback": list(state.get("feedback") or []),
        "previous_post": state.get("previous_post"),  # the prompts quote it with the feedback
        "sources": _sources_key(context.sources),
        "scope": context.cache_scope,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def notes_key(state: PostState) -> str:
    """The `CachePolicy.key_func` of the notes node: the key `start` put in the state."""
    return state.get("research_key") or ""


def _reporter(runtime: Runtime[RunContext]) -> Reporter:
    return Reporter.of(runtime, team=TEAM_OF[PAPER_RESEARCHER], agent=PAPER_RESEARCHER)


async def start(state: PostState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Report AGENT_STARTED; put the cache key and a new call id in the state."""
    await _reporter(runtime).emit(EventKind.AGENT_STARTED, ACTIVITY)
    await runtime.context.flush()
    return {"research_key": cache_key(state, runtime.context), "research_call": uuid.uuid4().hex}


async def notes(state: PostState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """The research (`agents.teams.content.research`); the notes with their origin. An
    error is reported as AGENT_ERROR (its type only) and re-raised: LangGraph caches
    nothing of a node that failed."""
    reporter = _reporter(runtime)
    try:
        output = await content.research(reporter, state)
    except Exception as exc:
        await reporter.emit(
            EventKind.AGENT_ERROR, f"{PAPER_RESEARCHER} stopped: {type(exc).__name__}"
        )
        raise
    await runtime.context.flush()
    info = runtime.execution_info
    origin = {
        "call": state.get("research_call"),
        "task_id": info.thread_id if info is not None else None,
        "at": utcnow().isoformat(),
        "summary": output.summary,
    }
    return {"research": output.update["research"], "research_origin": origin}


async def done(state: PostState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Report AGENT_FINISHED with the plan's progress and the notes to store; `cached`
    (and `computed_by`, `computed_at`) say whether they came from the cache."""
    origin = state.get("research_origin") or {}
    cached = origin.get("call") != state.get("research_call")
    update = {
        "research_round": state.get("revision", 0),
        "steps_done": state.get("steps_done", 0) + 1,
    }
    after: PostState = {**state, **update}  # type: ignore[typeddict-item]
    summary = str(origin.get("summary") or "notes")
    data: dict[str, Any] = {"cached": cached}
    if cached:
        data.update(computed_by=origin.get("task_id"), computed_at=origin.get("at"))
        summary += f" (from the cache: researched by task {origin.get('task_id')})"
    notes_ = ResearchNotes.model_validate(state.get("research") or {})
    await _reporter(runtime).emit(
        EventKind.AGENT_FINISHED,
        summary,
        data=data,
        progress=plan.progress(after),
        result=TaskResult(research_notes=notes_),
    )
    await runtime.context.flush()
    return update


def add_researcher(builder: StateGraph, *, back_to: str) -> None:
    """Add the PaperResearcher's three nodes to `builder` (the Content team's graph), the
    last with an edge to `back_to` (its supervisor); routing to PAPER_RESEARCHER starts
    it. Only the notes node is cached (`NOTES_TTL`)."""
    builder.add_node(PAPER_RESEARCHER, start)
    builder.add_node(NOTES_NODE, notes, cache_policy=CachePolicy(key_func=notes_key, ttl=NOTES_TTL))
    builder.add_node(DONE_NODE, done)
    builder.add_edge(PAPER_RESEARCHER, NOTES_NODE)
    builder.add_edge(NOTES_NODE, DONE_NODE)
    builder.add_edge(DONE_NODE, back_to)
