"""The GraphQL API of PostAssist: a Strawberry schema on FastAPI, its transport and
security, the lifespan's services and the `postassist` command.

Imports go one way (each layer may import the ones after it, never one before):
`cli` → `app` → `services`, `transport` → `api` → `security` → `health`, `settings`,
`errors`. Nothing in `graph` imports `graph.cli`. Top-level modules:

- `app`: `create_app`, the FastAPI app, its routes, guards and lifespan;
- `services`: `open_services`, the long-lived resources in order;
- `health`: the model monitor and the readiness checks (`/readyz`, the `health` query);
- `settings`: every environment variable (the only package that reads it), by concern;
- `errors`: `extensions.code` errors, masking and error logging.
"""
