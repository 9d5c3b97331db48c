"""The typed shape of a task's `teams` snapshot, shared by all three layers.

`agents` builds the initial snapshot from its team structure, `db.event_log` folds
events into it, `graph` reads it for `Task.teams`. On the `Task` row it is stored as
JSON (`Teams.dump()`), read back with `Teams.load()`.

Token usage and cost are folded at three levels from each LLM_USAGE event (its data:
`input_tokens`, `output_tokens`, `total_tokens`, `cost_usd`): an agent's own calls on
its `AgentSnapshot.usage`; a team's on `TeamSnapshot.usage`, which is its agents' calls
plus its supervisor's (supervisors report with their team but are not listed as its
agents); and every call of the task, the meta-supervisor's included (it reports with no
team, so it counts only there), on the `Task` row's usage columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, TypeAdapter

from db.enums import EventKind, TaskStatus, WorkStatus
from db.models import AgentLog, Task


class UsageSnapshot(BaseModel):
    """Token usage summed over some LLM calls of a task (an agent's or a team's).

    `cost_usd` is the sum of the calls' `cost_usd` (USD, priced by the worker when each
    call answered); None once any of the calls had no price (its cost is unknown, so
    the sum would understate it). No call yet: all 0."""

    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float | None = 0.0

    def add(self, data: Mapping[str, Any]) -> None:
        """Count one call from an LLM_USAGE event's `data` (a missing count is 0, a
        missing or null `cost_usd` unknown)."""
        self.llm_calls += 1
        self.input_tokens += int(data.get("input_tokens") or 0)
        self.output_tokens += int(data.get("output_tokens") or 0)
        self.total_tokens += int(data.get("total_tokens") or 0)
        self.cost_usd = add_cost(self.cost_usd, data.get("cost_usd"))


def add_cost(total: float | None, cost: Any) -> float | None:
    """`total` plus one call's `cost` in USD; None (unknown) when either is None."""
    if total is None or cost is None:
        return None
    return round(total + float(cost), COST_DECIMALS)


#: Decimal places a summed cost keeps (as `agents.llm.prices.COST_DECIMALS`: `db`
#: imports nothing of `agents`): float sums stay equal whatever the order of the calls.
COST_DECIMALS = 12


class AgentSnapshot(BaseModel):
    """One agent's state within a task. `progress` is 0..1; `activity` the current step;
    `usage` the agent's own LLM calls (a snapshot stored before usage was kept per agent
    loads with zero usage)."""

    name: str
    status: WorkStatus = WorkStatus.IDLE
    progress: float = 0.0
    activity: str | None = None
    updated_at: datetime | None = None
    error: str | None = None
    usage: UsageSnapshot = Field(default_factory=UsageSnapshot)


class TeamSnapshot(BaseModel):
    """One team's state within a task. `progress` is agents finished in the current
    round out of the team's agents (0..1); `finished_in_round` names them. `usage` is
    the LLM calls of its agents and of its supervisor (so it is more than the sum of its
    agents' `usage` by the supervisor's calls; a snapshot stored before usage was kept
    per team loads with zero usage)."""

    name: str
    status: WorkStatus = WorkStatus.IDLE
    progress: float = 0.0
    started_at: datetime | None = None
    completed_at: datetime | None = None
    agents: list[AgentSnapshot] = Field(default_factory=list)
    finished_in_round: list[str] = Field(default_factory=list)
    usage: UsageSnapshot = Field(default_factory=UsageSnapshot)

    def agent(self, name: str) -> AgentSnapshot:
        """The entry of agent `name`, created IDLE if the snapshot lacks it."""
        entry = self.listed(name)
        if entry is None:
            entry = AgentSnapshot(name=name)
            self.agents.append(entry)
        return entry

    def listed(self, name: str) -> AgentSnapshot | None:
        """The entry of agent `name`; None when the team does not list it (its
        supervisor, for one)."""
        return next((entry for entry in self.agents if entry.name == name), None)


_TEAMS = TypeAdapter(list[TeamSnapshot])


class Teams(list[TeamSnapshot]):
    """The snapshot: every team of a task, in plan order."""

    @classmethod
    def initial(cls, structure: Mapping[str, Sequence[str]]) -> Teams:
        """Every team of `structure` (team name -> its agents) with all statuses IDLE."""
        return cls(
            TeamSnapshot(name=team, agents=[AgentSnapshot(name=a) for a in agents])
            for team, agents in structure.items()
        )

    @classmethod
    def load(cls, data: list[dict[str, Any]] | None) -> Teams:
        """Parse the JSON stored on `Task.teams` (raises `pydantic.ValidationError`)."""
        return cls(_TEAMS.validate_python(data or []))

    def dump(self) -> list[dict[str, Any]]:
        """The JSON to store on `Task.teams`."""
        return _TEAMS.dump_python(list(self), mode="json")

    def team(self, name: str) -> TeamSnapshot:
        """The entry of team `name`, created IDLE if the snapshot lacks it."""
        for entry in self:
            if entry.name == name:
                return entry
        entry = TeamSnapshot(name=name)
        self.append(entry)
        return entry


def fold(task: Task, event: AgentLog) -> None:
    """Apply the stored `event` to `task`'s snapshot: status, times, progress, `teams`,
    current team/agent and token usage (an LLM_USAGE event counts for the task, for its
    team and, unless a supervisor made the call, for its agent; see the module's
    docstring)."""
    now = event.created_at
    task.updated_at = now
    task.last_seq = event.seq
    task.progress = event.progress
    teams = Teams.load(task.teams)
    kind = EventKind(event.kind)
    team = teams.team(event.team) if event.team else None
    # supervisors report with their team but are not listed as its agents
    agent = team.agent(event.agent) if team and event.agent and kind in _AGENT_KINDS else None

    if kind == EventKind.TASK_STATUS:
        _fold_status(task, event, TaskStatus(event.data["status"]), teams)
    elif kind == EventKind.TEAM_STARTED and team is not None:
        # Agents keep their status from an earlier round until they start again.
        team.status, team.progress, team.started_at = WorkStatus.WORKING, 0.0, now
        team.completed_at, team.finished_in_round = None, []
        task.current_team, task.current_agent = event.team, None
    elif kind == EventKind.TEAM_FINISHED and team is not None:
        team.status, team.progress, team.completed_at = WorkStatus.COMPLETED, 1.0, now
        task.current_agent = None
    elif kind == EventKind.AGENT_STARTED and agent is not None:
        agent.status, agent.progress, agent.activity = WorkStatus.WORKING, 0.0, event.message
        agent.error = None
        task.current_team, task.current_agent = event.team, event.agent
    elif kind == EventKind.AGENT_FINISHED and agent is not None and team is not None:
        agent.status, agent.progress, agent.activity = WorkStatus.COMPLETED, 1.0, event.message
        if agent.name not in team.finished_in_round:
            team.finished_in_round.append(agent.name)
    elif kind == EventKind.AGENT_ERROR and agent is not None and team is not None:
        agent.status, agent.error, agent.activity = WorkStatus.ERROR, event.message, None
        team.status = WorkStatus.ERROR
    elif kind == EventKind.PAUSE_REQUESTED:
        task.pause_requested = True
    elif kind == EventKind.LLM_USAGE:
        _fold_usage(task, event, team)

    if agent is not None:
        agent.updated_at = now
    if team is not None and team.agents and team.status == WorkStatus.WORKING:
        team.progress = round(min(1.0, len(team.finished_in_round) / len(team.agents)), 4)
    task.teams = teams.dump()


_AGENT_KINDS = frozenset({EventKind.AGENT_STARTED, EventKind.AGENT_FINISHED, EventKind.AGENT_ERROR})


def _fold_usage(task: Task, event: AgentLog, team: TeamSnapshot | None) -> None:
    """Count the call of LLM_USAGE `event` for the task, its team (if any) and its
    agent, if the team lists it (a supervisor's call counts for its team only)."""
    data = event.data or {}
    task.llm_calls += 1
    task.input_tokens += int(data.get("input_tokens") or 0)
    task.output_tokens += int(data.get("output_tokens") or 0)
    task.total_tokens += int(data.get("total_tokens") or 0)
    task.cost_usd = add_cost(task.cost_usd, data.get("cost_usd"))
    if team is None:
        return
    team.usage.add(data)
    if event.agent and (agent := team.listed(event.agent)) is not None:
        agent.usage.add(data)


#: Non-terminal statuses in which no run holds the task: it waits for a person.
_WAITING = frozenset({TaskStatus.AWAITING_REVIEW, TaskStatus.PAUSED})

#: What a team or agent still WORKING becomes when its task ends in a status.
_STOPPED = {
    TaskStatus.COMPLETED: WorkStatus.COMPLETED,
    TaskStatus.FAILED: WorkStatus.ERROR,
    TaskStatus.CANCELLED: WorkStatus.IDLE,
}


def _fold_status(task: Task, event: AgentLog, status: TaskStatus, teams: Teams) -> None:
    task.status = status
    if status == TaskStatus.RUNNING and task.started_at is None:
        task.started_at = event.created_at
    if status != TaskStatus.RUNNING:  # a pause request ends when the run stops
        task.pause_requested = False
    if status in _WAITING:  # nothing works while a person is asked, or the task is paused
        task.current_team = task.current_agent = None
    if status == TaskStatus.AWAITING_REVIEW or status.is_terminal:
        task.pending_answer = None  # the run got to the answer's end (a pause keeps it)
    if not status.is_terminal:
        return
    task.completed_at = event.created_at
    task.current_team = task.current_agent = None
    if status == TaskStatus.COMPLETED:
        task.progress = event.progress = 1.0
    for entry in [*teams, *(a for t in teams for a in t.agents)]:
        if entry.status == WorkStatus.WORKING:
            entry.status = _STOPPED[status]
