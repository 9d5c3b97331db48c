"""How requests arrive: the GraphQL router and the WebSocket `connection_init`
(`router`), both WebSocket protocols (`ws_protocols`), their messages' shapes
(`ws_messages`), the WebSocket adapter with its size checks and close codes
(`ws_adapter`), subscriptions over plain HTTP (Strawberry's multipart and SSE
transports: `sse` for SSE event ids and `Last-Event-ID`, `http_streams` for what an
open stream holds), the ASGI middleware (`middleware`: body cap, origin and host guards,
security headers), the offline GraphiQL page (`ide`, its vendored files in
`static/ide`) and uvicorn's request-head deadline (`uvicorn_compat`).

May import `graph.api`, `graph.security`, `graph.settings` and `graph.errors` (and
`db.compat`, the seams' version check); never `graph.services`, `graph.app` or
`graph.cli`.
"""
