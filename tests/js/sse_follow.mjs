// Follows a task over GraphQL over SSE with the unmodified graphql-sse client in its
// distinct connections mode: subscribes to taskProgress from afterSeq 0 and drops the
// connection (disposes the subscription, which aborts its request) after DROP_AFTER
// events; then reconnects as a browser's EventSource does, sending the last event id
// it saw as Last-Event-ID (the query still says afterSeq 0), until the stream completes.
// Usage: node sse_follow.mjs <graphql url> <task id> <drop after> [token]
// Prints one JSON line: {"phases": [[seq, ...], [seq, ...]], "ids": [...], "terminal": {...}}.
import { createClient } from "graphql-sse";

const [url, taskId, dropAfter, token] = process.argv.slice(2);
const query = `subscription TaskProgress($taskId: ID!, $afterSeq: Int!) {
  taskProgress(taskId: $taskId, afterSeq: $afterSeq) { seq kind status isTerminal }
}`;

function follow(lastEventId, limit) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (lastEventId !== null) headers["Last-Event-ID"] = String(lastEventId);
  const client = createClient({ url, headers, retryAttempts: 0 });
  return new Promise((resolve, reject) => {
    const events = [];
    let dropped = false; // no event counts after the drop, even one already on its way
    const dispose = client.subscribe(
      { query, variables: { taskId, afterSeq: 0 } },
      {
        next: (result) => {
          if (result.errors) return reject(new Error(JSON.stringify(result.errors)));
          if (dropped) return;
          events.push(result.data.taskProgress);
          if (limit !== null && events.length >= limit) {
            dropped = true;
            dispose();
            resolve(events);
          }
        },
        error: reject,
        complete: () => resolve(events),
      },
    );
  }).finally(() => client.dispose());
}

const first = await follow(null, Number(dropAfter));
const second = await follow(first[first.length - 1].seq, null);
const terminal = second[second.length - 1];
console.log(JSON.stringify({ phases: [first.map((e) => e.seq), second.map((e) => e.seq)], terminal }));
