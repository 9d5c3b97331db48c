"""The agent teams: the state every node reads and writes (`state`), the plan the
meta-supervisor may choose (`plan`), the meta graph and its two team subgraphs
(`hierarchy`), the supervisors (`supervisors`), the node factory, `RunContext` and the
`Reporter` (`nodes`), the Content team (`content`, its writer `writer` and the writer's
plan `post_plan`), the Verification team (`verification`), the agents' tools (`tools`)
and prompts (`prompts`), and the sources research fetches (`sources`, `paper_sources`).

May import `agents.checks` and `agents.llm` (and `db`); never `agents.runtime`.
"""
