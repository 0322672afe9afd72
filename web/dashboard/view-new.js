// The view at #/new: name, an optional WhatsApp template, message with {{placeholders}},
// recipients as CSV. Creates the campaign, uploads the recipients, then opens the
// campaign with the import report. With a template, the message's placeholders fill
// the template's parameters in order, and a preview shows it filled from the first row.

import * as api from "./api.js";
import { recipientsFields, showUserErrors } from "./components.js";
import { CREATE, TEMPLATES } from "./documents.js";
import { $, h, setText } from "./dom.js";
import { handleError } from "./errors.js";
import { goToCampaign } from "./router.js";
import * as state from "./state.js";
import { fillTemplate, placeholders } from "./templates.js";

/** The column names of a CSV's header line. */
function csvColumns(csv) {
  const header = csv.trimStart().split(/\r?\n/, 1)[0];
  return header ? header.split(",").map((c) => c.trim().replace(/^"|"$/g, "")) : [];
}

/** The first data row of a CSV as {column: value} (no quoting: a preview, not a parser). */
function firstRow(csv) {
  const lines = csv.trimStart().split(/\r?\n/);
  if (lines.length < 2) return {};
  const columns = csvColumns(csv);
  const values = lines[1].split(",").map((v) => v.trim().replace(/^"|"$/g, ""));
  return Object.fromEntries(columns.map((c, i) => [c, values[i] ?? ""]));
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
    this.templates = [];
    this.template = h(
      "select",
      { id: "new-template", "data-testid": "new-template", onchange: () => this.onTemplate() },
      h("option", { value: "" }, "None (a free-text message)"),
    );
    this.preview = h("p", { class: "hint", "data-testid": "template-preview", hidden: true });
    this.hint = h("p", { class: "hint", "data-testid": "placeholder-hint" });
    this.errors = h("div", { class: "alert alert-error", "data-testid": "user-errors", hidden: true });
    this.submit = h("button", { class: "btn btn-primary", type: "submit", "data-testid": "create-submit" }, "Create campaign");
    const form = h(
      "form",
      { class: "card form", onsubmit: (e) => this.onSubmit(e), "data-testid": "new-campaign-form" },
      h("h1", {}, "New campaign"),
      h("div", { class: "field" }, h("label", { for: "new-name" }, "Name"), this.name),
      h("div", { class: "field" }, h("label", { for: "new-template" }, "WhatsApp template"), this.template, this.preview),
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
    this.loadTemplates();
  }

  async loadTemplates() {
    try {
      this.templates = (await api.gql(TEMPLATES)).templates;
    } catch (err) {
      this.templates = []; // a workspace without senders has none: the form works without
    }
    for (const [i, t] of this.templates.entries()) {
      const label = `${t.name} (${t.language}, ${t.category.toLowerCase()}, ${t.parameters.length} parameters)`;
      this.template.append(h("option", { value: String(i) }, label));
    }
  }

  chosen() {
    return this.template.value === "" ? null : this.templates[Number(this.template.value)];
  }

  onTemplate() {
    const t = this.chosen();
    if (t) {
      // one placeholder per parameter, named after it: rename them to CSV columns
      this.body.value = t.parameters.map((p) => `{{${/^\d+$/.test(p) ? `param${p}` : p}}}`).join(" ");
    }
    this.updateHint();
  }

  updatePreview() {
    const t = this.chosen();
    this.preview.hidden = !t;
    if (!t) return;
    const row = firstRow(this.recipients.textarea.value);
    const values = placeholders(this.body.value).map((n) => row[n] ?? `{{${n}}}`);
    const wanted = t.parameters.length;
    const note = values.length === wanted ? "" : ` — the template takes ${wanted} parameters, the message gives ${values.length}`;
    setText(this.preview, `Preview: ${fillTemplate(t.body, t.parameters, values)}${note}`);
    this.preview.classList.toggle("hint-warn", values.length !== wanted);
  }

  updateHint() {
    this.updatePreview();
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
      const input = { name: this.name.value.trim(), body: this.body.value };
      const t = this.chosen();
      if (t) Object.assign(input, { templateName: t.name, templateLanguage: t.language, senderId: t.senderId });
      const data = await api.gql(CREATE, { input });
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
