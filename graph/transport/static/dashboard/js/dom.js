// Small DOM helpers: elements are built with createElement and text nodes only (no
// innerHTML anywhere: the page runs under Trusted Types).

/** `h("li", {class: "x", "data-seq": 3, onclick: f}, "text", child)`: an element. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.className = value;
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "value" || name === "checked") el[name] = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace every child of `el` with `children`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);

/** USD with a cent or finer; `null` (no price known) as an em dash. */
export function cost(usd) {
  if (usd === null || usd === undefined) return "—";
  return usd >= 0.01 || usd === 0 ? `$${usd.toFixed(2)}` : `$${usd.toPrecision(2)}`;
}

export const percent = (x) => `${Math.round((x || 0) * 100)} %`;

/** A status badge: `<span class="status" data-status="RUNNING">RUNNING</span>`. */
export const badge = (status) =>
  h("span", { class: "status", "data-status": status }, status.replace("_", " ").toLowerCase());

/** A labelled <progress> (0..1). */
export const bar = (value, label) =>
  h("progress", { max: 1, value: value || 0, "aria-label": label }, percent(value));

/** A random id for an idempotency key (works outside secure contexts too). */
export function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** `fn` at most once per `ms`, the last call always run (trailing). */
export function throttle(fn, ms) {
  let timer = null;
  let again = false;
  return function run() {
    if (timer) { again = true; return; }
    fn();
    timer = setTimeout(() => { timer = null; if (again) { again = false; run(); } }, ms);
  };
}
