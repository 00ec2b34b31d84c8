// Weft's search page and dataset explorer: plain DOM, no framework, nothing fetched from
// elsewhere. Every API call carries the key from this tab's session storage as a header;
// thumbnails are fetched the same way and shown as blob: URLs, so the key is never in a URL.
"use strict";

const KEY = "weft.key";
const PAGE_ROWS = 24;
const $ = (id) => document.getElementById(id);
const state = { image: null, last: null, offset: 0, total: 0 };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function say(message, error = false) {
  const status = $("status");
  status.textContent = message;
  status.classList.toggle("error", error);
  status.setAttribute("role", error ? "alert" : "status");
}

async function api(path, options = {}) {
  const key = sessionStorage.getItem(KEY);
  const headers = Object.assign({}, options.headers || {});
  if (key) headers.Authorization = `Bearer ${key}`;
  const response = await fetch(path.replace(/^\//, ""), Object.assign({}, options, { headers }));
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
    throw new Error(`${response.status}: ${detail}`);
  }
  return response;
}

function thumbnail(url, alt) {
  if (!url) return el("div", { class: "noimage" }, "no image to show");
  const img = el("img", { alt, width: "128", height: "128" });
  api(url).then((r) => r.blob()).then((blob) => {
    img.src = URL.createObjectURL(blob);
    img.dataset.loaded = "true";
  }).catch((err) => { img.alt = `${alt} (thumbnail failed: ${err.message})`; });
  return img;
}

function fields(pairs) {
  const list = el("dl", { class: "fields" });
  for (const [name, value] of pairs) {
    if (value === null || value === undefined || value === "") continue;
    list.append(el("dt", {}, name), el("dd", {}, String(value)));
  }
  return list;
}

const fixed = (x, n = 3) => (x === null || x === undefined ? "–" : Number(x).toFixed(n));

// ---- views -------------------------------------------------------------------------------
function showView(name) {
  say("");
  for (const view of ["search", "explore"]) {
    $(`${view}-view`).hidden = view !== name;
    const tab = $(`tab-${view}`);
    if (view === name) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  if (name === "explore" && !$("rows").children.length) loadRows();
}

// ---- key -----------------------------------------------------------------------------------
async function useKey(event) {
  event.preventDefault();
  const given = $("api-key").value.trim();
  if (given) sessionStorage.setItem(KEY, given);
  $("api-key").value = "";
  await loadDataset();
}

// ---- dataset (languages, reasons, the explorer's report) -------------------------------------
async function loadDataset() {
  try {
    const view = await (await api("v1/dataset")).json();
    renderDataset(view);
    say("Ready: type a query or pick an image.");
  } catch (err) {
    say(`Could not read the dataset: ${err.message}`, true);
  }
}

function renderDataset(view) {
  const counts = view.report.counts || {};
  const langs = Object.keys(counts.languages_after || {}).sort();
  const select = $("lang");
  select.replaceChildren(el("option", { value: "" }, "Any"));
  for (const lang of langs) select.append(el("option", { value: lang }, lang));
  const table = el("table", { class: "counts" },
    el("caption", {}, "Rows by decision, stage and reason"),
    el("tr", {}, el("th", { scope: "col" }, "decision"), el("th", { scope: "col" }, "stage"),
      el("th", { scope: "col" }, "reason"), el("th", { scope: "col" }, "rows")));
  const row = (d, s, r, n) => table.append(el("tr", {}, el("td", {}, d), el("td", {}, s),
    el("td", {}, r), el("td", { class: "n" }, String(n))));
  row("input", "", "", counts.input_rows);
  row("kept", "", "", counts.kept);
  const reasons = new Set();
  for (const decision of ["removed", "quarantined"]) {
    for (const [stage, byReason] of Object.entries(counts[decision] || {})) {
      for (const [reason, n] of Object.entries(byReason)) {
        row(decision, stage, reason, n);
        reasons.add(reason);
      }
    }
  }
  const reasonSelect = $("reason");
  reasonSelect.replaceChildren(el("option", { value: "" }, "Any"));
  for (const reason of [...reasons].sort()) reasonSelect.append(el("option", { value: reason }, reason));
  $("dataset-info").replaceChildren(
    fields([["dataset", view.uri], ["version", view.version],
      ["published now", view.current ? "yes" : "no (a later run replaced it)"],
      ["content hash", counts.content_hash], ["curation run", view.report.run]]),
    table);
}

// ---- search ----------------------------------------------------------------------------------
function pickImage(file) {
  if (!file) return;
  const reader = new FileReader();
  reader.onload = () => {
    state.image = String(reader.result).split(",", 2)[1];
    say(`Image chosen: ${file.name}. Search to find it.`);
  };
  reader.readAsDataURL(file);
}

async function search(event) {
  event.preventDefault();
  const text = $("q").value.trim();
  if (!text && !state.image) { say("Type a query or pick an image first.", true); return; }
  const body = {
    k: Number($("k").value) || 12,
    filters: {},
    hybrid: Number($("hybrid").value),
    fusion: $("fusion").value,
    rerank: $("rerank").checked,
  };
  if (state.image && !text) body.image = { b64: state.image };
  else body.text = text;
  if ($("lang").value) body.filters.lang = $("lang").value;
  if ($("hide-nsfw").checked) body.filters.nsfw = false;
  if ($("distinct").checked) body.filters.distinct = true;
  say("Searching…");
  try {
    const started = performance.now();
    const found = await (await api("v1/retrieval/search", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    })).json();
    state.last = { request: body, response: found };
    $("download").disabled = false;
    renderHits(found, performance.now() - started);
  } catch (err) {
    say(`Search failed: ${err.message}`, true);
  }
}

function renderHits(found, ms) {
  const list = $("results");
  list.replaceChildren();
  for (const [rank, hit] of found.hits.entries()) {
    const parts = `score ${fixed(hit.score)} · vector ${fixed(hit.vector_score)} · BM25 ${fixed(hit.bm25_score)}`
      + (hit.rerank_score === null ? "" : ` · rerank ${fixed(hit.rerank_score)}`);
    const card = el("button", { type: "button", class: "card hit", "data-id": hit.id,
      "aria-label": `Result ${rank + 1}: ${hit.caption}. Open its lineage.` },
      thumbnail(hit.image_url, hit.caption),
      el("span", { class: "caption" }, hit.caption),
      el("span", { class: "scores" }, parts),
      el("span", { class: "meta" }, `${hit.lang || "?"}${hit.nsfw ? " · NSFW" : ""} · ${hit.key}`));
    card.addEventListener("click", () => openLineage(hit.id));
    list.append(el("li", {}, card));
  }
  $("search-summary").textContent =
    `${found.hits.length} results from ${found.model} v${found.version} in ${Math.round(ms)} ms`;
  say(found.hits.length ? "Select a result to see where it came from." : "No results.");
}

function download() {
  if (!state.last) return;
  const blob = new Blob([JSON.stringify(state.last, null, 2)], { type: "application/json" });
  const link = el("a", { href: URL.createObjectURL(blob), download: "weft-results.json" });
  document.body.append(link);
  link.click();
  link.remove();
}

// ---- lineage ---------------------------------------------------------------------------------
async function openLineage(id) {
  say("Reading the lineage…");
  try {
    renderLineage(await (await api(`v1/items/${encodeURIComponent(id)}/lineage`)).json());
    say("Lineage shown below the results.");
  } catch (err) {
    say(`Lineage failed: ${err.message}`, true);
  }
}

function renderLineage(l) {
  const chain = el("ol", { class: "chain" });
  const step = (title, pairs) => chain.append(el("li", {}, el("strong", {}, title), fields(pairs)));
  step("Source object", [["uri", l.source.uri], ["key", l.source.key], ["record number", l.source.ordinal],
    ["text hash", l.source.text_hash], ["image hash", l.source.image_hash]]);
  if (l.curation) {
    const dups = l.curation.duplicates.map((d) => `${d.id} (${d.stage}, similarity ${fixed(d.similarity)}, ${d.source_uri} ${d.key})`);
    step("Curation", [["decision", l.curation.status], ["language", l.curation.lang && `${l.curation.lang} (${fixed(l.curation.lang_score, 2)})`],
      ["NSFW score", l.curation.nsfw_score === null ? "not checked" : fixed(l.curation.nsfw_score, 2)],
      ["NSFW labels", (l.curation.nsfw_labels || []).join(", ")], ["image", l.curation.image],
      ["duplicates removed in its favour", dups.length ? dups.join("; ") : "none"]]);
  }
  if (l.dataset) {
    const c = l.dataset.counts;
    step("Curated dataset", [["uri", l.dataset.uri], ["version", l.dataset.version],
      ["published now", l.dataset.current ? "yes" : "no"], ["content hash", l.dataset.content_hash],
      ["report", `${c.input} in = ${c.kept} kept + ${c.removed} removed + ${c.quarantined} quarantined`],
      ["curation MLflow run", l.dataset.curation_mlflow_run]]);
  }
  if (l.training) {
    step("Training run", [["run", `${l.training.name} (${l.training.run_id})`], ["experiment", l.training.experiment],
      ["status", l.training.status], ["started", l.training.started], ["dataset", l.training.dataset_uri],
      ["dataset content hash", `${l.training.dataset_content_hash}${l.training.same_dataset ? " (the indexed dataset)" : " (not the indexed dataset)"}`],
      ["MLflow dataset inputs", l.training.datasets.join("; ")], ["Ray job", l.training.job], ["user", l.training.user]]);
  }
  if (l.model) {
    step("Registered model", [["version", `${l.model.name} v${l.model.version}`],
      ["aliases now", l.model.aliases.join(", ") || "none"], ["gate", l.model.gate]]);
  }
  step("Index", [["uri", l.index.uri], ["model", `${l.index.model} v${l.index.version}`],
    ["items", l.index.count], ["built", l.index.built_at]]);
  const body = $("lineage-body");
  body.replaceChildren(el("p", {}, `Item ${l.item}: “${l.caption}”`), chain);
  if (l.gaps.length) body.append(el("p", { class: "gaps" }, `Not traced: ${l.gaps.join("; ")}`));
  $("lineage").hidden = false;
  $("lineage-title").focus();
}

// ---- explorer --------------------------------------------------------------------------------
async function loadRows(event) {
  if (event) { event.preventDefault(); state.offset = 0; }
  const params = new URLSearchParams({ status: $("part").value, offset: state.offset, limit: PAGE_ROWS });
  if ($("reason").value) params.set("reason", $("reason").value);
  try {
    const page = await (await api(`v1/dataset/rows?${params}`)).json();
    state.total = page.total;
    renderRows(page);
  } catch (err) {
    say(`Could not read the rows: ${err.message}`, true);
  }
}

function rowCard(row) {
  const label = row.text || row.key || row.id;
  return [thumbnail(row.thumbnail_url, label),
    el("span", { class: "caption" }, label.length > 90 ? `${label.slice(0, 90)}…` : label),
    el("span", { class: "meta" }, [row.reason, row.detail].filter(Boolean).join(": ") || row.lang || ""),
    el("span", { class: "meta" }, `${row.source_uri} · ${row.key}`)];
}

function renderRows(page) {
  const list = $("rows");
  list.replaceChildren();
  for (const row of page.rows) {
    const card = el("button", { type: "button", class: "card row", "data-id": row.id,
      "aria-label": `${page.status} row ${row.key}: open it` }, ...rowCard(row));
    card.addEventListener("click", () => openRow(row.id));
    list.append(el("li", {}, card));
  }
  const last = Math.min(page.offset + page.rows.length, page.total);
  $("page-note").textContent = page.total ? `${page.offset + 1}–${last} of ${page.total}` : "no rows";
  $("prev").disabled = page.offset === 0;
  $("next").disabled = last >= page.total;
}

async function openRow(id) {
  try {
    const view = await (await api(`v1/dataset/rows/${encodeURIComponent(id)}`)).json();
    const side = (title, row) => el("div", { class: "side" }, el("h4", {}, title),
      thumbnail(row.thumbnail_url, row.text || row.key), el("span", { class: "caption" }, row.text || ""),
      fields([["id", row.id], ["decision", row.status], ["stage", row.stage], ["reason", row.reason],
        ["detail", row.detail], ["language", row.lang && `${row.lang} (${fixed(row.lang_score, 2)})`],
        ["image", row.image_format && `${row.image_format} ${row.image_width} x ${row.image_height}`],
        ["source", row.source_uri], ["key", row.key], ["record number", row.ordinal]]));
    const body = $("row-body");
    body.replaceChildren(side(`This row (${view.row.status})`, view.row));
    if (view.duplicate_of) {
      body.append(side(`The row it duplicates (similarity ${fixed(view.row.similarity)})`, view.duplicate_of));
    }
    $("row-detail").hidden = false;
    $("row-title").focus();
  } catch (err) {
    say(`Could not read the row: ${err.message}`, true);
  }
}

// ---- wiring ----------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  $("tab-search").addEventListener("click", () => showView("search"));
  $("tab-explore").addEventListener("click", () => showView("explore"));
  $("key-form").addEventListener("submit", useKey);
  $("search-form").addEventListener("submit", search);
  $("download").addEventListener("click", download);
  $("hybrid").addEventListener("input", () => { $("hybrid-value").textContent = fixed($("hybrid").value, 2); });
  $("image").addEventListener("change", () => pickImage($("image").files[0]));
  $("clear-image").addEventListener("click", () => { state.image = null; $("image").value = ""; say("Image cleared."); });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    pickImage(e.dataTransfer.files[0]);
  });
  $("rows-form").addEventListener("submit", loadRows);
  $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE_ROWS); loadRows(); });
  $("next").addEventListener("click", () => { state.offset += PAGE_ROWS; loadRows(); });
  if (sessionStorage.getItem(KEY)) loadDataset();
  else say("Enter an API key to search.");
});
