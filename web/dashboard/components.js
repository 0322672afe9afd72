// Pieces of UI more than one view uses: status badges, userErrors, the recipients CSV
// fields and the import report.

import { h } from "./dom.js";
import { fmt } from "./format.js";

export function badge(status, testid) {
  return h("span", { class: `badge badge-${status.toLowerCase()}`, "data-testid": testid, "data-status": status }, status);
}

/** userErrors of a payload; `withField` names the input at fault (forms with several inputs). */
export function showUserErrors(el, errors, withField = false) {
  el.replaceChildren(
    ...errors.map((e) =>
      h("div", { "data-testid": "user-error", "data-code": e.code }, withField && e.field?.length ? `${e.field.at(-1)}: ` : "", e.message),
    ),
  );
  el.hidden = errors.length === 0;
}

/** A textarea for pasted CSV and a file input; `read()` is the File, the text or null. */
export function recipientsFields(prefix) {
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

function dismissButton() {
  return h("button", { type: "button", class: "dismiss", "aria-label": "Dismiss", title: "Dismiss", onclick: (e) => e.currentTarget.parentElement.remove() }, "×");
}

/** The added / duplicates / opted-out / invalid report of a CSV import, or why it failed. */
export function importReport(report, error) {
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
