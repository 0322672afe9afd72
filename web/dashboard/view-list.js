// The campaigns list in the sidebar: pages of `campaigns`, rows kept current by
// campaignStatusChanges and, for sending campaigns, their own campaignProgress.

import * as api from "./api.js";
import { badge } from "./components.js";
import { CAMPAIGNS, PROGRESS, ROW } from "./documents.js";
import { $, h, setText } from "./dom.js";
import { handleError } from "./errors.js";
import { fmt, share, shortDate, when } from "./format.js";
import { ACTIVE } from "./lifecycle.js";
import { campaignHref } from "./router.js";
import * as state from "./state.js";

const PAGE_SIZE = 50;
const MAX_ROW_SUBSCRIPTIONS = 20;

const rowSubs = new Map(); // id -> unsubscribe, progress of active campaigns in the list
const rowRefresh = new Map(); // id -> the in-flight read of that row ({again} asks for one more)
let dirty = false;

/** Renders the list (once per frame) whenever the state it shows changes. */
export function mountList() {
  state.onListChange(markDirty);
  $("#load-more").addEventListener("click", () => loadList(state.pageInfo().endCursor).catch((err) => handleError(err)));
}

/** Forgets the live subscriptions of a closed session (its client closed them). */
export function resetList() {
  rowSubs.clear();
}

/** Reads the first page (or the page after `after`) into the state. */
export async function loadList(after = null) {
  const data = await api.gql(CAMPAIGNS, { first: PAGE_SIZE, after });
  state.mergePage(data.campaigns, after);
}

/** A campaignStatusChanges event: move the row, read it again; a new campaign reloads the list. */
export function onStatusChange(change) {
  if (state.hasRow(change.campaignId)) {
    state.patchRow(change.campaignId, { status: change.to, name: change.name });
    refreshRow(change.campaignId);
  } else {
    loadList().catch((err) => handleError(err)); // a campaign made elsewhere
  }
}

function markDirty() {
  if (dirty) return;
  dirty = true;
  requestAnimationFrame(render);
}

function render() {
  dirty = false;
  const list = $("#campaign-list");
  const rows = state.sortedRows();
  const selected = state.currentView()?.id;
  if (!rows.length) {
    list.replaceChildren(
      h("div", { class: "empty" }, h("p", {}, "No campaigns yet."), h("a", { class: "btn btn-primary", href: "#/new" }, "Create one")),
    );
  } else {
    list.replaceChildren(...rows.map((row) => rowElement(row, row.id === selected)));
  }
  const total = state.totalCount();
  setText($("#campaign-count"), total ? fmt(total) : "");
  $("#load-more").hidden = !state.pageInfo().hasNextPage;
  syncRowSubscriptions(rows);
}

function rowElement(c, selected) {
  const s = c.stats;
  return h(
    "a",
    {
      class: `row${selected ? " selected" : ""}`,
      href: campaignHref(c.id),
      "data-testid": "campaign-row",
      "data-id": c.id,
      "data-status": c.status,
      "aria-current": selected ? "page" : null,
    },
    h("div", { class: "row-top" }, h("span", { class: "row-name", "data-testid": "row-name" }, c.name), badge(c.status, "row-status")),
    stackedBar(s),
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

function stackedBar(s) {
  const seg = (kind, n) => {
    const el = h("span", { class: `seg seg-${kind}` });
    el.style.width = `${share(n, s.total) * 100}%`;
    return el;
  };
  return h(
    "div",
    { class: "bar bar-mini", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": Math.round(s.progress * 100) },
    seg("sent", s.sent),
    seg("failed", s.failed),
    seg("cancelled", s.cancelled),
  );
}

/** Reads one row again (coalesced: at most one request per row in flight, plus one). */
function refreshRow(id) {
  const pending = rowRefresh.get(id);
  if (pending) {
    pending.again = true;
    return;
  }
  const job = { again: false };
  rowRefresh.set(id, job);
  api
    .gql(ROW, { id })
    .then((data) => state.replaceRow(id, data.campaign))
    .catch((err) => handleError(err))
    .finally(() => {
      rowRefresh.delete(id);
      if (job.again) refreshRow(id);
    });
}

/** Live numbers for the list's sending campaigns (the open one has its own subscription). */
function syncRowSubscriptions(rows) {
  const client = state.liveClient();
  if (!client) return;
  const open = state.currentView()?.id;
  const wanted = new Set(
    rows
      .filter((r) => ACTIVE.has(r.status) && r.id !== open)
      .slice(0, MAX_ROW_SUBSCRIPTIONS)
      .map((r) => r.id),
  );
  for (const [id, unsubscribe] of rowSubs) {
    if (!wanted.has(id)) {
      unsubscribe();
      rowSubs.delete(id);
    }
  }
  for (const id of wanted) {
    if (rowSubs.has(id)) continue;
    const unsubscribe = client.subscribe(PROGRESS, { id }, {
      next: ({ data }) => {
        const p = data?.campaignProgress;
        if (p) state.patchRow(id, { stats: p.stats, status: p.status });
      },
      error: () => rowSubs.delete(id),
      complete: () => rowSubs.delete(id),
    });
    rowSubs.set(id, unsubscribe);
  }
}
