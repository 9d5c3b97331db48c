// The dashboard's entry: the key (when the server requires one), the connection
// indicator, the routes (#/task/<id>, #/batch/<id>) and the page-level hooks tests use
// (window.__postassist).

import { auth, gql, on, dropConnection, reconnect } from "./api.js";
import * as tasks from "./tasks.js";
import * as form from "./form.js";
import * as task from "./task.js";
import { $, fill } from "./dom.js";

const violations = [];
document.addEventListener("securitypolicyviolation", (event) =>
  violations.push(`${event.violatedDirective}: ${event.blockedURI}`));

const STATES = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…" };
let connections = 0;
on("state", (state) => {
  if (state === "live") connections += 1;
  const status = $("#connection");
  status.dataset.state = state;
  status.textContent = STATES[state] || state;
});

let asking = null;
/** Ask for a key (a modal dialog); resolves once one is stored. */
function askForKey(error) {
  if (asking) return asking;
  const dialog = $("#key-dialog");
  fill($("#key-error"), auth.key ? `Refused: ${error?.message || "the key is not valid"}` : "");
  auth.clear();
  asking = new Promise((resolve) => {
    $("#key-form").onsubmit = (event) => {
      const key = $("#key-input").value.trim();
      if (!key) { event.preventDefault(); fill($("#key-error"), "Enter a key."); return; }
      auth.set(key);
      $("#key-input").value = "";
      $("#forget-key").hidden = false;
      asking = null;
      reconnect();
      resolve();
    };
  });
  if (!dialog.open) dialog.showModal();
  return asking;
}
on("unauthenticated", (error) => askForKey(error));

/** Wait until the API answers (asking for a key while it says UNAUTHENTICATED). */
async function authenticated() {
  for (;;) {
    try {
      await gql("query Probe { tasks(first: 1) { totalCount } }");
      return;
    } catch (error) {
      if (error.code !== "UNAUTHENTICATED") throw error;
      await askForKey(error);
    }
  }
}

function route() {
  const [, kind, id] = location.hash.match(/^#\/(task|batch)\/([\w-]+)/) || [];
  if (kind === "batch") tasks.showBatch(id);
  if (kind === "task") {
    tasks.select(id);
    task.open(id, pending?.id === id ? pending : null, { fromGenerate: pending?.id === id });
    pending = null;
    $("#task-title")?.focus();
  }
}
let pending = null; // the task a generatePost just returned, shown before its first read

async function main() {
  $("#forget-key").hidden = !auth.key;
  $("#forget-key").addEventListener("click", () => { auth.clear(); location.reload(); });
  await authenticated();
  form.start({
    onStarted: (started) => {
      tasks.upsert(started);
      pending = started;
      location.hash = `#/task/${started.id}`;
    },
    onBatch: (started) => {
      tasks.upsert(...started);
      location.hash = `#/batch/${started[0].batchId}`;
    },
  });
  window.addEventListener("hashchange", route);
  await tasks.start();
  route();
  document.body.dataset.ready = "true";
}

/** For tests and drills: drop the WebSocket, read the seqs shown and the counters. */
window.__postassist = {
  dropConnection,
  stats: task.stats,
  violations,
  connections: () => connections,
  seqs: () => [...document.querySelectorAll("#t-event-list li")].map((li) => Number(li.dataset.seq)),
};

main().catch((error) => fill($("#main"), `The dashboard could not start: ${error.message}`));
