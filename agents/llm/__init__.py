"""The chat model: the only place that builds one (`chat`: `ModelConfig`, `open_model`,
`build_chat_model`, the model errors), one bounded call (`calls`: the gated `ChatOpenAI`
with its deadline and retries, `ModelTimeoutError`, `model_failure`), the bundled model's
llama.cpp server (`local_server`) and its supervision (`supervisor`: restarts), the gate
every call passes through (`gate`), what a call costs (`prices`: `PriceTable`) and
LangChain's internals behind one seam (`langchain_compat`). `chat` imports `calls`,
`supervisor`, `local_server` and `gate`; `supervisor` imports `local_server` and `gate`;
`calls` imports `gate` and `langchain_compat`; `local_server` imports `gate`; `prices`
imports nothing: no cycle.

Imports nothing of `agents.teams`, `agents.checks` or `agents.runtime`.
"""
