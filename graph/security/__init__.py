"""Who a caller is and how much it may do: principals, API keys, local mode and the
WebSocket connection cap (`auth`), JWTs (`jwt_auth`), and the per-principal rate limits
and queue cap (`rate_limits`).

May import `graph.settings` and `graph.errors` (and `db`); never `graph.api`,
`graph.transport`, `graph.services`, `graph.app` or `graph.cli`.
"""
