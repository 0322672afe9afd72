// The forms some actions open before they run (schedule, edit, add and remove
// recipients): one function per form. A panel gets the view's context
//   {action, id, campaign, mutate(variables) -> Promise<ok>, uploadRecipients(csv) -> Promise<ok>, close()}
// and returns its <form>; the campaign view shows it under the action buttons.

import { recipientsFields } from "./components.js";
import { h } from "./dom.js";
import { isoToLocalInput, localToIso } from "./format.js";

const submitButton = (label) => h("button", { class: "btn btn-primary", type: "submit", "data-testid": "panel-submit" }, label);
const closeButton = (close) => h("button", { class: "btn btn-ghost", type: "button", onclick: () => close() }, "Close");

/** A <form> whose submit runs `onSubmit()` (the page never reloads). */
function panelForm(onSubmit, ...children) {
  return h(
    "form",
    {
      onsubmit: (e) => {
        e.preventDefault();
        onSubmit();
      },
    },
    ...children,
  );
}

/** SCHEDULE and RESCHEDULE: a local date and time. */
function schedulePanel({ action, id, campaign, mutate, close }) {
  const first = action === "SCHEDULE";
  const initial = campaign.scheduledAt ? new Date(campaign.scheduledAt) : new Date(Date.now() + 3600_000);
  const input = h("input", {
    type: "datetime-local",
    required: true,
    value: isoToLocalInput(initial),
    min: isoToLocalInput(new Date()),
    "data-testid": "schedule-at",
  });
  return panelForm(
    async () => {
      const scheduledAt = localToIso(input.value);
      if (!scheduledAt) return;
      if (await mutate({ id, scheduledAt })) close();
    },
    h("label", {}, first ? "Send at (your local time)" : "New time (your local time)"),
    h("div", { class: "inline" }, input, submitButton(first ? "Schedule" : "Reschedule"), closeButton(close)),
  );
}

/** EDIT: name and message. */
function editPanel({ id, campaign, mutate, close }) {
  const name = h("input", { value: campaign.name, required: true, "data-testid": "edit-name" });
  const body = h("textarea", { rows: 4, required: true, "data-testid": "edit-body" });
  body.value = campaign.body;
  return panelForm(
    async () => {
      if (await mutate({ input: { id, name: name.value.trim(), body: body.value } })) close();
    },
    h("div", { class: "field" }, h("label", {}, "Name"), name),
    h("div", { class: "field" }, h("label", {}, "Message"), body),
    h("div", { class: "inline" }, submitButton("Save"), closeButton(close)),
  );
}

/** ADD_RECIPIENTS: CSV pasted or picked as a file. */
function addRecipientsPanel({ uploadRecipients, close }) {
  const recipients = recipientsFields("add");
  return panelForm(
    async () => {
      const csv = recipients.read();
      if (!csv) return;
      if (await uploadRecipients(csv)) close();
    },
    recipients.element,
    h("div", { class: "inline" }, submitButton("Upload"), closeButton(close)),
  );
}

/** REMOVE_RECIPIENTS: phones, one a line (or separated by commas, semicolons, spaces). */
function removeRecipientsPanel({ id, mutate, close }) {
  const phones = h("textarea", { rows: 4, class: "mono", placeholder: "+14155552671\n+447911123456", "data-testid": "remove-phones" });
  return panelForm(
    async () => {
      const list = phones.value.split(/[\s,;]+/).filter(Boolean);
      if (!list.length) return;
      if (await mutate({ input: { campaignId: id, phones: list } })) close();
    },
    h("label", {}, "Phones to remove (one a line)"),
    phones,
    h("div", { class: "inline" }, submitButton("Remove"), closeButton(close)),
  );
}

/** The form of each action that opens one. */
export const PANELS = Object.freeze({
  SCHEDULE: schedulePanel,
  RESCHEDULE: schedulePanel,
  EDIT: editPanel,
  ADD_RECIPIENTS: addRecipientsPanel,
  REMOVE_RECIPIENTS: removeRecipientsPanel,
});
