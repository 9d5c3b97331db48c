"""The `postassist` command: the typer app and its registrations (`main`), the commands
that run the service (`serve`: serve, worker, export-schema), `generate` (`generate`)
with its live view (`live_view`, its rows `live_rows`), its wording (`phrasing`) and
its output (`output`), the `keys` commands (`keys`), and the small HTTP +
graphql-transport-ws client it and the benchmarks use (`client`).

The top layer: may import any module of `graph`; no module of `graph` imports it.
"""
