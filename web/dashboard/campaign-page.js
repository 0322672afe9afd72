// The campaign view's page: builds its elements once, then shows a campaign's header,
// counters, progress bar, rates and status history in place (no re-render per update).

import { badge } from "./components.js";
import { $, h, setText } from "./dom.js";
import { fmt, pct, share, timeWithSeconds, when } from "./format.js";

/** The counters: key, label, the line under the number. */
const STAT_CARDS = [
  ["total", "Total", () => "recipients"],
  ["pending", "Pending", (s) => `${pct(share(s.pending, s.total))} of total`],
  ["sent", "Sent", (s) => `${pct(share(s.sent, s.total))} of total`],
  ["delivered", "Delivered", (s) => `${pct(s.deliveryRate)} of sent`],
  ["read", "Read", (s) => `${pct(s.readRate)} of delivered`],
  ["replied", "Replied", (s) => `${pct(share(s.replied, s.sent))} of sent`],
  ["failed", "Failed", (s) => `${pct(s.failureRate)} failure rate`],
  ["cancelled", "Cancelled", (s) => `${pct(share(s.cancelled, s.total))} of total`],
];
const RATES = [
  ["progress", "Processed"],
  ["delivery", "Delivery"],
  ["read", "Read"],
  ["failure", "Failure"],
];
const SEGMENTS = ["sent", "failed", "cancelled"];

export class CampaignPage {
  constructor(id) {
    this.renderedEvents = null;
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
      SEGMENTS.map((k) => {
        const seg = h("span", { class: `seg seg-${k}` });
        el.bar.append(seg);
        return [k, seg];
      }),
    );
    el.progressText = h("span", { class: "progress-text", "data-testid": "progress-text" });
    el.rates = {};
    const rates = RATES.map(([key, label]) => {
      el.rates[key] = h("strong", { "data-testid": `rate-${key}` }, "–");
      return h("span", { class: "rate" }, h("span", { class: "muted" }, label), el.rates[key]);
    });
    el.sendRate = h("span", { class: "send-rate", "data-testid": "send-rate", "data-value": "0" }, "0");
    el.canvas = h("canvas", { class: "chart", "data-testid": "rate-chart", role: "img", "aria-label": "Messages sent per second over time" });
    el.billable = h("div", { class: "billable", "data-testid": "billable" });
    el.history = h("ol", { class: "history", "data-testid": "history" });
    el.historyEmpty = h("p", { class: "muted small" }, "No status changes yet.");

    this.root = h(
      "section",
      { class: "campaign", "data-testid": "campaign-view", "data-id": id },
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
        h("div", { class: "rates" }, rates),
        el.billable,
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
        h("div", { class: "card history-card" }, h("h2", {}, "Status history"), el.history, el.historyEmpty),
      ),
    );
  }

  /** Puts the page in #main. */
  mount() {
    $("#main").replaceChildren(this.root);
  }

  /** Name, status, reason, times, message, numbers and history of a campaign. */
  showCampaign(c) {
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
    if (c.nextSendAt) times.push(`next send ${when(c.nextSendAt)}`);
    setText(el.times, times.join(" · "));
    setText(el.body, c.body);
    this.showStats(c.stats);
    this.showBillable(c.report?.billable || []);
    this.showEvents(c.events);
  }

  /** What the campaign costs: its billable messages per pricing category (status webhooks' pricing). */
  showBillable(counts) {
    const total = counts.reduce((sum, b) => sum + b.count, 0);
    this.el.billable.dataset.total = String(total);
    this.el.billable.replaceChildren(
      h("span", { class: "muted" }, "Billable"),
      h("strong", { "data-testid": "billable-total" }, fmt(total)),
      ...counts.map((b) =>
        h("span", { class: "billable-item", "data-testid": `billable-${b.category}`, "data-value": String(b.count) }, `${b.category} ${fmt(b.count)}`),
      ),
    );
  }

  /** The counters, the progress bar and the rates. */
  showStats(s) {
    const el = this.el;
    for (const [key, , sub] of STAT_CARDS) {
      const { card, value, sub: subEl } = el.stats[key];
      card.dataset.value = String(s[key]);
      const text = fmt(s[key]);
      setText(value, text);
      value.classList.toggle("long", text.length > 6 && text.length <= 8);
      value.classList.toggle("longer", text.length > 8);
      setText(subEl, sub(s));
    }
    for (const k of SEGMENTS) el.segs[k].style.width = `${share(s[k], s.total) * 100}%`;
    el.bar.setAttribute("aria-valuenow", String(Math.round(s.progress * 100)));
    setText(el.progressText, s.total ? `${fmt(s.total - s.pending)} of ${fmt(s.total)} processed` : "No recipients yet");
    setText(el.rates.progress, pct(s.progress));
    setText(el.rates.delivery, pct(s.deliveryRate));
    setText(el.rates.read, pct(s.readRate));
    setText(el.rates.failure, pct(s.failureRate));
  }

  /** The status history, newest first (rebuilt only when it changed). */
  showEvents(events) {
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
}
