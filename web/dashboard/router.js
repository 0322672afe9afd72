// Hash routing: #/ (home), #/new (new campaign), #/campaigns/<id> (a campaign).

/** The route of a location hash: {name: "home" | "new" | "campaign", id?}. */
export function parseRoute(hash) {
  const path = hash.replace(/^#/, "") || "/";
  const match = path.match(/^\/campaigns\/([^/]+)$/);
  if (match) return { name: "campaign", id: decodeURIComponent(match[1]) };
  return { name: path === "/new" ? "new" : "home" };
}

export const currentRoute = () => parseRoute(location.hash);

export const campaignHref = (id) => `#/campaigns/${encodeURIComponent(id)}`;

export function goToCampaign(id) {
  location.hash = campaignHref(id);
}

export function goHome() {
  location.hash = "#/";
}

/** Calls `onRoute(route)` on every hash change. */
export function watchRoutes(onRoute) {
  window.addEventListener("hashchange", () => onRoute(currentRoute()));
}
