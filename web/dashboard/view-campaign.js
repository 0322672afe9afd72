// The view at #/campaigns/<id>: reads the campaign, follows its campaignProgress, and
// runs its allowedActions (buttons; some open a form from panels.js first) and those of
// the recurring schedule it is the model of.

import * as api from "./api.js";
import { CampaignPage } from "./campaign-page.js";
import { importReport, showUserErrors } from "./components.js";
import { ACTION_MUTATIONS, CAMPAIGN, DELETE, PROGRESS, SCHEDULE_MUTATIONS } from "./documents.js";
import { $, h, toast } from "./dom.js";
import { handleError } from "./errors.js";
import { ACTIONS, SCHEDULE_ACTIONS } from "./lifecycle.js";
import { PANELS } from "./panels.js";
import { goHome, goToCampaign } from "./router.js";
import { SendRate } from "./send-rate.js";
import * as state from "./state.js";

/** While numbers move, the campaign (its billable counts) is read again at most this often. */
const BILLABLE_EVERY_MS = 5000;

export class CampaignView {
  constructor(id) {
    this.id = id;
    this.campaign = null;
    this.readAt = 0;
    this.seq = 0; // request order, to drop answers that a mutation made stale
    this.staleBefore = 0;
    this.refetching = null;
    this.renderedActions = null;
    this.renderedScheduleActions = null;
    this.panel = null; // the action whose form is open
    this.busy = false;
    this.destroyed = false;
    this.page = new CampaignPage(id);
    this.el = this.page.el;
    this.page.mount();
    this.rate = new SendRate(this.el.sendRate, this.el.canvas);
    const flash = state.takeFlash(id);
    if (flash) this.el.notices.replaceChildren(importReport(flash.report, flash.error));
    this.load();
  }

  async load() {
    try {
      const data = await api.gql(CAMPAIGN, { id: this.id });
      if (this.destroyed) return;
      if (!data.campaign) {
        this.notFound();
        return;
      }
      this.apply(data.campaign);
      this.rate.seed(this.id, data.campaign);
    } catch (err) {
      handleError(err, "Could not load the campaign");
      return;
    }
    this.unsubscribe = state.liveClient()?.subscribe(PROGRESS, { id: this.id }, {
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
      h(
        "section",
        { class: "placeholder", "data-testid": "not-found" },
        h("h1", {}, "Campaign not found"),
        h("p", { class: "muted" }, "It may have been deleted."),
        h("a", { class: "btn", href: "#/" }, "All campaigns"),
      ),
    );
    this.destroyLive();
  }

  destroyLive() {
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.rate.destroy();
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
      .gql(CAMPAIGN, { id: this.id })
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
    this.readAt = Date.now();
    this.page.showCampaign(c);
    this.renderActions(c.allowedActions);
    this.renderScheduleActions(c.recurringSchedule?.allowedActions || []);
    this.rate.setStatus(c.status);
    state.patchRow(this.id, { name: c.name, status: c.status, stats: c.stats });
  }

  onProgress(p) {
    if (this.destroyed || !this.campaign) return;
    this.page.showStats(p.stats);
    state.patchRow(this.id, { stats: p.stats });
    this.rate.onProgress(p);
    if (p.status !== this.campaign.status) this.refetch();
    else if (Date.now() - this.readAt > BILLABLE_EVERY_MS) this.refetch(); // billable counts are not in the live numbers
  }

  // ------------------------------------------------------------ actions

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
    for (const button of this.el.scheduleActions.querySelectorAll("button")) button.disabled = busy || !SCHEDULE_ACTIONS[button.dataset.action];
  }

  /** The Recurring card's buttons: one per allowedActions entry of the schedule. */
  renderScheduleActions(actions) {
    const key = actions.join(",");
    if (key === this.renderedScheduleActions) return;
    this.renderedScheduleActions = key;
    this.el.scheduleActions.replaceChildren(
      ...actions.map((action) => {
        const spec = SCHEDULE_ACTIONS[action];
        return h(
          "button",
          {
            type: "button",
            class: `btn${spec?.style ? ` btn-${spec.style}` : ""}`,
            "data-testid": `schedule-action-${action}`,
            "data-action": action,
            disabled: !spec || this.busy,
            title: spec ? null : "This dashboard does not know this action yet.",
            onclick: () => this.onScheduleAction(action),
          },
          spec?.label || action,
        );
      }),
    );
  }

  /** Runs a schedule action's mutation; re-renders the card from the schedule it returns (also on a refused transition). */
  async onScheduleAction(action) {
    const spec = SCHEDULE_ACTIONS[action];
    const schedule = this.campaign?.recurringSchedule;
    if (!spec || !schedule || this.busy) return;
    if (spec.confirm && !window.confirm(spec.confirm(this.campaign))) return;
    this.setBusy(true);
    this.el.scheduleErrors.hidden = true;
    try {
      const data = await api.gql(SCHEDULE_MUTATIONS[action], { id: schedule.id });
      const { recurringSchedule, userErrors } = data.result;
      showUserErrors(this.el.scheduleErrors, userErrors);
      if (recurringSchedule) {
        this.staleBefore = ++this.seq; // reads started before this answer are older than it
        this.apply({ ...this.campaign, recurringSchedule });
      }
    } catch (err) {
      handleError(err, `${spec.label} failed`);
    } finally {
      this.setBusy(false);
    }
  }

  onAction(action) {
    const spec = ACTIONS[action];
    if (!spec || this.busy) return;
    if (PANELS[action]) {
      if (this.panel === action) this.closePanel();
      else this.openPanel(action);
      return;
    }
    if (spec.confirm && !window.confirm(spec.confirm(this.campaign))) return;
    if (action === "DELETE") this.deleteCampaign();
    else this.mutate(action, { id: this.id });
  }

  /** Runs the action's mutation; re-renders from the campaign it returns. True without userErrors. */
  async mutate(action, variables) {
    this.setBusy(true);
    this.el.errors.hidden = true;
    try {
      const data = await api.gql(ACTION_MUTATIONS[action], variables);
      const { campaign, userErrors } = data.result;
      showUserErrors(this.el.errors, userErrors);
      if (action === "DUPLICATE" && campaign && !userErrors.length) {
        state.addCampaign(campaign);
        toast(`Duplicated as “${campaign.name}”.`);
        goToCampaign(campaign.id);
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

  /** ADD_RECIPIENTS: uploads the CSV and shows the import report. True if it was imported. */
  async uploadRecipients(csv) {
    this.setBusy(true);
    try {
      this.el.notices.replaceChildren(importReport(await api.uploadCsv(this.id, csv)));
      return true;
    } catch (err) {
      if (err.unauthorized) handleError(err);
      else this.el.notices.replaceChildren(importReport(null, err.message));
      return false;
    } finally {
      this.setBusy(false);
      this.refetch();
    }
  }

  async deleteCampaign() {
    this.setBusy(true);
    try {
      const data = await api.gql(DELETE, { id: this.id });
      const { deletedId, userErrors } = data.result;
      showUserErrors(this.el.errors, userErrors);
      if (deletedId) {
        state.removeCampaign(this.id);
        toast(`Deleted “${this.campaign.name}”.`);
        goHome();
      } else {
        this.refetch();
      }
    } catch (err) {
      handleError(err, "Delete failed");
    } finally {
      this.setBusy(false);
    }
  }

  // ------------------------------------------------------------ panels

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
    const form = PANELS[action]({
      action,
      id: this.id,
      campaign: this.campaign,
      mutate: (variables) => this.mutate(action, variables),
      uploadRecipients: (csv) => this.uploadRecipients(csv),
      close: () => this.closePanel(),
    });
    this.el.panel.replaceChildren(form);
    this.el.panel.hidden = false;
    form.querySelector("input, textarea")?.focus();
  }
}
