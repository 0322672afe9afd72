// The live dashboard's entry point: signs in with the API key, opens the live
// connection, and routes between the views. Plain ES modules, no build step:
//   api.js         the fetch client (GraphQL over POST /graphql, CSV upload)
//   documents.js   the GraphQL documents        ws.js     graphql-transport-ws client
//   state.js       shared state, changed through named functions only
//   router.js      hash routes                  errors.js what a failed request does
//   view-list.js   the campaigns list           view-home.js, view-new.js, view-campaign.js
//   campaign-page.js, send-rate.js, panels.js   the campaign view's page, rate chart, forms
//   lifecycle.js   action buttons, statuses     components.js, dom.js, format.js, templates.js

import * as api from "./api.js";
import { STATUS_CHANGES, VIEWER } from "./documents.js";
import { $, setText, toast } from "./dom.js";
import { handleError, onUnauthorized } from "./errors.js";
import { currentRoute, watchRoutes } from "./router.js";
import * as state from "./state.js";
import { CampaignView } from "./view-campaign.js";
import { HomeView } from "./view-home.js";
import { loadList, mountList, onStatusChange, resetList } from "./view-list.js";
import { NewCampaignView } from "./view-new.js";
import { SubscriptionClient } from "./ws.js";

const KEY_STORAGE = "campaigns.apiKey";
const CONNECTION_LABELS = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", unauthorized: "Refused" };

// ---------------------------------------------------------------- the API key

function readStoredKey() {
  try {
    return localStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

function storeKey(key) {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  } catch {
    /* private mode: the key lives in memory only */
  }
}

function showLogin(message) {
  $("#app").hidden = true;
  $("#login").hidden = false;
  const error = $("#key-error");
  error.hidden = !message;
  error.textContent = message || "";
  $("#key-input").value = "";
  $("#key-input").focus();
}

function signOut(message) {
  storeKey(null);
  api.setKey(null);
  teardown();
  showLogin(message);
}

function teardown() {
  state.endSession();
  resetList();
}

// ---------------------------------------------------------------- the session

async function connect(key) {
  teardown();
  api.setKey(key);
  let viewer;
  try {
    viewer = (await api.gql(VIEWER)).viewer;
  } catch (err) {
    if (err.unauthorized) {
      signOut("That API key was refused. Check it and try again.");
    } else {
      showLogin(err.message);
      $("#key-input").value = key;
    }
    return;
  }
  storeKey(key);
  $("#login").hidden = true;
  $("#app").hidden = false;
  setText($("[data-testid=workspace]"), viewer.name);
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const client = new SubscriptionClient(`${scheme}//${location.host}/graphql`, {
    connectionParams: () => ({ Authorization: `Bearer ${api.getKey()}` }),
    onState: onConnectionState,
  });
  state.startSession(viewer, client);
  client.subscribe(STATUS_CHANGES, {}, {
    next: ({ data }) => data && onCampaignStatusChange(data.campaignStatusChanges),
    error: (errors) => toast(`Live status updates stopped: ${errors?.[0]?.message || "error"}`, "error"),
  });
  await loadList();
  route(currentRoute());
}

function onConnectionState(connection, info = {}) {
  const el = $("#connection");
  el.dataset.state = connection;
  setText($(".conn-label", el), CONNECTION_LABELS[connection] || connection);
  el.title = connection === "reconnecting" && info.delay ? `Retrying in ${Math.round(info.delay / 1000)} s` : "";
  if (connection === "unauthorized") signOut("The server refused this API key for live updates.");
  if (connection === "live" && info.reconnected) {
    // Status changes may have been missed while disconnected: read the truth again.
    loadList().catch((err) => handleError(err));
    state.currentView()?.refetch?.();
  }
}

function onCampaignStatusChange(change) {
  onStatusChange(change);
  const view = state.currentView();
  if (view?.id === change.campaignId) view.refetch();
}

// ---------------------------------------------------------------- routing

function route({ name, id }) {
  if (!state.liveClient()) return;
  if (id && state.currentView()?.id === id) return;
  const views = { campaign: () => new CampaignView(id), new: () => new NewCampaignView(), home: () => new HomeView() };
  state.openView(views[name]);
  $("#layout").classList.toggle("has-detail", name !== "home");
}

// ---------------------------------------------------------------- start

function start() {
  onUnauthorized(signOut);
  mountList();
  $("#login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("#key-input").value.trim();
    if (key) connect(key);
  });
  $("#sign-out").addEventListener("click", () => signOut());
  watchRoutes(route);

  const params = new URLSearchParams(location.search);
  const fromUrl = params.get("key");
  if (fromUrl) {
    // keep the key out of the address bar, history and screenshots
    params.delete("key");
    const query = params.toString();
    history.replaceState(null, "", `${location.pathname}${query ? `?${query}` : ""}${location.hash}`);
  }
  const key = fromUrl || readStoredKey();
  if (key) connect(key);
  else showLogin();
}

start();
