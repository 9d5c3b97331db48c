// Follows a task over multipart HTTP with an unmodified Apollo Client and only its
// HttpLink: subscribes to taskProgress from afterSeq 0, drops the connection (an
// unsubscribe aborts the fetch) after DROP_AFTER events, then subscribes again with
// afterSeq = the last seq seen until the stream completes after the terminal event.
// Usage: node apollo_http_follow.mjs <graphql url> <task id> <drop after> [token]
// Prints one JSON line: {"phases": [[seq, ...], [seq, ...]], "terminal": {...}}.
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";

const [url, taskId, dropAfter, token] = process.argv.slice(2);
const TASK_PROGRESS = gql`
  subscription TaskProgress($taskId: ID!, $afterSeq: Int!) {
    taskProgress(taskId: $taskId, afterSeq: $afterSeq) { seq kind status isTerminal }
  }
`;
const client = new ApolloClient({
  link: new HttpLink({ uri: url, headers: token ? { authorization: `Bearer ${token}` } : {} }),
  cache: new InMemoryCache(),
});

function follow(afterSeq, limit) {
  return new Promise((resolve, reject) => {
    const events = [];
    let dropped = false; // no event counts after the drop, even one already on its way
    const subscription = client
      .subscribe({ query: TASK_PROGRESS, variables: { taskId, afterSeq }, fetchPolicy: "no-cache" })
      .subscribe({
        next: (result) => {
          if (result.error) return reject(result.error);
          if (dropped) return;
          events.push(result.data.taskProgress);
          if (limit !== null && events.length >= limit) {
            dropped = true;
            subscription.unsubscribe();
            resolve(events);
          }
        },
        error: reject,
        complete: () => resolve(events),
      });
  });
}

const first = await follow(0, Number(dropAfter));
const second = await follow(first[first.length - 1].seq, null);
const terminal = second[second.length - 1];
console.log(JSON.stringify({ phases: [first.map((e) => e.seq), second.map((e) => e.seq)], terminal }));
