"""The Content-Security-Policy of the service's own pages (the dashboard at `/`,
GraphiQL at `/graphql`): every script, style, font and connection from this origin,
no inline script, no framing."""

from __future__ import annotations

import re

# A Host header safe to repeat in the policy (a name or an IP, with a port)
_HOST = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
_DEFAULTS = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def page_policy(host: str, **sources: str) -> str:
    """The policy for a page answered to a request with this `Host` header. `sources`
    replace or add directives where a page needs more than its own files, named with
    underscores: `font_src="'self' data:"`."""
    directives = _DEFAULTS | {name.replace("_", "-"): value for name, value in sources.items()}
    if _HOST.fullmatch(host):
        # 'self' covers same-origin WebSockets in CSP 3; older browsers need them named
        directives["connect-src"] += f" ws://{host} wss://{host}"
    return "; ".join(f"{name} {value}" for name, value in directives.items())
