"""The GraphQL surface: the schema (`schema`), its context (`context`), types (`types`;
the agents' outputs in `outputs`, the static teams and health in `info`) and inputs, the
queries, mutations and subscriptions, Relay pages (`pagination`), the query
limits (`query_limits`, with their rules: `query_cost`, `query_introspection`,
`query_text`) and Strawberry's internals behind one seam (`strawberry_compat`).

May import `graph.security`, `graph.health`, `graph.settings` and `graph.errors` (and
`agents`, `db`); never `graph.transport`, `graph.services`, `graph.app` or `graph.cli`.
"""
