"""What PostAssist tells, and takes from, other systems: the lifecycle events a task's
status changes become (`lifecycle`), signed webhooks delivered durably on DBOS
(`webhooks`, with the address guard in `addresses`), and the message broker: the
transactional outbox and its publisher, and requests taken from a subject.

Each part is an `db.sinks.EventSink` the service installs on its event logs, so what
leaves the process is written in the transaction of the event that causes it.

May import `agents.runtime` (the task service, the DBOS seam) and `db`; only the
service's wiring (`graph.services`) and the GraphQL layer import it.
"""
