"""The LangGraph agent teams that research, write and verify a LinkedIn post.

Imports go one way (each layer may import the ones after it, never one before):
`runtime` → `teams` → `checks`, `llm`; `checks` and `llm` import nothing of the other
layers. `agents` may import `db`; it never imports `graph`.

- `teams`: the state, the meta graph and its two team subgraphs, the supervisors, the
  agents, their tools and prompts, the sources research fetches;
- `checks`: the deterministic checks of a text (what code checks better than a model);
- `runtime`: a task's durable run on DBOS, the worker, the task service;
- `llm`: the chat model, the bundled model's server and the model gate.

The public face, loaded on first use (so `agents.checks.wording`, which the CLI imports,
stays cheap): `build_graph`, `run_worker`, `TaskService`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agents.runtime.tasks import TaskService
    from agents.runtime.worker import run_worker
    from agents.teams.hierarchy import build_graph

__all__ = ["TaskService", "build_graph", "run_worker"]

_PUBLIC = {
    "TaskService": "agents.runtime.tasks",
    "build_graph": "agents.teams.hierarchy",
    "run_worker": "agents.runtime.worker",
}


def __getattr__(name: str) -> Any:
    """Import a public name's module when the name is first read."""
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'agents' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
