// What the dashboard knows of the campaign lifecycle: the button of each CampaignAction
// (its mutation is in documents.js, its form if it has one in panels.js), of each
// recurring schedule action, and which statuses are sending.

/** Every CampaignAction's button; `confirm` asks before running it. */
export const ACTIONS = Object.freeze({
  SEND_NOW: { label: "Send now", style: "primary" },
  SCHEDULE: { label: "Schedule…" },
  RESCHEDULE: { label: "Reschedule…" },
  UNSCHEDULE: { label: "Unschedule" },
  PAUSE: { label: "Pause", style: "warning" },
  RESUME: { label: "Resume", style: "primary" },
  CANCEL: {
    label: "Cancel campaign",
    style: "danger",
    confirm: (c) => `Cancel “${c.name}”? Messages not sent yet will never be sent, and it cannot be resumed.`,
  },
  RETRY_FAILED: { label: "Retry failed", style: "primary" },
  RETRY: { label: "Retry", style: "primary" },
  DUPLICATE: { label: "Duplicate" },
  EDIT: { label: "Edit…" },
  ADD_RECIPIENTS: { label: "Add recipients…" },
  REMOVE_RECIPIENTS: { label: "Remove recipients…" },
  DELETE: { label: "Delete", style: "danger", confirm: (c) => `Delete “${c.name}”? This cannot be undone.` },
});

/** Every RecurringScheduleAction's button, on the Recurring card (its mutation: documents.js's SCHEDULE_MUTATIONS). */
export const SCHEDULE_ACTIONS = Object.freeze({
  PAUSE: { label: "Pause schedule", style: "warning" },
  RESUME: { label: "Resume schedule", style: "primary" },
  END: {
    label: "End schedule",
    style: "danger",
    confirm: (c) => `End the recurring schedule of “${c.name}”? No occurrence will be made again (those made stay), and it cannot be resumed.`,
  },
});

/** Statuses in which a campaign sends (its numbers move, its chart runs live). */
export const ACTIVE = new Set(["QUEUED", "PROCESSING"]);

/** Statuses before the first send. */
export const NOT_SENT_YET = new Set(["DRAFT", "SCHEDULED"]);
