"""Answers checked against the OpenAPI document the app describes: the operation a request went to, whether it
declares the status and content type, and whether the body (JSON or YAML) matches the schema declared for it."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from schemathesis.core.deserialization import deserialize_yaml

from dutyline.app import create_app
from dutyline.settings import Settings


@functools.cache
def document() -> dict[str, Any]:
    """The app's OpenAPI document, built in-process (no database)."""
    return create_app(Settings(database_url="sqlite://", seed_dir=None)).openapi_schema.to_schema()


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # the document's path template
    pattern: re.Pattern[str]
    literal: int  # characters outside parameters: the most specific template wins, as in routing

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


@functools.cache
def _routes() -> list[Route]:
    parameter = re.compile(r"\{[^}]+\}")
    return [
        Route(method.upper(), path, re.compile("^" + parameter.sub("[^/]+", path) + "$"), len(parameter.sub("", path)))
        for path, operations in document()["paths"].items()
        for method in operations
    ]


def route_of(method: str, path: str) -> Route | None:
    """The documented operation a request goes to (None: not a documented path and method)."""
    candidates = [r for r in _routes() if r.method == method and r.pattern.match(path)]
    return max(candidates, key=lambda r: r.literal) if candidates else None


@functools.cache
def _registry() -> Registry:
    return Registry().with_resource("urn:dutyline:openapi", Resource(contents=document(), specification=DRAFT202012))


def pointer(*parts: str) -> str:
    return "urn:dutyline:openapi#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def validator(ref: str) -> jsonschema.Draft202012Validator:
    """A validator of the document's schema at `ref` (a `pointer`), with every `$ref` resolved in the document."""
    return jsonschema.Draft202012Validator({"$ref": ref}, registry=_registry())


def problems(method: str, path: str, status: int, content_type: str, body: bytes) -> list[str]:
    """What is wrong with an answer by the document (empty: it matches, or the path is not documented)."""
    route = route_of(method, path)
    if route is None:
        return []
    operation = document()["paths"][route.path][route.method.lower()]
    declared = operation["responses"].get(str(status))
    where = f"{route.label} answered {status}"
    if declared is None:
        return [f"{where}, which the document does not declare (it declares {', '.join(operation['responses'])})"]
    media_type = content_type.split(";", 1)[0].strip().lower()
    content = declared.get("content") or {}
    if media_type not in content:
        return [f"{where} as {media_type or 'nothing'}, which the document does not declare ({', '.join(content)})"]
    if media_type == "application/json":
        data = json.loads(body)
    elif media_type == "application/yaml":
        data = deserialize_yaml(body)  # as schemathesis reads YAML: dates stay text
    else:
        return []
    schema = pointer(
        "paths", route.path, route.method.lower(), "responses", str(status), "content", media_type, "schema"
    )
    check = validator(schema)
    return [
        f"{where}: {'/'.join(map(str, error.absolute_path)) or '(the body)'}: {error.message[:500]}"
        for error in check.iter_errors(data)
    ]
