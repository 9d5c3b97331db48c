"""The `postassist` command (`main`: serve, worker, generate, export-schema, ...), its
`keys` commands (`keys`) and the small HTTP + graphql-transport-ws client it and the
benchmarks use (`client`).

The top layer: may import any module of `graph`; no module of `graph` imports it.
"""
