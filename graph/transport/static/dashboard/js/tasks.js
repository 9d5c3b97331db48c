// The task list: one query (tasks, filtered by status and batch), then kept live by
// `taskUpdates` (each change patches its row at once; the list is read again, at most
// every 0.5 s, for what a status change moves: queue positions, progress, cost).

import { gql, subscribe, on } from "./api.js";
import { TASKS, TASK_UPDATES } from "./queries.js";
import { $, h, fill, badge, bar, cost, throttle } from "./dom.js";

const rows = new Map(); // id -> task (as the list shows it)
let selected = null;
let filter = { status: "", batchId: "" };

const matches = (task) =>
  (!filter.status || task.status === filter.status) &&
  (!filter.batchId || task.batchId === filter.batchId);

function row(task) {
  const approved = task.approved === null || task.approved === undefined ? "—" : task.approved ? "yes" : "no";
  return h("tr", { "data-id": task.id, "data-status": task.status, "aria-current": task.id === selected ? "true" : null },
    h("td", { class: "paper" }, h("a", { href: `#/task/${task.id}` }, task.paperTitle)),
    h("td", {}, badge(task.status), task.pauseRequested ? " (pausing)" : ""),
    h("td", {}, bar(task.progress, `progress of ${task.paperTitle}`)),
    h("td", {}, approved),
    h("td", { title: task.usage.costUsd === null ? "no price known for this model" : null }, cost(task.usage.costUsd)),
    h("td", {}, task.queuePosition ?? "—"));
}

function render() {
  const shown = [...rows.values()].filter(matches)
    .sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
  fill($("#task-rows"), shown.map(row));
  $("#tasks-empty").hidden = shown.length > 0;
}

/** Add or update tasks (from a mutation, an update or the task page). */
export function upsert(...tasks) {
  for (const task of tasks) rows.set(task.id, { ...rows.get(task.id), ...task });
  render();
}

/** Patch one shown task's progress (the task page sees every event). */
export function patchProgress(id, progress) {
  const task = rows.get(id);
  if (task && task.progress !== progress) upsert({ id, progress });
}

export function select(id) { selected = id; render(); }

export async function reload() {
  const variables = { status: filter.status || null, batchId: filter.batchId || null };
  const data = await gql(TASKS, variables);
  for (const [id, task] of rows) if (matches(task)) rows.delete(id);
  upsert(...data.tasks.edges.map((edge) => edge.node));
}

const reloadSoon = throttle(() => reload().catch(() => {}), 500);

/** Show only the tasks of `batchId` ("" for all). */
export function showBatch(batchId) {
  $("#filter-batch").value = batchId;
  filter.batchId = batchId;
  reload().catch(() => {});
}

export async function start() {
  const onFilter = () => {
    filter = { status: $("#filter-status").value, batchId: $("#filter-batch").value.trim() };
    render();
    reload().catch(() => {});
  };
  $("#filter-status").addEventListener("change", onFilter);
  $("#filter-batch").addEventListener("change", onFilter);
  on("reconnected", reloadSoon);
  subscribe(TASK_UPDATES, {}, {
    next: (data) => { upsert(data.taskUpdates); reloadSoon(); },
    error: () => {},
  });
  await reload();
}
