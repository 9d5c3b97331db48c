"""GraphQL types of what is not a task: the static team structure and service health."""

from __future__ import annotations

import strawberry

from agents.state import DISPLAY_NAMES, ROLES, SUPERVISORS, TEAMS


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
        """The teams in `agents.state.TEAMS`, in order."""
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


@strawberry.type(description="Model status.")
class ModelHealth:
    provider: str
    model: str
    ready: bool


@strawberry.type(description="Service health.")
class Health:
    status: str = strawberry.field(description="ok or degraded")
    database: bool = strawberry.field(description="the database answers a query")
    bus: bool = strawberry.field(description="the event bus (BROADCAST_URL) takes a message")
    model: ModelHealth
    version: str
