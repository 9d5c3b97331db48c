"""GraphQL types of what is not a task: the static team structure and service health."""

from __future__ import annotations

import strawberry

from agents.llm.gate import ModelState as ModelStateValue
from agents.llm.gate import ModelStatus
from agents.teams.state import DISPLAY_NAMES, ROLES, SUPERVISORS, TEAMS

ModelState = strawberry.enum(
    ModelStateValue,
    description="READY: takes calls now; BUSY: working on calls (new ones wait their turn); "
    "STARTING: the bundled server is loading; DOWN: unreachable or restarting (see reason).",
)


@strawberry.type(description="An agent of a team (static structure).")
class AgentInfo:
    name: str
    display_name: str
    role: str


@strawberry.type(description="A team of the hierarchy (static structure).")
class TeamInfo:
    name: str
    display_name: str
    supervisor: str
    agents: list[AgentInfo]

    @classmethod
    def all(cls) -> list[TeamInfo]:
        """The teams in `agents.teams.state.TEAMS`, in order."""
        return [
            cls(
                name=team,
                display_name=DISPLAY_NAMES[team],
                supervisor=SUPERVISORS[team],
                agents=[
                    AgentInfo(name=a, display_name=DISPLAY_NAMES[a], role=ROLES[a]) for a in agents
                ],
            )
            for team, agents in TEAMS.items()
        ]


@strawberry.type(
    description="Model status. Work is accepted whatever it says: queued tasks wait for the model."
)
class ModelHealth:
    provider: str
    model: str
    ready: bool = strawberry.field(description="READY or BUSY: the model answers calls")
    state: ModelState
    reason: str | None = strawberry.field(description="why the model is not ready")
    in_flight: int = strawberry.field(description="model calls of this process running now")
    waiting: int = strawberry.field(description="model calls of this process waiting a turn")
    restarts: int = strawberry.field(description="restarts of the bundled server after it died")

    @classmethod
    def of(cls, provider: str, model: str, status: ModelStatus) -> ModelHealth:
        """The health of `model` of `provider` in `status`."""
        shown = {name: getattr(status, name) for name in _STATUS_FIELDS}
        return cls(provider=provider, model=model, ready=status.ready, **shown)


#: The `ModelStatus` fields `ModelHealth` shows as they are.
_STATUS_FIELDS = ("state", "reason", "in_flight", "waiting", "restarts")


@strawberry.type(description="Service health.")
class Health:
    status: str = strawberry.field(description="ok or degraded")
    database: bool = strawberry.field(description="the database answers a query")
    bus: bool = strawberry.field(description="the event bus (BROADCAST_URL) takes a message")
    model: ModelHealth
    version: str
