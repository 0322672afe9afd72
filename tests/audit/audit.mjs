// graphql-http's GraphQL-over-HTTP audit suite against a running server.
//
//   node tests/audit/audit.mjs http://127.0.0.1:8000/graphql   (API key in AUDIT_API_KEY)
//
// Prints one JSON array on stdout: {id, name, status, reason, httpStatus} per audit,
// status "ok", or "error" (a failed MUST), "warn" (SHOULD), "notice" (MAY).
// tests/web/test_graphql_http_audit.py runs it and judges the results.
import { auditServer } from "graphql-http";

const [url] = process.argv.slice(2);
const key = process.env.AUDIT_API_KEY;
if (!url || !key) {
  console.error("usage: AUDIT_API_KEY=<key> node audit.mjs <graphql url>");
  process.exit(2);
}

// the service answers nothing without a key: every audit request carries one
async function fetchWithKey(input, init = {}) {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${key}`);
  return fetch(input, { ...init, headers });
}

const results = await auditServer({ url, fetchFn: fetchWithKey });
const report = results.map(({ id, name, status, reason, response }) => ({
  id,
  name,
  status,
  reason: reason ?? null,
  httpStatus: response?.status ?? null,
}));
process.stdout.write(JSON.stringify(report));
