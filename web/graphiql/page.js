// GraphiQL on the service's own files (web/graphiql/vendor/, pinned by
// scripts/build-graphiql): React, ReactDOM and GraphiQL are the UMD globals loaded
// before this script. GraphiQL's own createFetcher (@graphiql/toolkit's
// createGraphiQLFetcher, bundled with graphql-ws) sends queries and mutations over
// POST /graphql and subscriptions over graphql-transport-ws, both on this origin.
/* global React, ReactDOM, GraphiQL */
(function () {
  "use strict";

  // The <style> elements GraphiQL's dialogs insert take this nonce (the bundle reads
  // __webpack_nonce__), which the page's Content-Security-Policy allows: no 'unsafe-inline'.
  window.__webpack_nonce__ = document.currentScript.nonce;

  // The dashboard's storage key: one key per browser for both pages of this origin.
  const KEY_STORAGE = "campaigns.apiKey";
  const HTTP_URL = `${location.origin}/graphql`;
  const WS_URL = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/graphql`;

  const FIRST_QUERY = `# GraphiQL, served by the campaigns service.
# Your API key (the field above) goes with each
# request: "Authorization: Bearer <key>" on HTTP,
# "apiKey" in connection_init for subscriptions.
#
# Run with Ctrl-Enter or ▶: your workspace and
# its newest campaigns, with their numbers.
query FirstLook {
  viewer { id name }
  campaigns(first: 5) {
    totalCount
    edges {
      node {
        id
        name
        status
        allowedActions
        stats {
          total pending sent
          delivered read failed progress
        }
      }
    }
  }
}

# Live numbers of one campaign: uncomment, put
# an id from above, run. The current snapshot
# comes first, then one at every change.
#
# subscription Progress {
#   campaignProgress(id: "<a campaign id>") {
#     status sendRate at
#     stats { total sent delivered failed }
#   }
# }
#
# Every status change in the workspace:
#
# subscription Changes {
#   campaignStatusChanges {
#     campaignId name from to reason at
#   }
# }
`;

  function readKey() {
    try {
      return localStorage.getItem(KEY_STORAGE) || "";
    } catch {
      return ""; // storage refused (private mode): the key lives in memory only
    }
  }

  function storeKey(key) {
    try {
      if (key) localStorage.setItem(KEY_STORAGE, key);
      else localStorage.removeItem(KEY_STORAGE);
    } catch {
      /* storage refused: see readKey */
    }
  }

  // Without a key every request would be refused: say so without asking the service.
  const NO_KEY = { errors: [{ message: "Enter your API key in the field above: the API refuses requests without one." }] };

  function fetcherFor(key) {
    if (!key) return async () => NO_KEY;
    return GraphiQL.createFetcher({
      url: HTTP_URL,
      subscriptionUrl: WS_URL,
      headers: { Authorization: `Bearer ${key}` },
      // read by server.GraphQLApp.on_ws_connect (apiKey, or Authorization: Bearer …)
      wsConnectionParams: { apiKey: key },
    });
  }

  const state = document.getElementById("key-state");
  let generation = 0; // one more at each render(): a new key, or none

  function show(kind, text) {
    state.dataset.state = kind;
    state.textContent = text;
  }

  // Says at once whether the key is taken, rather than leaving it to the first query.
  async function check(key) {
    if (!key) {
      show("none", "No key yet: requests are refused (401)");
      return;
    }
    show("checking", "Checking the key…");
    const asked = generation; // a later key's answer wins, whichever comes back first
    try {
      const response = await fetch(HTTP_URL, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json", Authorization: `Bearer ${key}` },
        body: JSON.stringify({ query: "{ viewer { name } }" }),
      });
      const body = await response.json().catch(() => null);
      if (asked !== generation) return;
      if (response.ok && body && body.data) show("ok", `Workspace: ${body.data.viewer.name}`);
      else show("refused", `Key refused (HTTP ${response.status})`);
    } catch (err) {
      if (asked === generation) show("refused", `The service did not answer: ${err.message}`);
    }
  }

  const root = ReactDOM.createRoot(document.getElementById("graphiql"));

  // GraphiQL starts afresh for a new key (schema, result pane); its editor tabs are
  // kept in local storage, so the queries stay.
  function render(key) {
    generation += 1;
    root.render(
      React.createElement(GraphiQL, {
        key: String(generation),
        fetcher: fetcherFor(key),
        defaultQuery: FIRST_QUERY,
        defaultEditorToolsVisibility: false,
      }),
    );
    check(key);
  }

  const input = document.getElementById("key-input");
  document.getElementById("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = input.value.trim();
    storeKey(key);
    render(key);
  });
  document.getElementById("key-forget").addEventListener("click", () => {
    input.value = "";
    storeKey("");
    render("");
  });

  const stored = readKey();
  input.value = stored;
  render(stored);
})();
