"""The agent teams: the state every node reads and writes (`state`), the plan the
meta-supervisor may choose (`plan`), the meta graph and its two team subgraphs
(`hierarchy`), the supervisors (`supervisors`), the node factory, `RunContext` and the
`Reporter` (`nodes`), the Content team (`content`, its writer `writer` and the writer's
plan `post_plan`), the Verification team (`verification`), the agents' tools (`tools`)
and prompts (`prompts`), and the sources research fetches (`sources`: the settings and
web search; `arxiv`: the arXiv API; `paper_sources`: what a run fetches; `fetched_text`:
what the fetched text adds to the request and the notes). The agents' outputs are
`db.outputs` models; the state holds their JSON.

May import `agents.checks` and `agents.llm` (and `db`); never `agents.runtime`.
"""
