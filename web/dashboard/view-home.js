// The view at #/: nothing picked yet.

import { $, h } from "./dom.js";

export class HomeView {
  constructor() {
    $("#main").replaceChildren(
      h(
        "section",
        { class: "placeholder" },
        h("h1", {}, "Live campaigns"),
        h("p", { class: "muted" }, "Pick a campaign to watch its numbers move, or start a new one."),
        h("a", { class: "btn btn-primary", href: "#/new" }, "New campaign"),
      ),
    );
  }

  destroy() {}
}
