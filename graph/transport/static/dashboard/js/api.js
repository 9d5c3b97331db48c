// The public GraphQL API, nothing else: queries and mutations over HTTP POST /graphql,
// subscriptions over graphql-transport-ws (the vendored graphql-ws client). In keyed
// deployments the key (an API key or a JWT) is kept in sessionStorage and sent as
// `Authorization: Bearer` on HTTP and in connection_init's payload; in local mode no
// key exists and no header is sent (a header local mode does not know is refused).

const KEY = "postassist.apiKey";
const listeners = { unauthenticated: [], state: [], reconnected: [] };

export const auth = {
  get key() { return sessionStorage.getItem(KEY); },
  set(key) { sessionStorage.setItem(KEY, key); },
  clear() { sessionStorage.removeItem(KEY); },
};

/** `on("unauthenticated" | "state" | "reconnected", fn)`. */
export function on(event, fn) { listeners[event].push(fn); }
const emit = (event, ...args) => listeners[event].forEach((fn) => fn(...args));

/** A GraphQL answer with errors: `code`, `field`, `fields` of the first error. */
export class ApiError extends Error {
  constructor(errors, status) {
    const first = errors[0] || {};
    super(first.message || `HTTP ${status}`);
    this.errors = errors;
    this.status = status;
    this.code = first.extensions?.code;
    this.field = first.extensions?.field;
    this.fields = first.extensions?.fields;
  }
}

function authHeaders() {
  const key = auth.key;
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/** POST one operation; resolves to `data`, rejects with ApiError. */
export async function gql(query, variables = {}) {
  const response = await fetch("/graphql", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json", ...authHeaders() },
    body: JSON.stringify({ query, variables }),
  });
  let body = null;
  try { body = await response.json(); } catch { /* not JSON: reported below */ }
  const errors = body?.errors || (response.ok ? [] : [{ message: `HTTP ${response.status}` }]);
  if (errors.length) {
    const error = new ApiError(errors, response.status);
    if (response.status === 401 || error.code === "UNAUTHENTICATED") emit("unauthenticated", error);
    throw error;
  }
  return body.data;
}

// --- WebSocket -------------------------------------------------------------------

let socket = null;
let holdUntil = 0;
let client = null;

function wsUrl() {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`;
}

function createWsClient() {
  const { createClient } = window.graphqlWs;
  const made = createClient({
    url: wsUrl(),
    connectionParams: () => authHeaders(),
    lazy: true,
    lazyCloseTimeout: 2000,
    keepAlive: 15000,
    retryAttempts: Infinity,
    shouldRetry: () => true,
    // Back off 0.5, 1, 2, 3, 3 ... s; a test's dropConnection(ms) holds the socket shut.
    retryWait: (retries) => new Promise((resolve) =>
      setTimeout(resolve, Math.max(Math.min(500 * 2 ** retries, 3000), holdUntil - Date.now()))),
    on: {
      connecting: () => emit("state", "connecting"),
      connected: (ws, _payload, wasRetry) => {
        socket = ws;
        emit("state", "live");
        if (wasRetry) emit("reconnected");
      },
      closed: (event) => {
        socket = null;
        emit("state", "reconnecting");
        if (event?.code === 4403) emit("unauthenticated", new ApiError([{ message: event.reason }]));
      },
    },
  });
  return made;
}

function ws() {
  client ||= createWsClient();
  return client;
}

/**
 * Subscribe to `query` with `variables`; `handlers`: {next(data), error(ApiError),
 * complete()}. The same `variables` object is sent again on every reconnection, so a
 * caller that updates it (afterSeq) resumes where it stopped. Returns a dispose function.
 */
export function subscribe(query, variables, handlers) {
  const payload = { query, variables };
  return ws().subscribe(payload, {
    next: (result) => {
      if (result.errors?.length) handlers.error?.(new ApiError(result.errors));
      else handlers.next(result.data);
    },
    error: (err) => {
      const errors = Array.isArray(err) ? err : [{ message: err?.reason || String(err) }];
      handlers.error?.(new ApiError(errors));
    },
    complete: () => handlers.complete?.(),
  });
}

/** Close the live WebSocket now (as a network drop would) and keep it shut for
 * `holdMs`; the client then reconnects and resubscribes. For tests and drills. */
export function dropConnection(holdMs = 0) {
  holdUntil = Date.now() + holdMs;
  if (socket) socket.close(4499, "dropped by the page");
  return Boolean(socket);
}

/** Reconnect with the current key (after it changed). */
export function reconnect() { client?.terminate(); }
