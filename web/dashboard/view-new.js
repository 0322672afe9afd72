// The view at #/new: name, message with {{placeholders}}, recipients as CSV. Creates the
// campaign, uploads the recipients, then opens the campaign with the import report.

import * as api from "./api.js";
import { recipientsFields, showUserErrors } from "./components.js";
import { CREATE } from "./documents.js";
import { $, h, setText } from "./dom.js";
import { handleError } from "./errors.js";
import { goToCampaign } from "./router.js";
import * as state from "./state.js";
import { placeholders } from "./templates.js";

/** The column names of a CSV's header line. */
function csvColumns(csv) {
  const header = csv.trimStart().split(/\r?\n/, 1)[0];
  return header ? header.split(",").map((c) => c.trim().replace(/^"|"$/g, "")) : [];
}

export class NewCampaignView {
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
    const columns = csvColumns(this.recipients.textarea.value);
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
      const data = await api.gql(CREATE, { input: { name: this.name.value.trim(), body: this.body.value } });
      const { campaign, userErrors } = data.result;
      if (userErrors.length || !campaign) {
        showUserErrors(this.errors, userErrors, true);
        return;
      }
      state.addCampaign(campaign);
      const csv = this.recipients.read();
      if (csv) {
        setText(this.submit, "Uploading recipients…");
        try {
          state.setFlash(campaign.id, { report: await api.uploadCsv(campaign.id, csv) });
        } catch (err) {
          if (err.unauthorized) throw err;
          state.setFlash(campaign.id, { error: err.message });
        }
      }
      goToCampaign(campaign.id);
    } catch (err) {
      handleError(err, "Could not create the campaign");
    } finally {
      this.submit.disabled = false;
      setText(this.submit, "Create campaign");
    }
  }

  destroy() {}
}
