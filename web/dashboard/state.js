// The dashboard's shared state: the session (workspace, live client), the campaigns of
// the list, the open view and notices waiting for a campaign's view. Other modules read
// it through the getters and change it only through the named functions below; every
// change to what the list shows calls the onListChange listeners.

const state = {
  viewer: null, // {name} of the workspace
  client: null, // the SubscriptionClient of this session
  rows: new Map(), // id -> list row {id, name, status, createdAt, stats}
  totalCount: 0,
  pageInfo: { hasNextPage: false, endCursor: null },
  pagesLoaded: 0,
  view: null, // the open view: {id?, refetch?(), destroy()}
  flash: new Map(), // campaign id -> {report, error} to show when its view opens
};

const listeners = new Set();

/** Calls `listener()` after every change to the list's rows, counts or the open view. */
export function onListChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function changed() {
  for (const listener of listeners) listener();
}

// ---------------------------------------------------------------- reads

export const viewer = () => state.viewer;
export const liveClient = () => state.client;
export const currentView = () => state.view;
export const totalCount = () => state.totalCount;
export const pageInfo = () => state.pageInfo;
export const hasRow = (id) => state.rows.has(id);

/** The list's rows, newest first. */
export function sortedRows() {
  return [...state.rows.values()].sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
}

// ---------------------------------------------------------------- session

export function startSession(workspace, client) {
  state.viewer = workspace;
  state.client = client;
}

/** Closes the open view and the live client; forgets the rows. */
export function endSession() {
  state.view?.destroy();
  state.view = null;
  state.client?.close();
  state.client = null;
  state.rows.clear();
  state.pagesLoaded = 0;
  changed();
}

// ---------------------------------------------------------------- the open view

/** Destroys the open view, then opens the one `make()` builds. */
export function openView(make) {
  state.view?.destroy();
  state.view = make();
  changed();
}

// ---------------------------------------------------------------- list rows

/**
 * Merges a page of the `campaigns` connection. The first page (`after` null) is fresh
 * truth: rows it should hold but does not were deleted; rows older than it (loaded
 * with "Load more") stay.
 */
export function mergePage(connection, after) {
  if (!after) {
    const fresh = new Set(connection.edges.map((e) => e.node.id));
    const oldest = connection.edges.at(-1)?.node.createdAt;
    for (const [id, row] of state.rows) {
      const covered = !connection.pageInfo.hasNextPage || (oldest && row.createdAt >= oldest);
      if (!fresh.has(id) && covered) state.rows.delete(id);
    }
  }
  for (const { node } of connection.edges) state.rows.set(node.id, node);
  state.totalCount = connection.totalCount;
  if (after) {
    state.pageInfo = connection.pageInfo;
    state.pagesLoaded += 1;
  } else if (state.pagesLoaded <= 1) {
    state.pageInfo = connection.pageInfo;
    state.pagesLoaded = 1;
  }
  changed();
}

/** A campaign made here (created, duplicated): one more in the list. */
export function addCampaign(row) {
  state.rows.set(row.id, row);
  state.totalCount += 1;
  changed();
}

/** A campaign deleted here: one fewer. */
export function removeCampaign(id) {
  state.rows.delete(id);
  state.totalCount = Math.max(0, state.totalCount - 1);
  changed();
}

/** A row as the server read it again; null: it is gone. */
export function replaceRow(id, row) {
  if (row) state.rows.set(id, row);
  else state.rows.delete(id);
  changed();
}

/** Changes some fields of a row the list holds (no-op otherwise). */
export function patchRow(id, changes) {
  const row = state.rows.get(id);
  if (!row) return;
  Object.assign(row, changes);
  changed();
}

// ---------------------------------------------------------------- notices for a view

/** Keeps `{report}` or `{error}` of a recipients import for the campaign's view. */
export function setFlash(id, flash) {
  state.flash.set(id, flash);
}

/** The notice kept for a campaign, once. */
export function takeFlash(id) {
  const flash = state.flash.get(id);
  state.flash.delete(id);
  return flash;
}
