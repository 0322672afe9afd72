// The live dashboard: campaigns list, new-campaign form, campaign view. Plain DOM, no
// build step. GraphQL queries and mutations go over fetch (POST /graphql, Bearer key);
// live numbers come over one WebSocket (graphql-transport-ws, see ws.js).

import { RateChart } from "./chart.js";
import { SubscriptionClient } from "./ws.js";

// ---------------------------------------------------------------- GraphQL documents

const STATS = "stats { total pending sent delivered read failed cancelled progress deliveryRate readRate failureRate }";
const ROW_FIELDS = `id name status createdAt ${STATS}`;
const CAMPAIGN_FIELDS = `id name body status statusReason allowedActions scheduledAt createdAt startedAt completedAt
  ${STATS} events { from to action actor reason at }`;
const PAYLOAD = `campaign { ${CAMPAIGN_FIELDS} } userErrors { field message code }`;
const PAGE_SIZE = 50;

const Q = {
  viewer: "query Viewer { viewer { name } }",
  list: `query Campaigns($first: Int, $after: String) {
    campaigns(first: $first, after: $after) {
      totalCount pageInfo { hasNextPage endCursor } edges { node { ${ROW_FIELDS} } }
    }
  }`,
  row: `query Row($id: ID!) { campaign(id: $id) { ${ROW_FIELDS} } }`,
  campaign: `query Campaign($id: ID!) { campaign(id: $id) { ${CAMPAIGN_FIELDS} } }`,
  timeline: `query Timeline($id: ID!, $bucket: Int) {
    campaign(id: $id) { report { timeline(bucketSeconds: $bucket) { at sent failed } } }
  }`,
  create: `mutation Create($input: CreateCampaignInput!) { result: createCampaign(input: $input) { ${PAYLOAD} } }`,
  delete: "mutation Delete($id: ID!) { result: deleteCampaign(id: $id) { deletedId userErrors { field message code } } }",
  progress: `subscription Progress($id: ID!) {
    campaignProgress(id: $id) { campaignId status sendRate at ${STATS} }
  }`,
  statusChanges: "subscription StatusChanges { campaignStatusChanges { campaignId name from to reason at } }",
};

const ID_ARG = ["$id: ID!", "id: $id"];
const AT_ARGS = ["$id: ID!, $scheduledAt: DateTime!", "id: $id, scheduledAt: $scheduledAt"];
const mutationDoc = (field, [declared, args] = ID_ARG) =>
  `mutation(${declared}) { result: ${field}(${args}) { ${PAYLOAD} } }`;

/** Every CampaignAction: its button, and the mutation it runs (form actions open a panel first). */
const ACTIONS = {
  SEND_NOW: { label: "Send now", style: "primary", doc: mutationDoc("sendCampaignNow") },
  SCHEDULE: { label: "Schedule…", panel: "schedule", doc: mutationDoc("scheduleCampaign", AT_ARGS) },
  RESCHEDULE: { label: "Reschedule…", panel: "schedule", doc: mutationDoc("rescheduleCampaign", AT_ARGS) },
  UNSCHEDULE: { label: "Unschedule", doc: mutationDoc("unscheduleCampaign") },
  PAUSE: { label: "Pause", style: "warning", doc: mutationDoc("pauseCampaign") },
  RESUME: { label: "Resume", style: "primary", doc: mutationDoc("resumeCampaign") },
  CANCEL: {
    label: "Cancel campaign",
    style: "danger",
    confirm: (c) => `Cancel “${c.name}”? Messages not sent yet will never be sent, and it cannot be resumed.`,
    doc: mutationDoc("cancelCampaign"),
  },
  RETRY_FAILED: { label: "Retry failed", style: "primary", doc: mutationDoc("retryFailedMessages") },
  RETRY: { label: "Retry", style: "primary", doc: mutationDoc("retryCampaign") },
  DUPLICATE: { label: "Duplicate", doc: mutationDoc("duplicateCampaign") },
  EDIT: { label: "Edit…", panel: "edit", doc: mutationDoc("updateCampaign", ["$input: UpdateCampaignInput!", "input: $input"]) },
  ADD_RECIPIENTS: { label: "Add recipients…", panel: "add" },
  REMOVE_RECIPIENTS: {
    label: "Remove recipients…",
    panel: "remove",
    doc: mutationDoc("removeRecipients", ["$input: RemoveRecipientsInput!", "input: $input"]),
  },
  DELETE: { label: "Delete", style: "danger", confirm: (c) => `Delete “${c.name}”? This cannot be undone.` },
};

const ACTIVE = new Set(["QUEUED", "PROCESSING"]);
const KEY_STORAGE = "campaigns.apiKey";

// ---------------------------------------------------------------- small helpers

const numberFormat = new Intl.NumberFormat();
const fmt = (n) => numberFormat.format(n);
const pct = (x) => (x <= 0 ? "0%" : x >= 1 ? "100%" : `${(x * 100).toFixed(x < 0.001 ? 2 : 1)}%`);
const share = (part, whole) => (whole > 0 ? part / whole : 0);
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const timeWithSeconds = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const shortDate = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
const when = (iso) => (iso ? dateTime.format(new Date(iso)) : "—");
const $ = (selector, root = document) => root.querySelector(selector);

/** Builds an element; strings become text nodes (never HTML). */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (name in el && typeof value !== "string") el[name] = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

function badge(status, testid) {
  return h("span", { class: `badge badge-${status.toLowerCase()}`, "data-testid": testid, "data-status": status }, status);
}

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

function placeholders(body) {
  return [...new Set([...body.matchAll(/\{\{\s*([^{}\s]+)\s*\}\}/g)].map((m) => m[1]))];
}

/** The value of a datetime-local input ("2030-01-01T09:00", local time) as ISO 8601 with its offset. */
export function localToIso(value) {
  const d = new Date(value);
  if (!value || Number.isNaN(d.getTime())) return null;
  const pad = (n) => String(n).padStart(2, "0");
  const offset = -d.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  const abs = Math.abs(offset);
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:` +
    `${pad(d.getSeconds())}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
  );
}

function isoToLocalInput(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

function toast(message, kind = "info") {
  const el = h("div", { class: `toast toast-${kind}`, role: kind === "error" ? "alert" : "status", "data-testid": "toast" }, message);
  $("#toasts").append(el);
  setTimeout(() => el.remove(), kind === "error" ? 8000 : 4000);
}

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(message, { unauthorized = false } = {}) {
    super(message);
    this.unauthorized = unauthorized;
  }
}

const api = {
  key: null,

  async gql(query, variables = {}) {
    let response;
    try {
      response = await fetch("/graphql", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json", Authorization: `Bearer ${this.key}` },
        body: JSON.stringify({ query, variables }),
      });
    } catch (err) {
      throw new ApiError(`The server cannot be reached (${err.message}).`);
    }
    if (response.status === 401) throw new ApiError("The server refused this API key.", { unauthorized: true });
    let body;
    try {
      body = await response.json();
    } catch {
      throw new ApiError(`The server answered HTTP ${response.status}.`);
    }
    if (body.errors?.length) throw new ApiError(body.errors.map((e) => e.message).join(" "));
    return body.data;
  },

  /** POST /campaigns/{id}/recipients with a CSV string or File; the import report. */
  async uploadCsv(id, csv) {
    let response;
    try {
      response = await fetch(`/campaigns/${encodeURIComponent(id)}/recipients`, {
        method: "POST",
        headers: { "Content-Type": "text/csv", Authorization: `Bearer ${this.key}` },
        body: csv,
      });
    } catch (err) {
      throw new ApiError(`The upload failed (${err.message}).`);
    }
    if (response.status === 401) throw new ApiError("The server refused this API key.", { unauthorized: true });
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      throw new ApiError(body?.errors?.map((e) => e.message).join(" ") || `The upload failed: HTTP ${response.status}.`);
    }
    return body;
  },
};

// ---------------------------------------------------------------- app state

const state = {
  viewer: null,
  client: null,
  rows: new Map(), // id -> list row {id, name, status, createdAt, stats}
  totalCount: 0,
  pageInfo: { hasNextPage: false, endCursor: null },
  pagesLoaded: 0,
  view: null, // the open view: {id?, destroy()}
  rowSubs: new Map(), // id -> unsubscribe, progress of active campaigns in the list
  rowRefresh: new Map(), // id -> the in-flight read of that row ({again} asks for one more)
  listDirty: false,
  flash: new Map(), // campaign id -> {report, error} to show when its view opens
  listStatusSub: null,
};

function handleError(err, context) {
  if (err?.unauthorized) {
    signOut(err.message);
    return;
  }
  toast(context ? `${context}: ${err.message}` : err.message, "error");
}

// ---------------------------------------------------------------- login

function readStoredKey() {
  try {
    return localStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

function storeKey(key) {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  } catch {
    /* private mode: the key lives in memory only */
  }
}

function showLogin(message) {
  $("#app").hidden = true;
  $("#login").hidden = false;
  const error = $("#key-error");
  error.hidden = !message;
  error.textContent = message || "";
  $("#key-input").value = "";
  $("#key-input").focus();
}

function signOut(message) {
  storeKey(null);
  api.key = null;
  teardown();
  showLogin(message);
}

function teardown() {
  state.view?.destroy();
  state.view = null;
  state.client?.close();
  state.client = null;
  state.rowSubs.clear();
  state.rows.clear();
  state.pagesLoaded = 0;
  state.listStatusSub = null;
}

async function connect(key) {
  teardown();
  api.key = key;
  try {
    state.viewer = (await api.gql(Q.viewer)).viewer;
  } catch (err) {
    if (err.unauthorized) {
      signOut("That API key was refused. Check it and try again.");
    } else {
      showLogin(err.message);
      $("#key-input").value = key;
    }
    return;
  }
  storeKey(key);
  $("#login").hidden = true;
  $("#app").hidden = false;
  setText($("[data-testid=workspace]"), state.viewer.name);
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  state.client = new SubscriptionClient(`${scheme}//${location.host}/graphql`, {
    connectionParams: () => ({ Authorization: `Bearer ${api.key}` }),
    onState: onConnectionState,
  });
  state.listStatusSub = state.client.subscribe(Q.statusChanges, {}, {
    next: ({ data }) => data && onStatusChange(data.campaignStatusChanges),
    error: (errors) => toast(`Live status updates stopped: ${errors?.[0]?.message || "error"}`, "error"),
  });
  await loadList();
  route();
}

function onConnectionState(connection, info = {}) {
  const el = $("#connection");
  el.dataset.state = connection;
  const labels = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", unauthorized: "Refused" };
  setText($(".conn-label", el), labels[connection] || connection);
  el.title = connection === "reconnecting" && info.delay ? `Retrying in ${Math.round(info.delay / 1000)} s` : "";
  if (connection === "unauthorized") signOut("The server refused this API key for live updates.");
  if (connection === "live" && info.reconnected) {
    // Status changes may have been missed while disconnected: read the truth again.
    loadList().catch((err) => handleError(err));
    state.view?.refetch?.();
  }
}

// ---------------------------------------------------------------- campaigns list

async function loadList(after = null) {
  const data = await api.gql(Q.list, { first: PAGE_SIZE, after });
  const connection = data.campaigns;
  if (!after) {
    // The first page is fresh truth: rows it should hold but does not were deleted.
    // Rows older than it (loaded with "Load more") stay.
    const fresh = new Set(connection.edges.map((e) => e.node.id));
    const oldest = connection.edges.at(-1)?.node.createdAt;
    for (const [id, row] of state.rows) {
      const covered = !connection.pageInfo.hasNextPage || (oldest && row.createdAt >= oldest);
      if (!fresh.has(id) && covered) state.rows.delete(id);
    }
  }
  for (const { node } of connection.edges) state.rows.set(node.id, node);
  state.totalCount = connection.totalCount;
  if (after) {
    state.pageInfo = connection.pageInfo;
    state.pagesLoaded += 1;
  } else if (state.pagesLoaded <= 1) {
    state.pageInfo = connection.pageInfo;
    state.pagesLoaded = 1;
  }
  markListDirty();
}

function markListDirty() {
  if (state.listDirty) return;
  state.listDirty = true;
  requestAnimationFrame(renderList);
}

function sortedRows() {
  return [...state.rows.values()].sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
}

function renderList() {
  state.listDirty = false;
  const list = $("#campaign-list");
  const rows = sortedRows();
  const selected = state.view?.id;
  if (!rows.length) {
    list.replaceChildren(
      h("div", { class: "empty" }, h("p", {}, "No campaigns yet."), h("a", { class: "btn btn-primary", href: "#/new" }, "Create one")),
    );
  } else {
    list.replaceChildren(...rows.map((row) => rowElement(row, row.id === selected)));
  }
  setText($("#campaign-count"), state.totalCount ? fmt(state.totalCount) : "");
  $("#load-more").hidden = !state.pageInfo.hasNextPage;
  syncRowSubscriptions();
}

function rowElement(c, selected) {
  const s = c.stats;
  return h(
    "a",
    {
      class: `row${selected ? " selected" : ""}`,
      href: `#/campaigns/${encodeURIComponent(c.id)}`,
      "data-testid": "campaign-row",
      "data-id": c.id,
      "data-status": c.status,
      "aria-current": selected ? "page" : null,
    },
    h("div", { class: "row-top" }, h("span", { class: "row-name", "data-testid": "row-name" }, c.name), badge(c.status, "row-status")),
    stackedBar(s, "mini"),
    h(
      "div",
      { class: "row-meta" },
      h(
        "span",
        { "data-testid": "row-counts" },
        s.total ? `${fmt(s.sent)} / ${fmt(s.total)} sent${s.failed ? ` · ${fmt(s.failed)} failed` : ""}` : "no recipients",
      ),
      h("span", { class: "nowrap", title: when(c.createdAt) }, shortDate.format(new Date(c.createdAt))),
    ),
  );
}

function stackedBar(s, size) {
  const seg = (kind, n) => {
    const el = h("span", { class: `seg seg-${kind}` });
    el.style.width = `${share(n, s.total) * 100}%`;
    return el;
  };
  return h(
    "div",
    { class: `bar bar-${size}`, role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": Math.round(s.progress * 100) },
    seg("sent", s.sent),
    seg("failed", s.failed),
    seg("cancelled", s.cancelled),
  );
}

function updateRow(id, changes) {
  const row = state.rows.get(id);
  if (!row) return;
  Object.assign(row, changes);
  markListDirty();
}

/** Reads one row again (coalesced: at most one request per row in flight, plus one). */
function refreshRow(id) {
  const pending = state.rowRefresh.get(id);
  if (pending) {
    pending.again = true;
    return;
  }
  const job = { again: false };
  state.rowRefresh.set(id, job);
  api
    .gql(Q.row, { id })
    .then((data) => {
      if (data.campaign) state.rows.set(id, data.campaign);
      else state.rows.delete(id);
      markListDirty();
    })
    .catch((err) => handleError(err))
    .finally(() => {
      state.rowRefresh.delete(id);
      if (job.again) refreshRow(id);
    });
}

function onStatusChange(change) {
  if (state.rows.has(change.campaignId)) {
    updateRow(change.campaignId, { status: change.to, name: change.name });
    refreshRow(change.campaignId);
  } else {
    loadList().catch((err) => handleError(err)); // a campaign made elsewhere
  }
  if (state.view?.id === change.campaignId) state.view.refetch();
}

/** Live numbers for the list's sending campaigns (the open one has its own subscription). */
function syncRowSubscriptions() {
  if (!state.client) return;
  const wanted = new Set(
    sortedRows()
      .filter((r) => ACTIVE.has(r.status) && r.id !== state.view?.id)
      .slice(0, 20)
      .map((r) => r.id),
  );
  for (const [id, unsubscribe] of state.rowSubs) {
    if (!wanted.has(id)) {
      unsubscribe();
      state.rowSubs.delete(id);
    }
  }
  for (const id of wanted) {
    if (state.rowSubs.has(id)) continue;
    const unsubscribe = state.client.subscribe(Q.progress, { id }, {
      next: ({ data }) => {
        const p = data?.campaignProgress;
        if (p) updateRow(id, { stats: p.stats, status: p.status });
      },
      error: () => state.rowSubs.delete(id),
      complete: () => state.rowSubs.delete(id),
    });
    state.rowSubs.set(id, unsubscribe);
  }
}

// ---------------------------------------------------------------- routing

function route() {
  if (!state.client) return;
  const hash = location.hash.replace(/^#/, "") || "/";
  const match = hash.match(/^\/campaigns\/([^/]+)$/);
  const id = match ? decodeURIComponent(match[1]) : null;
  if (id && state.view?.id === id) return;
  state.view?.destroy();
  state.view = id ? new CampaignView(id) : hash === "/new" ? new NewCampaignView() : new HomeView();
  $("#layout").classList.toggle("has-detail", Boolean(id) || hash === "/new");
  markListDirty();
}

class HomeView {
  constructor() {
    $("#main").replaceChildren(
      h(
        "section",
        { class: "placeholder" },
        h("h1", {}, "Live campaigns"),
        h("p", { class: "muted" }, "Pick a campaign to watch its numbers move, or start a new one."),
        h("a", { class: "btn btn-primary", href: "#/new" }, "New campaign"),
      ),
    );
  }

  destroy() {}
}

// ---------------------------------------------------------------- new campaign

function recipientsFields(prefix) {
  const textarea = h("textarea", {
    id: `${prefix}-csv`,
    rows: 7,
    spellcheck: "false",
    class: "mono",
    placeholder: "phone,name\n+14155552671,Ada\n+447911123456,Grace",
    "data-testid": `${prefix}-csv`,
  });
  const file = h("input", { type: "file", accept: ".csv,text/csv", "data-testid": `${prefix}-csv-file` });
  const read = () => (file.files?.[0] ? file.files[0] : textarea.value.trim() ? `${textarea.value.trim()}\n` : null);
  return {
    textarea,
    file,
    read,
    element: h(
      "div",
      { class: "field" },
      h("label", { for: `${prefix}-csv` }, "Recipients (CSV: a phone column, then one column per placeholder)"),
      textarea,
      h("div", { class: "file-row" }, h("span", { class: "muted small" }, "…or upload a file:"), file),
    ),
  };
}

class NewCampaignView {
  constructor() {
    this.name = h("input", { id: "new-name", required: true, maxlength: 200, "data-testid": "new-name", placeholder: "Spring sale" });
    this.body = h("textarea", {
      id: "new-body",
      rows: 4,
      required: true,
      "data-testid": "new-body",
      placeholder: "Hi {{name}}, your code is {{code}}",
    });
    this.recipients = recipientsFields("new");
    this.hint = h("p", { class: "hint", "data-testid": "placeholder-hint" });
    this.errors = h("div", { class: "alert alert-error", "data-testid": "user-errors", hidden: true });
    this.submit = h("button", { class: "btn btn-primary", type: "submit", "data-testid": "create-submit" }, "Create campaign");
    const form = h(
      "form",
      { class: "card form", onsubmit: (e) => this.onSubmit(e), "data-testid": "new-campaign-form" },
      h("h1", {}, "New campaign"),
      h("div", { class: "field" }, h("label", { for: "new-name" }, "Name"), this.name),
      h("div", { class: "field" }, h("label", { for: "new-body" }, "Message"), this.body, this.hint),
      this.recipients.element,
      this.errors,
      h("div", { class: "form-actions" }, this.submit, h("a", { class: "btn btn-ghost", href: "#/" }, "Cancel")),
    );
    this.body.addEventListener("input", () => this.updateHint());
    this.recipients.textarea.addEventListener("input", () => this.updateHint());
    $("#main").replaceChildren(h("section", { class: "narrow" }, form));
    this.updateHint();
    this.name.focus();
  }

  updateHint() {
    const names = placeholders(this.body.value);
    if (!names.length) {
      setText(this.hint, "Use {{placeholders}} for per-recipient values, e.g. {{name}}.");
      this.hint.classList.remove("hint-warn");
      return;
    }
    const header = this.recipients.textarea.value.trimStart().split(/\r?\n/, 1)[0];
    const columns = header ? header.split(",").map((c) => c.trim().replace(/^"|"$/g, "")) : [];
    const missing = columns.length ? names.filter((n) => !columns.includes(n)) : [];
    setText(
      this.hint,
      `Placeholders: ${names.map((n) => `{{${n}}}`).join(", ")}` +
        (missing.length ? ` — no column for ${missing.join(", ")} in the CSV header` : ""),
    );
    this.hint.classList.toggle("hint-warn", missing.length > 0);
  }

  async onSubmit(event) {
    event.preventDefault();
    this.errors.hidden = true;
    this.submit.disabled = true;
    setText(this.submit, "Creating…");
    try {
      const data = await api.gql(Q.create, { input: { name: this.name.value.trim(), body: this.body.value } });
      const { campaign, userErrors } = data.result;
      if (userErrors.length || !campaign) {
        showUserErrors(this.errors, userErrors, true);
        return;
      }
      state.rows.set(campaign.id, campaign);
      state.totalCount += 1;
      markListDirty();
      const csv = this.recipients.read();
      if (csv) {
        setText(this.submit, "Uploading recipients…");
        try {
          state.flash.set(campaign.id, { report: await api.uploadCsv(campaign.id, csv) });
        } catch (err) {
          if (err.unauthorized) throw err;
          state.flash.set(campaign.id, { error: err.message });
        }
      }
      location.hash = `#/campaigns/${encodeURIComponent(campaign.id)}`;
    } catch (err) {
      handleError(err, "Could not create the campaign");
    } finally {
      this.submit.disabled = false;
      setText(this.submit, "Create campaign");
    }
  }

  destroy() {}
}

/** userErrors of a payload; `withField` names the input at fault (forms with several inputs). */
function showUserErrors(el, errors, withField = false) {
  el.replaceChildren(
    ...errors.map((e) =>
      h("div", { "data-testid": "user-error", "data-code": e.code }, withField && e.field?.length ? `${e.field.at(-1)}: ` : "", e.message),
    ),
  );
  el.hidden = errors.length === 0;
}

function dismissButton() {
  return h("button", { type: "button", class: "dismiss", "aria-label": "Dismiss", title: "Dismiss", onclick: (e) => e.currentTarget.parentElement.remove() }, "×");
}

function importReport(report, error) {
  if (error) {
    return h(
      "div",
      { class: "alert alert-error dismissible", "data-testid": "import-report", "data-error": "true" },
      `Recipients were not imported: ${error}`,
      dismissButton(),
    );
  }
  const item = (key, label, value, warn) =>
    h("div", { class: `report-item${warn && value ? " warn" : ""}`, "data-testid": `report-${key}`, "data-value": value }, h("strong", {}, fmt(value)), ` ${label}`);
  const invalidCount = report.invalidCount ?? report.invalid?.length ?? 0;
  const invalid = report.invalid || [];
  return h(
    "div",
    { class: "alert alert-info report dismissible", "data-testid": "import-report" },
    dismissButton(),
    h("div", { class: "report-title" }, "Recipients imported"),
    h(
      "div",
      { class: "report-items" },
      item("added", "added", report.added),
      item("duplicates", "duplicates", report.duplicates, true),
      item("optedOut", "opted out", report.optedOut, true),
      item("invalid", "invalid", invalidCount, true),
    ),
    invalid.length
      ? h(
          "details",
          {},
          h("summary", {}, `Invalid rows${invalidCount > invalid.length ? ` (first ${fmt(invalid.length)})` : ""}`),
          h(
            "table",
            { class: "table small" },
            h("thead", {}, h("tr", {}, h("th", {}, "Row"), h("th", {}, "Phone"), h("th", {}, "Reason"))),
            h("tbody", {}, invalid.slice(0, 100).map((r) => h("tr", {}, h("td", {}, r.row ?? r.index), h("td", { class: "mono" }, r.phone), h("td", {}, r.reason)))),
          ),
        )
      : null,
  );
}

// ---------------------------------------------------------------- campaign view

const STAT_CARDS = [
  ["total", "Total", () => "recipients"],
  ["pending", "Pending", (s) => `${pct(share(s.pending, s.total))} of total`],
  ["sent", "Sent", (s) => `${pct(share(s.sent, s.total))} of total`],
  ["delivered", "Delivered", (s) => `${pct(s.deliveryRate)} of sent`],
  ["read", "Read", (s) => `${pct(s.readRate)} of delivered`],
  ["failed", "Failed", (s) => `${pct(s.failureRate)} failure rate`],
  ["cancelled", "Cancelled", (s) => `${pct(share(s.cancelled, s.total))} of total`],
];

class CampaignView {
  constructor(id) {
    this.id = id;
    this.campaign = null;
    this.seq = 0; // request order, to drop answers that a mutation made stale
    this.staleBefore = 0;
    this.refetching = null;
    this.renderedActions = null;
    this.renderedEvents = null;
    this.panel = null;
    this.busy = false;
    this.samples = []; // {t, done} for the sends-per-second estimate
    this.lastEventAt = 0;
    this.destroyed = false;
    this.build();
    this.load();
  }

  build() {
    const el = (this.el = {});
    el.name = h("h1", { "data-testid": "campaign-name" });
    el.status = h("span", { class: "badge", "data-testid": "campaign-status" });
    el.reason = h("span", { class: "status-reason", "data-testid": "status-reason", hidden: true });
    el.times = h("span", { class: "muted small", "data-testid": "campaign-times" });
    el.body = h("p", { class: "message-body", "data-testid": "campaign-body" });
    el.actions = h("div", { class: "actions", "data-testid": "actions" });
    el.panel = h("div", { class: "panel", hidden: true, "data-testid": "action-panel" });
    el.errors = h("div", { class: "alert alert-error", "data-testid": "user-errors", hidden: true });
    el.notices = h("div", { class: "notices" });
    el.stats = {};
    const cards = STAT_CARDS.map(([key, label]) => {
      const value = h("div", { class: "stat-value" }, "–");
      const sub = h("div", { class: "stat-sub" });
      const card = h("div", { class: `stat stat-${key}`, "data-testid": `stat-${key}`, "data-value": "" }, h("div", { class: "stat-label" }, label), value, sub);
      el.stats[key] = { card, value, sub };
      return card;
    });
    el.bar = h("div", { class: "bar bar-large", "data-testid": "progress-bar", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100 });
    el.segs = Object.fromEntries(
      ["sent", "failed", "cancelled"].map((k) => {
        const seg = h("span", { class: `seg seg-${k}` });
        el.bar.append(seg);
        return [k, seg];
      }),
    );
    el.progressText = h("span", { class: "progress-text", "data-testid": "progress-text" });
    const rate = (key, label) => {
      const value = h("strong", { "data-testid": `rate-${key}` }, "–");
      return [value, h("span", { class: "rate" }, h("span", { class: "muted" }, label), value)];
    };
    const rates = [rate("progress", "Processed"), rate("delivery", "Delivery"), rate("read", "Read"), rate("failure", "Failure")];
    el.rates = Object.fromEntries(["progress", "delivery", "read", "failure"].map((k, i) => [k, rates[i][0]]));
    el.sendRate = h("span", { class: "send-rate", "data-testid": "send-rate", "data-value": "0" }, "0");
    el.canvas = h("canvas", { class: "chart", "data-testid": "rate-chart", role: "img", "aria-label": "Messages sent per second over time" });
    el.history = h("ol", { class: "history", "data-testid": "history" });
    el.historyEmpty = h("p", { class: "muted small" }, "No status changes yet.");

    const view = h(
      "section",
      { class: "campaign", "data-testid": "campaign-view", "data-id": this.id },
      h("a", { class: "back", href: "#/" }, "← All campaigns"),
      h(
        "div",
        { class: "campaign-head" },
        h("div", { class: "campaign-title" }, el.name, h("div", { class: "campaign-sub" }, el.status, el.reason, el.times)),
      ),
      el.body,
      el.actions,
      el.panel,
      el.errors,
      el.notices,
      h("div", { class: "stats" }, cards),
      h(
        "div",
        { class: "card progress-card" },
        h("div", { class: "progress-head" }, h("h2", {}, "Progress"), el.progressText),
        el.bar,
        h(
          "div",
          { class: "legend" },
          h("span", { class: "key key-sent" }, "sent"),
          h("span", { class: "key key-failed" }, "failed"),
          h("span", { class: "key key-cancelled" }, "cancelled"),
          h("span", { class: "key key-pending" }, "pending"),
        ),
        h("div", { class: "rates" }, rates.map((r) => r[1])),
      ),
      h(
        "div",
        { class: "grid-2" },
        h(
          "div",
          { class: "card chart-card" },
          h("div", { class: "chart-head" }, h("h2", {}, "Sends per second"), h("span", {}, el.sendRate, h("span", { class: "muted" }, " msg/s"))),
          el.canvas,
        ),
        h(
          "div",
          { class: "card history-card" },
          h("h2", {}, "Status history"),
          el.history,
          el.historyEmpty,
        ),
      ),
    );
    $("#main").replaceChildren(view);
    this.chart = new RateChart(el.canvas);
    this.ticker = setInterval(() => this.tick(), 1000);
    const flash = state.flash.get(this.id);
    if (flash) {
      state.flash.delete(this.id);
      el.notices.replaceChildren(importReport(flash.report, flash.error));
    }
  }

  async load() {
    try {
      const data = await api.gql(Q.campaign, { id: this.id });
      if (this.destroyed) return;
      if (!data.campaign) {
        this.notFound();
        return;
      }
      this.apply(data.campaign);
      this.seedChart(data.campaign);
    } catch (err) {
      handleError(err, "Could not load the campaign");
      return;
    }
    this.unsubscribe = state.client?.subscribe(Q.progress, { id: this.id }, {
      next: ({ data, errors }) => {
        if (data?.campaignProgress) this.onProgress(data.campaignProgress);
        else if (errors?.length) toast(`Live updates: ${errors[0].message}`, "error");
      },
      error: (errors) => toast(`Live updates stopped: ${errors?.[0]?.message || "error"}`, "error"),
      complete: () => {},
    });
  }

  notFound() {
    $("#main").replaceChildren(
      h("section", { class: "placeholder", "data-testid": "not-found" }, h("h1", {}, "Campaign not found"), h("p", { class: "muted" }, "It may have been deleted."), h("a", { class: "btn", href: "#/" }, "All campaigns")),
    );
    this.destroyLive();
  }

  destroyLive() {
    this.unsubscribe?.();
    this.unsubscribe = null;
    clearInterval(this.ticker);
    this.chart?.destroy();
  }

  destroy() {
    this.destroyed = true;
    this.destroyLive();
  }

  /** Reads the campaign again (status, actions, history); coalesced. */
  refetch() {
    if (this.destroyed) return;
    if (this.refetching) {
      this.refetching.again = true;
      return;
    }
    const job = { again: false, seq: ++this.seq };
    this.refetching = job;
    api
      .gql(Q.campaign, { id: this.id })
      .then((data) => {
        if (this.destroyed || job.seq < this.staleBefore) return;
        if (data.campaign) this.apply(data.campaign);
        else this.notFound();
      })
      .catch((err) => handleError(err))
      .finally(() => {
        this.refetching = null;
        if (job.again) this.refetch();
      });
  }

  apply(c) {
    this.campaign = c;
    const el = this.el;
    setText(el.name, c.name);
    el.status.className = `badge badge-${c.status.toLowerCase()}`;
    el.status.dataset.status = c.status;
    setText(el.status, c.status);
    el.reason.hidden = !c.statusReason;
    setText(el.reason, c.statusReason || "");
    const times = [`created ${when(c.createdAt)}`];
    if (c.scheduledAt && c.status === "SCHEDULED") times.push(`scheduled for ${when(c.scheduledAt)}`);
    if (c.startedAt) times.push(`started ${when(c.startedAt)}`);
    if (c.completedAt) times.push(`finished ${when(c.completedAt)}`);
    setText(el.times, times.join(" · "));
    setText(el.body, c.body);
    this.applyStats(c.stats);
    this.renderActions(c.allowedActions);
    this.renderEvents(c.events);
    this.chart.live = ACTIVE.has(c.status);
    this.chart.emptyText = ["DRAFT", "SCHEDULED"].includes(c.status) ? "Not sent yet" : "No sends while this page was open";
    this.chart.draw();
    updateRow(this.id, { name: c.name, status: c.status, stats: c.stats });
  }

  applyStats(s) {
    for (const [key, , sub] of STAT_CARDS) {
      const { card, value, sub: subEl } = this.el.stats[key];
      card.dataset.value = String(s[key]);
      const text = fmt(s[key]);
      setText(value, text);
      value.classList.toggle("long", text.length > 6 && text.length <= 8);
      value.classList.toggle("longer", text.length > 8);
      setText(subEl, sub(s));
    }
    for (const k of ["sent", "failed", "cancelled"]) this.el.segs[k].style.width = `${share(s[k], s.total) * 100}%`;
    this.el.bar.setAttribute("aria-valuenow", String(Math.round(s.progress * 100)));
    setText(this.el.progressText, s.total ? `${fmt(s.total - s.pending)} of ${fmt(s.total)} processed` : "No recipients yet");
    setText(this.el.rates.progress, pct(s.progress));
    setText(this.el.rates.delivery, pct(s.deliveryRate));
    setText(this.el.rates.read, pct(s.readRate));
    setText(this.el.rates.failure, pct(s.failureRate));
  }

  onProgress(p) {
    if (this.destroyed || !this.campaign) return;
    this.applyStats(p.stats);
    updateRow(this.id, { stats: p.stats });
    const t = Date.parse(p.at);
    const now = Date.now();
    this.chart.clockSkew = t - now;
    this.lastEventAt = now;
    const active = ACTIVE.has(p.status);
    const done = p.stats.sent + p.stats.failed;
    // sends per second over the last second or more of snapshots
    let rate = p.sendRate;
    const last = this.samples.at(-1);
    if (last && done < last.done) {
      this.samples = []; // failed messages went back to pending (retry): a new baseline
    } else if (last && t > last.t) {
      const ref = [...this.samples].reverse().find((s) => t - s.t >= 1000) || this.samples[0];
      rate = (done - ref.done) / ((t - ref.t) / 1000);
    }
    this.samples.push({ t, done });
    this.samples = this.samples.filter((s) => t - s.t <= 10_000);
    this.showRate(rate);
    const lastPoint = this.chart.lastPoint;
    if (active || rate > 0 || (lastPoint && lastPoint.v > 0)) this.chart.push(t, rate);
    if (p.status !== this.campaign.status) this.refetch();
  }

  showRate(rate) {
    const rounded = Math.max(0, Math.round(rate));
    this.el.sendRate.dataset.value = String(rounded);
    setText(this.el.sendRate, fmt(rounded));
  }

  /** Silence means nothing moved: the rate is zero (while sending, or to end the line). */
  tick() {
    if (!this.campaign) return;
    const lastPoint = this.chart.lastPoint;
    if (!this.chart.live && !(lastPoint && lastPoint.v > 0)) return;
    if (Date.now() - this.lastEventAt > 2500) {
      this.showRate(0);
      this.chart.push(Date.now() + this.chart.clockSkew, 0);
    } else {
      this.chart.draw(); // the time axis moves on
    }
  }

  /** A finished or paused campaign: its sends per second from the report's timeline. */
  async seedChart(c) {
    if (!c.startedAt || ACTIVE.has(c.status)) return;
    const start = Date.parse(c.startedAt);
    const end = c.completedAt ? Date.parse(c.completedAt) : Date.now();
    const bucket = Math.max(1, Math.ceil((end - start) / 1000 / 120));
    try {
      const data = await api.gql(Q.timeline, { id: this.id, bucket });
      const points = data.campaign?.report.timeline || [];
      if (this.destroyed || !points.length || this.chart.points.length) return;
      const byTime = new Map(points.map((p) => [Date.parse(p.at), (p.sent + p.failed) / bucket]));
      const first = Math.min(...byTime.keys());
      const last = Math.max(...byTime.keys());
      const series = [];
      for (let t = first - bucket * 1000; t <= last + bucket * 1000; t += bucket * 1000) {
        series.push({ t: t + (bucket * 1000) / 2, v: byTime.get(t) || 0 });
      }
      this.chart.setPoints(series);
    } catch {
      /* the chart stays live-only */
    }
  }

  renderActions(actions) {
    const key = actions.join(",");
    if (key === this.renderedActions) return;
    this.renderedActions = key;
    this.el.actions.replaceChildren(
      ...actions.map((action) => {
        const spec = ACTIONS[action];
        return h(
          "button",
          {
            type: "button",
            class: `btn${spec?.style ? ` btn-${spec.style}` : ""}${this.panel === action ? " active" : ""}`,
            "data-testid": `action-${action}`,
            "data-action": action,
            disabled: !spec || this.busy,
            title: spec ? null : "This dashboard does not know this action yet.",
            onclick: () => this.onAction(action),
          },
          spec?.label || action,
        );
      }),
    );
    if (this.panel && !actions.includes(this.panel)) this.closePanel();
  }

  setBusy(busy) {
    this.busy = busy;
    for (const button of this.el.actions.querySelectorAll("button")) button.disabled = busy || !ACTIONS[button.dataset.action];
  }

  renderEvents(events) {
    const key = JSON.stringify(events);
    if (key === this.renderedEvents) return;
    this.renderedEvents = key;
    this.el.historyEmpty.hidden = events.length > 0;
    this.el.history.replaceChildren(
      ...[...events].reverse().map((e) =>
        h(
          "li",
          { "data-testid": "history-row", "data-to": e.to },
          h(
            "div",
            { class: "history-top" },
            h("span", { class: "change" }, badge(e.to), e.from ? h("span", { class: "muted small" }, `from ${e.from}`) : null),
            h("time", { class: "muted small nowrap", datetime: e.at, title: when(e.at) }, timeWithSeconds.format(new Date(e.at))),
          ),
          h("div", { class: "muted small" }, `${e.actor} · ${e.action}`, e.reason ? ` — ${e.reason}` : ""),
        ),
      ),
    );
  }

  onAction(action) {
    const spec = ACTIONS[action];
    if (!spec || this.busy) return;
    if (spec.panel) {
      if (this.panel === action) this.closePanel();
      else this.openPanel(action);
      return;
    }
    if (spec.confirm && !window.confirm(spec.confirm(this.campaign))) return;
    if (action === "DELETE") this.deleteCampaign();
    else this.mutate(action, { id: this.id });
  }

  /** Runs the action's mutation; re-renders from the campaign it returns. */
  async mutate(action, variables) {
    this.setBusy(true);
    this.el.errors.hidden = true;
    try {
      const data = await api.gql(ACTIONS[action].doc, variables);
      const { campaign, userErrors } = data.result;
      showUserErrors(this.el.errors, userErrors);
      if (action === "DUPLICATE" && campaign && !userErrors.length) {
        state.rows.set(campaign.id, campaign);
        state.totalCount += 1;
        toast(`Duplicated as “${campaign.name}”.`);
        location.hash = `#/campaigns/${encodeURIComponent(campaign.id)}`;
        return true;
      }
      if (campaign) {
        this.staleBefore = ++this.seq; // reads started before this answer are older than it
        this.apply(campaign);
      }
      return userErrors.length === 0;
    } catch (err) {
      handleError(err, `${ACTIONS[action].label.replace("…", "")} failed`);
      return false;
    } finally {
      this.setBusy(false);
    }
  }

  async deleteCampaign() {
    this.setBusy(true);
    try {
      const data = await api.gql(Q.delete, { id: this.id });
      const { deletedId, userErrors } = data.result;
      showUserErrors(this.el.errors, userErrors);
      if (deletedId) {
        state.rows.delete(this.id);
        state.totalCount = Math.max(0, state.totalCount - 1);
        toast(`Deleted “${this.campaign.name}”.`);
        location.hash = "#/";
      } else {
        this.refetch();
      }
    } catch (err) {
      handleError(err, "Delete failed");
    } finally {
      this.setBusy(false);
    }
  }

  closePanel() {
    this.panel = null;
    this.el.panel.hidden = true;
    this.el.panel.replaceChildren();
    for (const b of this.el.actions.querySelectorAll("button")) b.classList.remove("active");
  }

  openPanel(action) {
    this.closePanel();
    this.panel = action;
    $(`[data-action="${action}"]`, this.el.actions)?.classList.add("active");
    const c = this.campaign;
    const submit = (label) => h("button", { class: "btn btn-primary", type: "submit", "data-testid": "panel-submit" }, label);
    const cancel = h("button", { class: "btn btn-ghost", type: "button", onclick: () => this.closePanel() }, "Close");
    let form;
    if (action === "SCHEDULE" || action === "RESCHEDULE") {
      const initial = c.scheduledAt ? new Date(c.scheduledAt) : new Date(Date.now() + 3600_000);
      const input = h("input", { type: "datetime-local", required: true, value: isoToLocalInput(initial), min: isoToLocalInput(new Date()), "data-testid": "schedule-at" });
      form = h(
        "form",
        {
          onsubmit: async (e) => {
            e.preventDefault();
            const scheduledAt = localToIso(input.value);
            if (!scheduledAt) return;
            if (await this.mutate(action, { id: this.id, scheduledAt })) this.closePanel();
          },
        },
        h("label", {}, action === "SCHEDULE" ? "Send at (your local time)" : "New time (your local time)"),
        h("div", { class: "inline" }, input, submit(action === "SCHEDULE" ? "Schedule" : "Reschedule"), cancel),
      );
    } else if (action === "EDIT") {
      const name = h("input", { value: c.name, required: true, "data-testid": "edit-name" });
      const body = h("textarea", { rows: 4, required: true, "data-testid": "edit-body" });
      body.value = c.body;
      form = h(
        "form",
        {
          onsubmit: async (e) => {
            e.preventDefault();
            if (await this.mutate(action, { input: { id: this.id, name: name.value.trim(), body: body.value } })) this.closePanel();
          },
        },
        h("div", { class: "field" }, h("label", {}, "Name"), name),
        h("div", { class: "field" }, h("label", {}, "Message"), body),
        h("div", { class: "inline" }, submit("Save"), cancel),
      );
    } else if (action === "ADD_RECIPIENTS") {
      const recipients = recipientsFields("add");
      form = h(
        "form",
        {
          onsubmit: async (e) => {
            e.preventDefault();
            const csv = recipients.read();
            if (!csv) return;
            this.setBusy(true);
            try {
              const report = await api.uploadCsv(this.id, csv);
              this.el.notices.replaceChildren(importReport(report));
              this.closePanel();
            } catch (err) {
              if (err.unauthorized) handleError(err);
              else this.el.notices.replaceChildren(importReport(null, err.message));
            } finally {
              this.setBusy(false);
              this.refetch();
            }
          },
        },
        recipients.element,
        h("div", { class: "inline" }, submit("Upload"), cancel),
      );
    } else if (action === "REMOVE_RECIPIENTS") {
      const phones = h("textarea", { rows: 4, class: "mono", placeholder: "+14155552671\n+447911123456", "data-testid": "remove-phones" });
      form = h(
        "form",
        {
          onsubmit: async (e) => {
            e.preventDefault();
            const list = phones.value.split(/[\s,;]+/).filter(Boolean);
            if (!list.length) return;
            if (await this.mutate(action, { input: { campaignId: this.id, phones: list } })) this.closePanel();
          },
        },
        h("label", {}, "Phones to remove (one a line)"),
        phones,
        h("div", { class: "inline" }, submit("Remove"), cancel),
      );
    }
    this.el.panel.replaceChildren(form);
    this.el.panel.hidden = false;
    form.querySelector("input, textarea")?.focus();
  }
}

// ---------------------------------------------------------------- start

function start() {
  $("#login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("#key-input").value.trim();
    if (key) connect(key);
  });
  $("#sign-out").addEventListener("click", () => signOut());
  $("#load-more").addEventListener("click", () => loadList(state.pageInfo.endCursor).catch((err) => handleError(err)));
  window.addEventListener("hashchange", route);

  const params = new URLSearchParams(location.search);
  const fromUrl = params.get("key");
  if (fromUrl) {
    // keep the key out of the address bar, history and screenshots
    params.delete("key");
    const query = params.toString();
    history.replaceState(null, "", `${location.pathname}${query ? `?${query}` : ""}${location.hash}`);
  }
  const key = fromUrl || readStoredKey();
  if (key) connect(key);
  else showLogin();
}

start();
