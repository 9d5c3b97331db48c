"""What PostAssist tells, and takes from, other systems: the lifecycle events a task's
status changes become (`lifecycle`), signed webhooks delivered durably on DBOS
(`webhooks`, `deliveries`, with the address guard in `addresses`), and the message
broker (`broker`: CloudEvents and subjects; `broker_client`: FastStream): the
transactional outbox and its publisher (`outbox`), and requests taken from a subject
(`requests`).

What leaves the process is written by an `db.sinks.EventSink` the service installs on
its event logs, in the transaction of the event that causes it, and sent by a
`agents.runtime.worker.WorkerPlugin` of the worker.

May import `agents.runtime` (the task service, the DBOS seam) and `db`; only the
service's wiring (`graph.services`) and the GraphQL layer import it.
"""
