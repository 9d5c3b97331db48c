"""What operators see of the service: structured logs (`logs`: structlog over stdlib
logging, `LOG_FORMAT`), the request id of each HTTP request and WebSocket
(`request_id`), Prometheus metrics (`metrics`: the API's own gauges and the scrape-time
counts; `endpoint`: `/metrics`), OpenTelemetry tracing (`tracing`, only imported when
`OTEL_EXPORTER_OTLP_ENDPOINT` is set) and the schema extensions that feed them
(`extensions`).

May import `graph.settings`, `agents.telemetry`, `db` and third-party packages; no other
module of `graph` (the app, the schema and the CLI import this package, not the reverse).
This module itself imports nothing (the CLI reads `OWN_LOGGERS` at start).
"""

#: The service's own loggers, shown at LOG_LEVEL; libraries' (alembic, dbos, httpx) at
#: WARNING and above (DBOS alone logs ~130 INFO lines of migrations at each start).
OWN_LOGGERS = ("graph", "agents", "db")
