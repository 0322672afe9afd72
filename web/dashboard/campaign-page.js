// The campaign view's page: builds its elements once, then shows a campaign's header,
// counters, progress bar, rates, delivery, recurring schedule and status history in place
// (no re-render per update).

import { badge } from "./components.js";
import { $, h, setText } from "./dom.js";
import { cronInWords, fmt, inZone, pct, share, shortDate, timeWithSeconds, when } from "./format.js";
import { campaignHref } from "./router.js";

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
/** Why messages wait (WaitReason), in plain words. */
const WAIT_REASONS = {
  LOCAL_TIME: "their local send time is ahead",
  WINDOW: "outside the send window",
  DAILY_LIMIT: "the sender's daily messaging limit is reached",
  MARKETING_LIMIT: "WhatsApp's per-user marketing limit (131049)",
};

export class CampaignPage {
  constructor(id) {
    this.renderedEvents = null;
    this.renderedDelivery = null;
    this.renderedSchedule = null;
    const el = (this.el = {});
    el.name = h("h1", { "data-testid": "campaign-name" });
    el.status = h("span", { class: "badge", "data-testid": "campaign-status" });
    el.reason = h("span", { class: "status-reason", "data-testid": "status-reason", hidden: true });
    el.times = h("span", { class: "muted small", "data-testid": "campaign-times" });
    el.occurrenceOf = h("p", { class: "small occurrence-of", "data-testid": "occurrence-of", hidden: true });
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
    el.delivery = h("div", { class: "card delivery-card", "data-testid": "delivery", hidden: true });
    el.window = h("p", { class: "small", "data-testid": "send-window", hidden: true });
    el.localSend = h("p", { class: "small", "data-testid": "local-send-time", hidden: true });
    el.nextSend = h("p", { class: "small", "data-testid": "next-send", hidden: true });
    el.waiting = h("ul", { class: "waiting small", "data-testid": "waiting", hidden: true });
    el.planRows = h("tbody");
    el.plan = h(
      "table",
      { class: "table send-plan", "data-testid": "send-plan", hidden: true },
      h("caption", { class: "muted small" }, "Hour by hour (your local time): messages that become due"),
      h("thead", {}, h("tr", {}, h("th", {}, "Hour"), h("th", {}, "Messages"))),
      el.planRows,
    );
    el.delivery.append(h("h2", {}, "Delivery"), el.window, el.localSend, el.nextSend, el.waiting, el.plan);
    el.recurring = h("div", { class: "card recurring-card", "data-testid": "recurring", hidden: true });
    el.scheduleStatus = h("span", { class: "badge", "data-testid": "schedule-status" });
    el.scheduleInfo = h("div", { class: "small" });
    el.scheduleActions = h("div", { class: "actions", "data-testid": "schedule-actions" });
    el.scheduleErrors = h("div", { class: "alert alert-error", "data-testid": "schedule-errors", hidden: true });
    el.recurring.append(h("div", { class: "recurring-head" }, h("h2", {}, "Recurring"), el.scheduleStatus), el.scheduleInfo, el.scheduleActions, el.scheduleErrors);

    this.root = h(
      "section",
      { class: "campaign", "data-testid": "campaign-view", "data-id": id },
      h("a", { class: "back", href: "#/" }, "← All campaigns"),
      h(
        "div",
        { class: "campaign-head" },
        h("div", { class: "campaign-title" }, el.name, h("div", { class: "campaign-sub" }, el.status, el.reason, el.times)),
      ),
      el.occurrenceOf,
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
      el.delivery,
      el.recurring,
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
    this.showDelivery(c);
    this.showRecurring(c);
  }

  /** The schedule the campaign is the model of (the Recurring card), or the model it is an occurrence of. */
  showRecurring(c) {
    const el = this.el;
    const model = c.occurrenceOf?.campaign;
    el.occurrenceOf.hidden = !model;
    if (model && el.occurrenceOf.dataset.model !== model.id) {
      el.occurrenceOf.dataset.model = model.id;
      el.occurrenceOf.replaceChildren("Occurrence of ", h("a", { href: campaignHref(model.id), "data-testid": "occurrence-of-model" }, model.name));
    }
    const s = c.recurringSchedule;
    el.recurring.hidden = !s;
    const key = JSON.stringify(s || null);
    if (!s || key === this.renderedSchedule) return;
    this.renderedSchedule = key;
    el.scheduleStatus.className = `badge badge-${s.status.toLowerCase()}`;
    el.scheduleStatus.dataset.status = s.status;
    setText(el.scheduleStatus, s.status);
    const words = cronInWords(s.cron);
    const runs = s.maxRuns == null ? `${fmt(s.runs)} ${s.runs === 1 ? "run" : "runs"} (no limit)` : `${fmt(s.runs)} of ${fmt(s.maxRuns)} runs`;
    const span = [`from ${when(s.startsAt)}`, s.endsAt ? `until ${when(s.endsAt)}` : null, s.lastRunAt ? `last run ${when(s.lastRunAt)}` : null];
    const next = s.nextOccurrences;
    const nextCaption = s.status === "PAUSED" ? "Next occurrences if resumed now" : "Next occurrences";
    el.scheduleInfo.replaceChildren(
      h(
        "p",
        { "data-testid": "schedule-cron", "data-cron": s.cron },
        words ? h("span", { title: s.cron }, words[0].toUpperCase() + words.slice(1)) : h("code", {}, s.cron),
        `, ${s.timeZone} time`,
      ),
      h("p", { "data-testid": "schedule-runs", "data-runs": String(s.runs) }, [runs, ...span].filter(Boolean).join(" · ")),
      s.lastError ? h("p", { class: "alert alert-error", "data-testid": "schedule-last-error" }, `Last occurrence not launched: ${s.lastError}`) : null,
      next.length
        ? h(
            "table",
            { class: "table next-occurrences", "data-testid": "next-occurrences" },
            h("caption", { class: "muted small" }, nextCaption),
            h("thead", {}, h("tr", {}, h("th", {}, "Your time"), h("th", {}, s.timeZone))),
            h(
              "tbody",
              {},
              next.map((at) =>
                h("tr", { "data-testid": "next-occurrence", "data-at": at }, h("td", {}, h("time", { datetime: at }, when(at))), h("td", {}, inZone(at, s.timeZone))),
              ),
            ),
          )
        : h("p", { class: "muted" }, "No more occurrences."),
      s.occurrences.length
        ? h(
            "div",
            {},
            h("h3", { class: "muted small" }, "Latest occurrences"),
            h(
              "ul",
              { class: "occurrences", "data-testid": "occurrences" },
              s.occurrences.map((o) =>
                h(
                  "li",
                  { "data-testid": "occurrence", "data-id": o.id },
                  h("a", { href: campaignHref(o.id) }, o.name),
                  " ",
                  badge(o.status),
                  h("span", { class: "muted small" }, ` ${shortDate.format(new Date(o.createdAt))}`),
                ),
              ),
            ),
          )
        : h("p", { class: "muted" }, "No occurrence yet."),
    );
  }

  /** When messages may go out: the send window, the local send time, what waits and until when, the plan by hour. */
  showDelivery(c) {
    const el = this.el;
    const waiting = c.waiting || [];
    const plan = c.sendPlan || [];
    el.window.hidden = !c.sendWindow;
    setText(el.window, c.sendWindow ? `Send window: ${c.sendWindow.description}` : "");
    const local = c.localSendTime;
    el.localSend.hidden = !local;
    setText(el.localSend, local ? `Local send time: ${local.time} on ${local.date}, in each recipient's time zone` : "");
    el.nextSend.hidden = !c.nextSendAt;
    setText(el.nextSend, c.nextSendAt ? `Next messages go out ${when(c.nextSendAt)}` : "");
    const key = JSON.stringify([waiting, plan]);
    if (key !== this.renderedDelivery) {
      this.renderedDelivery = key;
      el.waiting.hidden = waiting.length === 0;
      el.waiting.replaceChildren(
        ...waiting.map((g) => {
          const zone = g.timeZone || c.timeZone;
          const who = `${fmt(g.count)} ${g.count === 1 ? "recipient waits" : "recipients wait"}`;
          const where = zone || "UTC";
          return h(
            "li",
            { "data-testid": "waiting-group", "data-reason": g.reason, "data-count": String(g.count), "data-zone": where },
            `${who}: ${WAIT_REASONS[g.reason] || g.reason} (${where}), until `,
            h("time", { datetime: g.until, title: when(g.until) }, inZone(g.until, zone || "UTC")),
          );
        }),
      );
      el.plan.hidden = plan.length === 0;
      el.planRows.replaceChildren(
        ...plan.map((p) =>
          h(
            "tr",
            { "data-testid": "plan-row", "data-at": p.at, "data-count": String(p.count) },
            h("td", {}, h("time", { datetime: p.at }, shortDate.format(new Date(p.at)))),
            h("td", {}, fmt(p.count)),
          ),
        ),
      );
    }
    el.delivery.hidden = el.window.hidden && el.localSend.hidden && el.nextSend.hidden && el.waiting.hidden && el.plan.hidden;
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
