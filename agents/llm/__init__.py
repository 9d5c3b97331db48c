"""The chat model: the only place that builds one (`chat`: `ModelConfig`, `open_model`,
the model errors), the bundled model's llama.cpp server (`local_server`), the gate every
call passes through (`gate`) and LangChain's internals behind one seam
(`langchain_compat`). `chat` imports `local_server` and `gate`, `local_server` imports
`gate`: no cycle.

Imports nothing of `agents.teams`, `agents.checks` or `agents.runtime`.
"""
