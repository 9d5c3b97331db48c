"""How a task runs: the task service, the one application layer over tasks, that
creates, cancels, retries and waits for them (`tasks`) and reads them with ownership
applied (`task_reads`); a task's durable DBOS workflow and its graph run
(`execution`); the worker with its checkpointer and heartbeats (`worker`); and DBOS's
internals behind one seam (`dbos_compat`).

The top layer: may import `agents.teams`, `agents.checks` and `agents.llm` (and `db`);
no other module of `agents` imports it.
"""
