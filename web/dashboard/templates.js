// Message bodies' {{placeholders}}. PLACEHOLDER is the server's pattern, character for
// character (domain/templates.py; tests/web/test_dashboard_modules.py checks they match).

export const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g;

/** The distinct placeholder names of `body`, in order of first appearance. */
export function placeholders(body) {
  return [...new Set([...body.matchAll(PLACEHOLDER)].map((m) => m[1]))];
}

/** A WhatsApp template's body with its parameters (names, in order) given `values`. */
export function fillTemplate(body, parameters, values) {
  const at = Object.fromEntries(parameters.map((p, i) => [p, values[i]]));
  return body.replace(PLACEHOLDER, (whole, name) => (at[name] ?? whole));
}
