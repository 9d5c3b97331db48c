// Rendering of the task page's parts from a task (the `Task` query's shape) and its
// events; no state of its own.

import { h, fill, badge, bar, cost, percent } from "./dom.js";

export function head(task) {
  return [
    h("h2", { id: "task-title", tabindex: "-1" }, task.paperTitle),
    h("p", { class: "meta" },
      badge(task.status),
      h("span", {}, `progress ${percent(task.progress)}`),
      task.queuePosition ? h("span", {}, `queue position ${task.queuePosition}`) : null,
      h("span", {}, `revision ${task.revisions}`),
      task.batchId ? h("span", {}, "batch ", h("a", { href: `#/batch/${task.batchId}` }, task.batchId.slice(0, 8))) : null,
      task.parentId ? h("span", {}, "revises ", h("a", { href: `#/task/${task.parentId}` }, task.parentId.slice(0, 8))) : null,
      h("span", {}, `id ${task.id}`)),
    task.error ? h("p", { class: "field-error", role: "alert" }, `${task.error.code}: ${task.error.message}`) : null,
  ];
}

const unit = (kind, item) => h("div", { class: "unit" },
  h("span", { class: "name" }, kind === "team" ? h("strong", {}, item.displayName) : item.displayName),
  badge(item.status),
  bar(item.progress, `${item.displayName} progress`),
  h("span", { class: "activity" }, item.error || item.currentActivity || ""));

/** The team and agent tree: `li[data-team]` > `li[data-agent][data-status]`. */
export function tree(task) {
  return h("ul", { class: "tree" }, task.teams.map((team) =>
    h("li", { "data-team": team.name, "data-status": team.status }, unit("team", team),
      h("ul", {}, team.agents.map((agent) =>
        h("li", { "data-agent": agent.name, "data-status": agent.status }, unit("agent", agent)))))));
}

/** Phrases the reports quote ("...") or point at (findings' sentences), with the issue. */
function flagged(reports) {
  const found = [];
  for (const report of reports) {
    for (const issue of report.issues) {
      for (const match of issue.matchAll(/"([^"]{3,})"/g)) found.push({ text: match[1], issue, agent: report.agent });
    }
    for (const finding of report.checks?.findings || []) {
      if (finding.sentence) found.push({ text: finding.sentence, issue: finding.issue, agent: report.agent });
    }
  }
  return found;
}

/** The post's text with each flagged phrase in a <mark> titled with its issue. */
export function post(text, reports) {
  const spans = [];
  for (const flag of flagged(reports)) {
    let at = text.indexOf(flag.text);
    while (at >= 0) {
      spans.push({ start: at, end: at + flag.text.length, flag });
      at = text.indexOf(flag.text, at + flag.text.length);
    }
  }
  spans.sort((a, b) => a.start - b.start);
  const parts = [];
  let cursor = 0;
  for (const span of spans) {
    if (span.start < cursor) continue; // overlaps one already marked
    parts.push(text.slice(cursor, span.start));
    parts.push(h("mark", { title: `${span.flag.agent}: ${span.flag.issue}` }, text.slice(span.start, span.end)));
    cursor = span.end;
  }
  parts.push(text.slice(cursor));
  return parts;
}

export function reports(task) {
  if (!task.verificationReports.length) return h("p", { class: "muted" }, "No report yet.");
  return h("div", { class: "reports" }, task.verificationReports.map((report) =>
    h("article", { class: "report", "data-agent": report.agent, "aria-label": `${report.kind} report` },
      h("h3", {}, `${report.kind === "TECHNICAL" ? "Technical accuracy" : "LinkedIn style"} (${report.agent})`),
      h("p", {},
        h("span", { class: "status", "data-status": report.approved ? "COMPLETED" : "FAILED" },
          report.approved ? "approved" : "not approved"),
        ` score ${report.score.toFixed(2)}`),
      report.issues.length
        ? h("ul", {}, report.issues.map((issue) => h("li", {}, issue)))
        : h("p", { class: "muted" }, "No issues."))));
}

const usageCells = (usage) => [usage.llmCalls, usage.inputTokens, usage.outputTokens,
  usage.totalTokens, cost(usage.costUsd)].map((value) => h("td", {}, value));

export function usage(task) {
  const rows = [];
  for (const team of task.teams) {
    rows.push(h("tr", {}, h("th", { scope: "row" }, team.displayName), ...usageCells(team.usage)));
    for (const agent of team.agents) {
      rows.push(h("tr", {}, h("td", {}, `· ${agent.displayName}`), ...usageCells(agent.usage)));
    }
  }
  rows.push(h("tr", {}, h("th", { scope: "row" }, "Task (with the meta-supervisor)"), ...usageCells(task.usage)));
  return h("table", { class: "usage" },
    h("caption", { class: "visually-hidden" }, "LLM calls, tokens and cost"),
    h("thead", {}, h("tr", {}, ["", "calls", "input", "output", "tokens", "cost"].map((name) =>
      h("th", { scope: "col" }, name)))),
    h("tbody", {}, rows));
}

const time = (iso) => (iso ? iso.slice(11, 23) : "");

/** One stored event: `li[data-seq]`. */
export const eventRow = (event) => h("li", { "data-seq": event.seq, "data-kind": event.kind },
  h("span", {}, event.seq), h("span", {}, time(event.timestamp)),
  h("span", {}, event.agent || event.team || "task"), h("span", { class: "kind" }, event.kind),
  h("span", {}, event.message));

export { fill };
