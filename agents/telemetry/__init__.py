"""What the agents layer tells operators: its Prometheus metrics (`metrics`: task runs,
pick-up latency, agents, model calls, webhook and broker deliveries), the tracer seam
(`tracing`: a no-op unless `graph.telemetry` installs an OpenTelemetry tracer) and the
`RunObserver` that turns one attempt's events into both (`runs`).

A leaf of `agents`: imports `db` (events, enums) and prometheus-client only, so every
other layer (`runtime`, `integrations`, `teams`, `llm`) may import it. OpenTelemetry is
never imported here: the tracer and the span context come through `tracing`.
"""
