"""Who a caller is and how much it may do: the authentication modes (`auth`), principals
and credentials (`principals`), local mode's rules (`local_mode`), API keys
(`api_keys`), JWTs (`jwt_auth`), the WebSocket connection caps (`connection_caps`), and
the per-principal rate limits and queue cap (`rate_limits`).

May import `graph.settings` and `graph.errors` (and `db`); never `graph.api`,
`graph.transport`, `graph.services`, `graph.app` or `graph.cli`.
"""
