// The form that starts a generation (generatePost) or a batch of up to 5
// (generatePosts), with every GeneratePostInput field. The API validates: its
// BAD_USER_INPUT errors are shown next to their fields (extensions.fields, or
// extensions.field; `inputs[2].paperTitle` on the batch's third entry).

import { gql } from "./api.js";
import { GENERATE, GENERATE_BATCH } from "./queries.js";
import { $, h, fill, randomKey } from "./dom.js";

const FIELDS = ["paperTitle", "additionalContext", "targetAudience", "tone", "maxHashtags",
  "review", "orchestrationMode", "includeTechnicalDetails", "callbackUrl"];
const batch = [];

/** The form's input; empty optional fields are left out (the API's defaults apply). */
function input() {
  const value = (name) => $(`#f-${name}`).value;
  const data = {
    paperTitle: value("paperTitle"),
    additionalContext: value("additionalContext"),
    targetAudience: value("targetAudience"),
    tone: value("tone"),
    review: value("review"),
    orchestrationMode: value("orchestrationMode"),
    includeTechnicalDetails: $("#f-includeTechnicalDetails").checked,
  };
  const hashtags = value("maxHashtags").trim();
  if (hashtags) data.maxHashtags = Number.isInteger(Number(hashtags)) ? Number(hashtags) : hashtags;
  if (value("callbackUrl").trim()) data.callbackUrl = value("callbackUrl").trim();
  return data;
}

function clearErrors() {
  for (const name of FIELDS) {
    $(`#f-${name}`).removeAttribute("aria-invalid");
    fill($(`#f-${name}-error`));
  }
  fill($("#form-error"));
  fill($("#batch-error"));
}

/** `{field: message}` of an ApiError (the field's last name: `input.tone` is `tone`). */
function fieldErrors(error) {
  if (error.fields) return error.fields;
  if (error.field) return { [error.field]: error.message };
  return {};
}

function showErrors(error, { inBatch = false } = {}) {
  const fields = fieldErrors(error);
  let first = null;
  const leftover = [];
  for (const [path, message] of Object.entries(fields)) {
    const item = /^inputs\[(\d+)\]\.(\w+)$/.exec(path);
    const name = item ? item[2] : path.split(".").pop();
    if (inBatch && item) {
      const entry = $(`#batch-list li:nth-child(${Number(item[1]) + 1}) .field-error`);
      if (entry) { fill(entry, message); continue; }
    }
    if (!inBatch && FIELDS.includes(name)) {
      const control = $(`#f-${name}`);
      control.setAttribute("aria-invalid", "true");
      fill($(`#f-${name}-error`), message);
      first ||= control;
    } else leftover.push(message);
  }
  if (!Object.keys(fields).length) leftover.push(`${error.code || "error"}: ${error.message}`);
  fill(inBatch ? $("#batch-error") : $("#form-error"), leftover.join(" "));
  first?.focus();
}

function renderBatch() {
  $("#batch").hidden = batch.length === 0;
  fill($("#batch-list"), batch.map((item, index) => h("li", {},
    `${item.paperTitle || "(no title)"} · ${item.tone.toLowerCase()}`,
    h("button", { type: "button", class: "secondary", "aria-label": `Remove entry ${index + 1} from the batch`,
      onclick: () => { batch.splice(index, 1); renderBatch(); } }, "Remove"),
    h("p", { class: "field-error" }))));
  $("#batch-start").textContent = `Start batch of ${batch.length}`;
  $("#batch-add").disabled = batch.length >= 5;
}

/** Wire the form: `onStarted(task)` after generatePost, `onBatch(tasks)` after a batch. */
export function start({ onStarted, onBatch }) {
  const form = $("#generate");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    $("#start").disabled = true;
    performance.mark("generate:sent");
    try {
      const data = await gql(GENERATE, { input: input(), key: randomKey() });
      performance.mark("generate:answered");
      onStarted(data.generatePost);
    } catch (error) {
      showErrors(error);
    } finally {
      $("#start").disabled = false;
    }
  });
  $("#batch-add").addEventListener("click", () => {
    clearErrors();
    batch.push(input());
    renderBatch();
  });
  $("#batch-start").addEventListener("click", async () => {
    clearErrors();
    $("#batch-start").disabled = true;
    try {
      const data = await gql(GENERATE_BATCH, { inputs: batch, key: randomKey() });
      batch.length = 0;
      renderBatch();
      onBatch(data.generatePosts);
    } catch (error) {
      showErrors(error, { inBatch: true });
    } finally {
      $("#batch-start").disabled = false;
    }
  });
}
