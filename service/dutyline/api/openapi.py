"""What the OpenAPI document says about each operation beyond its parameters: the JSON answered at each status
(the success shapes of `api.schemas`, the error shape of `api.errors`), and the body taken by handlers that read
their bodies themselves (`api.body.read_json`, `api.payloads.read_body`) rather than through Litestar's `data`.

Request bodies are msgspec's own JSON Schemas of the structs the handlers decode (`msgspec.json.schema`), so
the document says exactly what the decoder accepts. Each is a component under `components/requestBodies`
holding its nested definitions in its own `$defs` (Litestar writes `components/schemas` itself, from the
response types, and replaces whatever else is put there).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, ClassVar, is_typeddict

import msgspec
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    RequestBody,
    Schema,
)
from litestar.plugins import OpenAPISchemaPlugin
from litestar.typing import FieldDefinition

from dutyline.api import schemas
from dutyline.api.errors import ErrorBody

JSON = "application/json"
YAML = "application/yaml"

ERRORS: dict[int, str] = {
    400: "The request is invalid: a parameter, the body or a value in it (`issues` names each place).",
    401: "No valid credentials: a bearer token or a console session.",
    403: "The caller may not do this; the message says why.",
    404: "Not found: the message names what.",
    409: "Conflict with the current state (it exists already, or was decided meanwhile).",
    412: "If-Match does not match the object's current ETag: read it again.",
    413: "The body is larger than the server accepts (DUTYLINE_MAX_BODY_BYTES).",
    428: "If-Match is required: send the ETag of the version the change is based on (or `*`).",
    429: "Too many failed logins; retry after Retry-After seconds.",
    503: (
        "The database is unavailable, the policy version asked for is not applied here yet, or the server is at a "
        "bound of concurrent work (checks waiting for a version, big listings); retry (Retry-After)."
    ),
}


# The decision API answers 401 and 403 only when DUTYLINE_REQUIRE_AUTH is on; it reads no database.
DECIDE = (400, 401, 403)
# The admin API: every route authenticates (401), asks the admin policy (403) and reads the database (503).
ADMIN = (400, 401, 403, 503)


def answers(success: dict[int, Any], *errors: int, media_type: str = JSON) -> dict[int, ResponseSpec]:
    """The `responses` of a route: its success shapes by status, and the error shape at each error status."""
    specs = {
        status: ResponseSpec(shape, description=_success(status), media_type=media_type, generate_examples=False)
        for status, shape in success.items()
    }
    for status in errors:
        specs.setdefault(status, ResponseSpec(ErrorBody, description=ERRORS[status], generate_examples=False))
    return specs


def _success(status: int) -> str:
    return {200: "OK", 201: "Created", 202: "Accepted: waiting for approval or for its effective time"}.get(
        status, "OK"
    )


@dataclasses.dataclass(frozen=True)
class Body:
    """A request body: the type the handler decodes (a tuple: any one of these), its component name and the
    media types it comes in."""

    type_: Any
    name: str
    required: bool = True
    media_types: tuple[str, ...] = (JSON,)
    description: str | None = None

    def component(self) -> RequestBody:
        """The body as a `components/requestBodies` entry whose schema keeps its definitions in its own `$defs`."""
        own = f"#/components/requestBodies/{self.name}/content/{JSON.replace('/', '~1')}/schema"
        types = self.type_ if isinstance(self.type_, tuple) else (self.type_,)
        refs, definitions = msgspec.json.schema_components(types, ref_template=f"{own}/$defs/{{name}}")
        schema: dict[str, Any] = refs[0] if len(refs) == 1 else {"anyOf": refs}
        if definitions:
            schema = {**schema, "$defs": definitions}
        content = {JSON: OpenAPIMediaType(schema=schema)}  # type: ignore[arg-type]  # a plain JSON Schema
        for media_type in self.media_types:
            if media_type != JSON:  # the same document in YAML: the JSON one's schema
                content[media_type] = OpenAPIMediaType(schema=Reference(ref=own))
        return RequestBody(content=content, required=self.required, description=self.description)


def takes(
    type_: Any,
    name: str | None = None,
    *,
    required: bool = True,
    yaml: bool = False,
    description: str | None = None,
    parameters: Sequence[Parameter] = (),
) -> type[Operation]:
    """The `operation_class` of a route whose handler reads a body of `type_` itself (JSON, and with `yaml`
    also YAML), and any `parameters` it reads itself: the operation refers to the body's component (see
    `request_bodies`)."""
    body = Body(type_, name or type_.__name__, required, (JSON, YAML) if yaml else (JSON,), description)
    return documented(body, parameters)


def reads(*parameters: Parameter, yaml_answer: str | None = None) -> type[Operation]:
    """The `operation_class` of a route without a body whose handler reads these parameters itself. With
    `yaml_answer` (the name of a schema component), its 200 also comes as that document in YAML, for
    `Accept: application/yaml` or `?format=yaml`."""
    if yaml_answer:
        parameters = (*parameters, query("format", "`yaml`: the document alone, in YAML", enum=["yaml"]))
    return documented(None, parameters, yaml_answer)


def documented(body: Body | None, parameters: Sequence[Parameter], yaml_answer: str | None = None) -> type[Operation]:
    @dataclasses.dataclass
    class DocumentedOperation(Operation):
        documented_body: ClassVar[Body | None] = body

        def __post_init__(self) -> None:
            if body is not None:
                self.request_body = Reference(ref=f"#/components/requestBodies/{body.name}")
            if parameters:
                self.parameters = [*(self.parameters or []), *parameters]
            ok = (self.responses or {}).get("200")
            if yaml_answer and isinstance(ok, OpenAPIResponse) and ok.content is not None:
                ok.content[YAML] = OpenAPIMediaType(schema=Reference(ref=f"#/components/schemas/{yaml_answer}"))

    return DocumentedOperation


def header(name: str, description: str, required: bool = False, **schema: Any) -> Parameter:
    return Parameter(name=name, param_in="header", required=required, description=description, schema=_schema(schema))


def query(name: str, description: str, **schema: Any) -> Parameter:
    return Parameter(name=name, param_in="query", required=False, description=description, schema=_schema(schema))


def _schema(keywords: dict[str, Any]) -> Schema:
    return Schema(type=keywords.pop("type", OpenAPIType.STRING), **keywords)


def request_bodies(handlers: Iterable[Any]) -> dict[str, RequestBody | Reference]:
    """The `components/requestBodies` of the routes among `handlers` (route handlers or controllers) that read
    a body themselves; one component per body, however many routes take it."""
    bodies: dict[str, Body] = {}
    for handler in handlers:
        for route in _route_handlers(handler):
            body = getattr(route.operation_class, "documented_body", None)
            if body is None:
                continue
            if bodies.setdefault(body.name, body).type_ != body.type_:
                raise ValueError(f"two request bodies are called {body.name!r}")
    return {name: bodies[name].component() for name in sorted(bodies)}


def _route_handlers(handler: Any) -> list[HTTPRouteHandler]:
    if isinstance(handler, HTTPRouteHandler):
        return [handler]
    return [h for h in vars(handler).values() if isinstance(h, HTTPRouteHandler)]  # a Controller


class ExactShapes(OpenAPISchemaPlugin):
    """A msgspec struct that forbids unknown fields is documented with `additionalProperties: false`, as
    `msgspec.json.schema` documents it (Litestar's own struct plugin leaves it out); so are the TypedDicts of
    `api.schemas` and Dutyline's dataclasses (msgspec encodes every field of one, and nothing else). Answers
    are made of these, so the document says every key an answer has: a key added to an answer but not to its
    shape makes an answer that does not match the document."""

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        if field_definition.is_union:
            return False
        kind = field_definition.type_
        if field_definition.is_subclass_of(msgspec.Struct):
            return bool(kind.__struct_config__.forbid_unknown_fields)
        if is_typeddict(kind):
            return kind.__module__ == schemas.__name__
        return dataclasses.is_dataclass(kind) and kind.__module__.startswith("dutyline.")

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: Any) -> Schema:
        plugins = (p for p in schema_creator.plugins if p is not self)
        builtin = next(p for p in plugins if schema_creator.plugin_supports_field(p, field_definition))
        schema: Schema = builtin.to_openapi_schema(field_definition, schema_creator)
        schema.additional_properties = False
        schema.properties = {name: _any_of(value) for name, value in (schema.properties or {}).items()}
        if field_definition.is_subclass_of(msgspec.Struct):
            for info in msgspec.structs.fields(field_definition.type_):
                if info.type is Decimal:  # encoded as a JSON number, digit for digit (`decimal_format="number"`)
                    schema.properties[info.encode_name] = Schema(type=OpenAPIType.NUMBER)
        return schema


def _any_of(schema: Schema | Reference) -> Schema | Reference:
    """A union as `anyOf`, as msgspec documents it and decodes it (the first alternative that fits). Litestar
    writes `oneOf`, which no value of `int | float` satisfies when it is an integer (it fits both). `X | UNSET`
    (a field sometimes left out) is X."""
    if not isinstance(schema, Schema):
        return schema
    if schema.one_of:
        schema.any_of, schema.one_of = schema.one_of, None
    if schema.any_of and len(schema.any_of) == 1:
        only = _any_of(schema.any_of[0])
        if isinstance(only, Reference) or schema.description is None:
            return only
        schema.any_of = [only]
        return schema
    if schema.any_of:
        schema.any_of = [_any_of(child) for child in schema.any_of]
    if schema.properties:
        schema.properties = {name: _any_of(value) for name, value in schema.properties.items()}
    if isinstance(schema.items, (Schema, Reference)):
        schema.items = _any_of(schema.items)
    if isinstance(schema.additional_properties, (Schema, Reference)):
        schema.additional_properties = _any_of(schema.additional_properties)
    return schema
