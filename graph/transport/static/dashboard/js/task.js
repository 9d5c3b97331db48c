// The task page: the task as `task(id)` reads it, kept live by `taskProgress` (its
// stored events after the last seq seen, then live ones, and the post's draft as it is
// written when the server has `includeDrafts`). A reconnection resubscribes with
// afterSeq = the last stored seq seen, and a seq already shown is dropped, so the event
// view neither loses nor repeats an event.

import { gql, subscribe, on } from "./api.js";
import * as Q from "./queries.js";
import { $, h, fill, throttle } from "./dom.js";
import * as view from "./view.js";
import { upsert, patchProgress } from "./tasks.js";

const REFRESH = new Set(["TASK_STATUS", "TASK_QUEUED", "TASK_RESUMED", "TEAM_STARTED",
  "TEAM_FINISHED", "AGENT_STARTED", "AGENT_FINISHED", "AGENT_ERROR", "LLM_USAGE",
  "REVIEW_DECISION", "PAUSE_REQUESTED"]);
export const stats = { duplicates: 0, gaps: 0, drafts: 0, includeDrafts: true };
let current = null;

const section = (id, title, ...rest) => h("section", { id, "aria-labelledby": `${id}-h` },
  h("h2", { id: `${id}-h` }, title), ...rest);

function skeleton() {
  return [
    h("section", { id: "t-head", "aria-label": "Task" }),
    h("div", { id: "t-actions", class: "buttons" }),
    h("p", { id: "t-message", role: "status", class: "muted" }),
    section("t-review", "Review"),
    section("t-teams", "Teams and agents", h("div", { id: "t-tree" })),
    section("t-post", "Post", h("div", { id: "t-text", class: "post", "aria-live": "off" })),
    section("t-followup", "Follow-up revision"),
    section("t-reports", "Verification reports", h("div", { id: "t-report-list" })),
    section("t-usage", "Usage and cost", h("div", { id: "t-usage-table" })),
    section("t-events", "Events", h("ol", { id: "t-event-list", class: "events", tabindex: 0, "aria-labelledby": "t-events-h" })),
  ];
}

/** Open task `id`; `known` (a task from a mutation) is shown before the first read. */
export function open(id, known = null, { fromGenerate = false } = {}) {
  close();
  current = { id, task: null, lastSeq: 0, variables: { taskId: id, afterSeq: 0 }, draft: "", done: false };
  fill($("#main"), skeleton());
  if (known) {
    show(known);
    if (fromGenerate) markPainted();
  }
  refresh(current);
  follow(current);
}

export function close() {
  current?.dispose?.();
  current = null;
}

function markPainted() {
  requestAnimationFrame(() => setTimeout(() => {
    performance.mark("agents:painted");
    performance.measure("generate-to-agents", "generate:sent", "agents:painted");
    performance.measure("answer-to-agents", "generate:answered", "agents:painted");
  }, 0));
}

async function refresh(c) {
  try {
    const data = await gql(Q.TASK, { id: c.id });
    if (c !== current) return;
    if (!data.task) fill($("#main"), h("p", { role: "alert" }, `No task ${c.id} (or not yours).`));
    else show(data.task);
  } catch (error) {
    if (c === current) message(`Could not read the task: ${error.message}`);
  }
}
const refreshSoon = throttle(() => current && refresh(current), 300);
on("reconnected", () => current && refresh(current));

function follow(c) {
  c.done = false;
  c.dispose = subscribe(Q.progress(stats.includeDrafts), c.variables, {
    next: (data) => onEvent(c, data.taskProgress),
    error: (error) => {
      if (stats.includeDrafts && error.errors.some((e) => /includeDrafts/.test(e.message))) {
        stats.includeDrafts = false; // an older server: follow without drafts
        if (c === current) follow(c);
      } else if (c === current) message(`Live updates stopped: ${error.message}`);
    },
    complete: () => { c.done = true; if (c === current) refresh(c); },
  });
}

function onEvent(c, event) {
  if (c !== current) return;
  if (event.seq === null || event.seq === undefined) return draftDelta(c, event);
  if (event.seq <= c.lastSeq) { stats.duplicates += 1; return; }
  if (event.seq !== c.lastSeq + 1) stats.gaps += 1;
  c.lastSeq = event.seq;
  c.variables.afterSeq = event.seq; // what a reconnection resubscribes with
  const list = $("#t-event-list");
  const atEnd = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
  list.append(view.eventRow(event));
  if (atEnd) list.scrollTop = list.scrollHeight;
  if (event.kind === "AGENT_STARTED" && event.agent === "linkedin_creator") performance.mark("writer:started");
  patchAgent(c, event);
  patchProgress(c.id, event.progress);
  if (REFRESH.has(event.kind) || event.isTerminal) refreshSoon();
}

/** A DRAFT_DELTA (no seq, not stored): append `data.text` to the draft, or start the
 * draft afresh with it when `data.replace` is true. A delta that does not follow the
 * last one seen (an index skipped while the connection was down, another attempt or
 * draft) leaves the draft as it is until the next `replace`: a hole never shows. */
function draftDelta(c, event) {
  if (event.kind !== "DRAFT_DELTA") return;
  if (!stats.drafts++ && performance.getEntriesByName("writer:started").length) {
    performance.mark("draft:first");
    performance.measure("writer-to-first-draft", "writer:started", "draft:first");
  }
  const { text = "", replace = false, draft = 0, index = 0 } = event.data || {};
  const last = c.lastDelta;
  const follows = last && last.attempt === event.attempt && last.draft === draft
    && last.index + 1 === index;
  c.lastDelta = { attempt: event.attempt, draft, index };
  if (replace) c.draftInSync = true;
  else if (!follows) c.draftInSync = false;
  if (!c.draftInSync) return;
  c.draft = replace ? text : c.draft + text;
  renderPost(c);
}

/** What the events say before the next read: an agent's status and activity; the
 * writer's checked sentences and formatted post (the draft without includeDrafts). */
function patchAgent(c, event) {
  const data = event.data || {};
  if (event.agent === "linkedin_creator" && !stats.drafts) {
    if (event.kind === "TOOL_CALL" && data.tool === "check_sentence" && data.args?.sentence
        && !c.draft.includes(data.args.sentence)) {
      c.draft = c.draft ? `${c.draft}\n\n${data.args.sentence}` : data.args.sentence;
    }
    if (event.kind === "TOOL_RESULT" && data.tool === "format_linkedin_post" && data.result?.text) {
      c.draft = data.result.text;
    }
  }
  const agent = c.task?.teams.flatMap((team) => team.agents).find((a) => a.name === event.agent);
  if (!agent) return renderPost(c);
  if (event.kind === "AGENT_STARTED") agent.status = "WORKING";
  if (event.kind === "AGENT_FINISHED") Object.assign(agent, { status: "COMPLETED", progress: 1 });
  if (agent.status === "WORKING") agent.currentActivity = event.message;
  fill($("#t-tree"), view.tree(c.task));
  renderPost(c);
}

function renderPost(c) {
  const text = c.task?.result?.content;
  const box = $("#t-text");
  if (!box) return;
  box.dataset.draft = String(!text);
  if (text) fill(box, view.post(text, c.task.verificationReports));
  else fill(box, c.draft || h("span", { class: "muted" }, "Not written yet."));
}

function show(task) {
  const c = current;
  c.task = task;
  upsert(task);
  fill($("#t-head"), view.head(task));
  fill($("#t-tree"), view.tree(task));
  renderPost(c);
  fill($("#t-report-list"), view.reports(task));
  fill($("#t-usage-table"), view.usage(task));
  actions(c, task);
}

function message(text) { fill($("#t-message"), text); }

async function act(c, query, variables, { follow: again = false } = {}) {
  message("");
  try {
    const data = await gql(query, variables);
    const task = Object.values(data)[0];
    if (task.id !== c.id) { location.hash = `#/task/${task.id}`; return; }
    if (c !== current) return;
    show(task);
    if (again && c.done) follow(c);
  } catch (error) {
    message(`${error.code || "Error"}: ${error.message}`);
  }
}

const button = (label, onclick, cls = "") => h("button", { type: "button", class: cls, onclick }, label);

function actions(c, task) {
  const id = task.id;
  const s = task.status;
  fill($("#t-actions"),
    ["PENDING", "RUNNING"].includes(s) && !task.pauseRequested ? button("Pause", () => act(c, Q.PAUSE, { id }), "secondary") : null,
    s === "PAUSED" ? button("Resume", () => act(c, Q.RESUME, { id }, { follow: true })) : null,
    s === "FAILED" ? button("Retry", () => act(c, Q.RETRY, { id }, { follow: true })) : null,
    ["PENDING", "RUNNING", "PAUSED", "AWAITING_REVIEW"].includes(s) ? button("Cancel", () => act(c, Q.CANCEL, { id }), "danger") : null);
  reviewPanel(c, task);
  followUpPanel(c, task);
}

function reviewPanel(c, task) {
  const panel = $("#t-review");
  panel.hidden = task.status !== "AWAITING_REVIEW";
  if (panel.hidden || panel.dataset.revision === String(task.revisions)) return;
  panel.dataset.revision = String(task.revisions);
  const original = task.result?.content || c.draft;
  const content = h("textarea", { id: "review-content", rows: 8 }, original);
  const feedback = h("textarea", { id: "review-feedback", rows: 2 });
  const decide = (decision) => act(c, Q.REVIEW, {
    id: task.id, decision, revision: task.revisions,
    content: decision === "APPROVE" && content.value !== original ? content.value : null,
    feedback: feedback.value.trim() || null,
  }, { follow: decision === "REVISE" });
  fill(panel, h("h2", { id: "t-review-h" }, `Review (revision ${task.revisions})`),
    h("div", { class: "field" }, h("label", { for: "review-content" }, "Post (edit before approving)"), content),
    h("div", { class: "field" }, h("label", { for: "review-feedback" }, "Feedback (to revise or reject)"), feedback),
    h("div", { class: "buttons" },
      button("Approve", () => decide("APPROVE")),
      button("Revise with feedback", () => decide("REVISE"), "secondary"),
      button("Reject", () => decide("REJECT"), "danger")));
}

function followUpPanel(c, task) {
  const panel = $("#t-followup");
  panel.hidden = task.status !== "COMPLETED";
  if (panel.hidden || panel.childElementCount > 1) return;
  const feedback = h("textarea", { id: "followup-feedback", rows: 2 });
  panel.append(h("div", { class: "field" }, h("label", { for: "followup-feedback" }, "What should change?"), feedback),
    button("Ask for a revision", () => act(c, Q.REVISE_POST, { id: task.id, feedback: feedback.value })));
}
