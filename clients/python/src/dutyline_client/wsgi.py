"""Enforcement for WSGI applications: Flask and Django (docs/clients.md). Each imports its framework only when used,
so that the client installs without either.

- Flask: `protect_flask(app, enforcer)`: a `before_request` hook enforcing the `@requires` of the routed view; the
  allowing `CheckResult` is `flask.g.dutyline`.
- Django: `"dutyline_client.wsgi.DjangoMiddleware"` in `MIDDLEWARE`, the `Enforcer` in the setting
  `DUTYLINE_ENFORCER`; it enforces the `@requires` of the resolved view (`process_view`), and leaves the allowing
  `CheckResult` in `request.dutyline`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dutyline_client.enforce import Enforcer, Incoming, Refusal, requirement_of


def protect_flask(app: Any, enforcer: Enforcer) -> None:
    """Enforce every marked view of a Flask `app` (blueprints included)."""
    import flask

    def enforce() -> flask.Response | None:
        request = flask.request
        requirement = requirement_of(app.view_functions.get(request.endpoint or ""))
        if requirement is None:
            return None
        incoming = Incoming(
            path_params=request.view_args or {},
            query={name: request.args[name] for name in request.args},
            headers={name.lower(): value for name, value in request.headers.items()},
            body=request.get_data(cache=True) if requirement.reads_body else b"",
            native=request,
        )
        outcome = enforcer.enforce(requirement, incoming)
        if isinstance(outcome, Refusal):
            return flask.Response(outcome.encode(), status=outcome.status, mimetype="application/json")
        flask.g.dutyline = outcome
        return None

    app.before_request(enforce)


class DjangoMiddleware:
    """Django middleware enforcing the `@requires` of the view a request resolves to."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        return self.get_response(request)

    def process_view(
        self, request: Any, view: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        from django.conf import settings
        from django.http import HttpResponse

        requirement = requirement_of(view, getattr(view, "view_class", None))
        if requirement is None:
            return None
        enforcer: Enforcer = settings.DUTYLINE_ENFORCER
        incoming = Incoming(
            path_params=kwargs,
            query={name: request.GET.getlist(name)[0] for name in request.GET},  # the first, as elsewhere
            headers={name.lower(): value for name, value in request.headers.items()},
            body=request.body if requirement.reads_body else b"",
            native=request,
        )
        outcome = enforcer.enforce(requirement, incoming)
        if isinstance(outcome, Refusal):
            return HttpResponse(outcome.encode(), status=outcome.status, content_type="application/json")
        request.dutyline = outcome
        return None
