// The HTTP API client: GraphQL queries and mutations over fetch (POST /graphql) and CSV
// upload (POST /campaigns/{id}/recipients), both with the workspace's API key as Bearer.

export class ApiError extends Error {
  constructor(message, { unauthorized = false } = {}) {
    super(message);
    this.unauthorized = unauthorized;
  }
}

let apiKey = null;

/** The API key every request sends (null: signed out). */
export function setKey(key) {
  apiKey = key;
}

export function getKey() {
  return apiKey;
}

const refused = () => new ApiError("The server refused this API key.", { unauthorized: true });

/** Runs a GraphQL operation; its `data`, or an ApiError (top-level errors, HTTP, network). */
export async function gql(query, variables = {}) {
  let response;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", Authorization: `Bearer ${apiKey}` },
      body: JSON.stringify({ query, variables }),
    });
  } catch (err) {
    throw new ApiError(`The server cannot be reached (${err.message}).`);
  }
  if (response.status === 401) throw refused();
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`The server answered HTTP ${response.status}.`);
  }
  if (body.errors?.length) throw new ApiError(body.errors.map((e) => e.message).join(" "));
  return body.data;
}

/** POST /campaigns/{id}/recipients with a CSV string or File; the import report. */
export async function uploadCsv(id, csv) {
  let response;
  try {
    response = await fetch(`/campaigns/${encodeURIComponent(id)}/recipients`, {
      method: "POST",
      headers: { "Content-Type": "text/csv", Authorization: `Bearer ${apiKey}` },
      body: csv,
    });
  } catch (err) {
    throw new ApiError(`The upload failed (${err.message}).`);
  }
  if (response.status === 401) throw refused();
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(body?.errors?.map((e) => e.message).join(" ") || `The upload failed: HTTP ${response.status}.`);
  }
  return body;
}
