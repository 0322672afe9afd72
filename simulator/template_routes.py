"""The HTTP side of templates: Meta's listing and the simulator's control routes.

Cloud API: `GET /{version}/{waba_id}/message_templates` (engine.handle_templates). Control,
under `/_simulator`: `GET templates` (every WABA's), `GET`/`POST templates/{waba_id}`
(list, add one), `GET`/`DELETE templates/{waba_id}/{name}/{language}` and
`POST templates/{waba_id}/{name}/{language}/status` (a status change, as Meta makes one;
both post a signed `message_template_status_update` webhook unless told not to).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulator.engine import Simulator
from simulator.numbers import Waba
from simulator.templates import EVENTS, STATUSES, Template, TemplateConflict


def _json(data: object, status: int = 200) -> Response:
    return Response(json.dumps(data, separators=(",", ":")), status, media_type="application/json")


def graph_listing(simulator: Simulator) -> Route:
    """`GET /{version}/{waba_id}/message_templates`, the token as a Bearer header or an
    `access_token` query parameter (as Graph takes it)."""

    async def listing(request: Request) -> Response:
        authorization = request.headers.get("authorization")
        token = request.query_params.get("access_token")
        if token and not authorization:
            authorization = f"Bearer {token}"
        params = {k: v for k, v in request.query_params.items() if k != "access_token"}
        base = request.url.remove_query_params(["after", "before", "limit", "access_token"])

        def link(query: dict[str, str]) -> str:
            return str(base.include_query_params(**query))

        answer = simulator.handle_templates(request.path_params["waba_id"], authorization, params, link)
        return Response(answer.body, answer.status, media_type="application/json")

    return Route("/{version}/{waba_id}/message_templates", listing, methods=["GET"])


def control_routes(simulator: Simulator) -> list[Route]:
    """The `/_simulator/templates...` routes (to mount under `/_simulator`)."""

    def waba_of(request: Request) -> Waba | Response:
        waba_id = request.path_params["waba_id"]
        waba = simulator.numbers.waba(waba_id)
        if waba is None:
            return _json({"error": f"waba_id {waba_id} is not a WABA of this simulator (register a number in it)"}, 404)
        return waba

    def template_of(request: Request) -> tuple[Waba, Template] | Response:
        waba = waba_of(request)
        if isinstance(waba, Response):
            return waba
        name, language = request.path_params["name"], request.path_params["language"]
        found = waba.templates.get(name, language)
        if found is None:
            return _json({"error": f"WABA {waba.id} has no template {name} in {language}"}, 404)
        return waba, found

    async def body_of(request: Request) -> dict[str, Any] | Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _json({"error": "the body must be a JSON object"}, 400)
        return body

    async def every(request: Request) -> Response:
        """Every WABA's templates."""
        wabas = {n.waba_id for n in simulator.numbers}
        found = (simulator.numbers.waba(w) for w in sorted(wabas))
        return _json({"templates": [t.to_json() for waba in found if waba for t in waba.templates]})

    async def of_waba(request: Request) -> Response:
        """`GET`: one WABA's templates. `POST` a template (Meta's shape: name, language,
        category, components or body, and optionally status, parameter_format, id): 201
        when new, 200 when the same one was there, 400 naming a bad field, 409 when
        another one has that name and language."""
        waba = waba_of(request)
        if isinstance(waba, Response):
            return waba
        if request.method == "GET":
            return _json({"waba_id": waba.id, "templates": [t.to_json() for t in waba.templates]})
        body = await body_of(request)
        if isinstance(body, Response):
            return body
        try:
            template = Template.from_json(body, waba.id)
            if template.waba_id != waba.id:
                raise ValueError(f"waba_id {template.waba_id} is not the WABA of this path ({waba.id})")
            created = waba.templates.add(template)
        except TemplateConflict as exc:
            return _json({"error": str(exc)}, 409)
        except ValueError as exc:
            return _json({"error": str(exc)}, 400)
        return _json({"created": created, "template": template.to_json()}, 201 if created else 200)

    async def one(request: Request) -> Response:
        """`GET` one template; `DELETE` it (sends of it then answer 132001), posting a
        DELETED webhook unless `?webhook=false`."""
        found = template_of(request)
        if isinstance(found, Response):
            return found
        waba, template = found
        if request.method == "GET":
            return _json(template.to_json())
        post = request.query_params.get("webhook", "true").lower() not in ("false", "0", "no")
        removed = simulator.templates.remove(waba, template.name, template.language, post=post)
        assert removed is not None
        return _json({"removed": removed[0].to_json(), "posted": removed[1]})

    async def status(request: Request) -> Response:
        """`POST {status, reason?, event?, other_info?: {title, description}, webhook?: true}`:
        the template's new status (sends refuse anything but APPROVED from now on); a
        `message_template_status_update` webhook with `event` (default: the status),
        `reason` (default NONE) and `other_info` (default: Meta's for a pause or an
        unpause) goes to the receiver unless `webhook` is false."""
        found = template_of(request)
        if isinstance(found, Response):
            return found
        waba, template = found
        body = await body_of(request)
        if isinstance(body, Response):
            return body
        new, event = body.get("status"), body.get("event", body.get("status"))
        if new not in STATUSES:
            return _json({"error": f"status must be one of {', '.join(STATUSES)}"}, 400)
        if event not in EVENTS:
            return _json({"error": f"event must be one of {', '.join(EVENTS)}"}, 400)
        reason = body.get("reason", "NONE")
        if reason is not None and not isinstance(reason, str):
            return _json({"error": "reason must be a string or null"}, 400)
        info = body.get("other_info")
        if info is not None and not (
            isinstance(info, dict) and all(isinstance(info.get(k), str) for k in ("title", "description"))
        ):
            return _json({"error": "other_info must be an object with title and description strings"}, 400)
        post = body.get("webhook", True) is not False
        desk = simulator.templates
        changed = desk.change_status(waba, template.name, template.language, new, reason, info, event, post)
        assert changed is not None
        return _json({"template": changed[0].to_json(), "event": event, "posted": changed[1]})

    return [
        Route("/templates", every, methods=["GET"]),
        Route("/templates/{waba_id}", of_waba, methods=["GET", "POST"]),
        Route("/templates/{waba_id}/{name}/{language}", one, methods=["GET", "DELETE"]),
        Route("/templates/{waba_id}/{name}/{language}/status", status, methods=["POST"]),
    ]
