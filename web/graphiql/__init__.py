"""GraphiQL, served by the service itself: the page (`GET /graphql` from a browser,
`Accept: text/html`) and its files under `/static/graphiql/`. Nothing comes from a
CDN, so it works offline and behind a closed firewall.

- `index.html`, `page.js`, `page.css`: the page, the API key bar, the fetcher (HTTP
  and graphql-transport-ws on this origin).
- `vendor/`: GraphiQL, React and ReactDOM as their npm packages ship them (prebuilt
  UMD bundles, byte for byte), at the versions pinned in `npm/package-lock.json`;
  `vendor/manifest.json` has each one's sha256. `scripts/build-graphiql` rebuilds them.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from web.csp import page_policy

DIR = Path(__file__).resolve().parent
PAGE = DIR / "index.html"
MANIFEST = DIR / "vendor" / "manifest.json"
#: where the page's scripts and styles are served (index.html names them under it)
STATIC_PATH = "/static/graphiql"

#: GraphiQL's dialogs (Radix's scroll lock) insert a <style> element when they open:
#: it carries the page's nonce (read from `__webpack_nonce__`, which page.js sets), so
#: no 'unsafe-inline'. CodeMirror's jump-to-line bar (Alt-G) is markup with two `style`
#: attributes: exactly those two values are allowed, by hash. Everything else GraphiQL
#: styles goes through the CSSOM, which CSP does not restrict.
STYLES = "'self' 'nonce-{nonce}'"
STYLE_ATTRIBUTES = ("width: 10em", "color: #888")
#: its fonts are data: URIs inside graphiql.min.css
FONTS = "'self' data:"


def _hashes(values: tuple[str, ...]) -> str:
    digests = (base64.b64encode(hashlib.sha256(v.encode()).digest()).decode() for v in values)
    return " ".join(["'unsafe-hashes'", *(f"'sha256-{d}'" for d in digests)])


_NONCE = "{{nonce}}"
_TEMPLATE = PAGE.read_text()


def page(request: Request) -> Response:
    """The GraphiQL page, public like the dashboard's: the key is asked for in it.
    Each answer has its own style nonce, so it is never cached."""
    nonce = secrets.token_urlsafe(18)
    policy = page_policy(
        request.headers.get("host", ""),
        style_src=STYLES.format(nonce=nonce),
        style_src_attr=_hashes(STYLE_ATTRIBUTES),
        font_src=FONTS,
    )
    return HTMLResponse(
        _TEMPLATE.replace(_NONCE, nonce),
        headers={"Cache-Control": "no-store", "Content-Security-Policy": policy, "X-Content-Type-Options": "nosniff"},
    )


class GraphiQLFiles(StaticFiles):
    """The page's scripts and styles: only .js and .css files (not this package's
    sources, licences or lock file), revalidated on every load (ETag)."""

    SERVED = (".js", ".css")

    async def get_response(self, path: str, scope: Scope) -> Response:
        if not path.endswith(self.SERVED):
            raise HTTPException(status_code=404)
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def files() -> Mount:
    """The route of the page's files, for the app's routes."""
    return Mount(STATIC_PATH, GraphiQLFiles(directory=DIR), name="graphiql")
