"""Admin request bodies: JSON or YAML documents, and the options a write carries beside its value
(comment, preview, effective time, checks)."""

from __future__ import annotations

import datetime as dt
import json
import math
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from litestar import Request, Response

from dutyline.api.body import non_finite_place
from dutyline.errors import Invalid, Issue
from dutyline.orgmodel.source import MAX_SCALARS, SourceMap, check_numbers, format_path, load_yaml
from dutyline.orgmodel.windows import when

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
REQUEST = "<request>"


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_body(request: Request) -> tuple[Any, SourceMap | None]:
    """The body as plain data, and its source map (so that errors name lines, in YAML and JSON); 400 if neither.

    Neither may hold a NaN or an infinite number (JSON's `NaN`, `Infinity`, `1e999`; YAML's `.nan`, `.inf`):
    400 naming the field and its line. YAML aliases are bounded by DUTYLINE_MAX_YAML_SCALARS."""
    kind = media_type(request)
    raw = await request.body()
    if kind in YAML_TYPES:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Invalid("the body is not UTF-8", [Issue(REQUEST, 0, "", f"not UTF-8 text: {exc.reason}")]) from None
        data, source = load_yaml(text, REQUEST, _max_scalars(request))
        _shallow(data, source)
        check_numbers(data, source)
        return data, source
    if kind != "application/json":
        raise Invalid(
            f"Content-Type must be application/json or application/yaml, not {kind or 'missing'}",
            [Issue(REQUEST, 0, "Content-Type", "must be application/json or application/yaml")],
        )
    # The lines of a JSON body are found only if it is invalid (`SourceMap.json_text`).
    return _shallow(decode_json(raw or b"null")), SourceMap(REQUEST, json_text=raw.decode("utf-8", "replace"))


def _max_scalars(request: Request) -> int:
    runtime = getattr(request.app.state, "runtime", None)
    return runtime.settings.max_yaml_scalars if runtime is not None else MAX_SCALARS


class _NonFinite(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _NonFinite(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NonFinite(text)
    return value


def decode_json(raw: bytes | str) -> Any:
    """A JSON admin body as plain data: a key given twice, `NaN`, `Infinity` or a number too big for a float
    (which Python's json would read as NaN or inf) is a 400 naming the field and its line and column."""
    try:
        return json.loads(raw, object_pairs_hook=_unique_keys, parse_constant=_no_constant, parse_float=_finite_float)
    except _NonFinite as exc:
        path, line, column = non_finite_place(raw)
        where = f"line {line} column {column}" if line else "the body"
        field_ = f" ({path})" if path else ""
        message = f"{exc} at {where}{field_}: JSON has no NaN or infinite numbers; give a finite number"
        raise Invalid(f"malformed JSON: {message}", [Issue(REQUEST, line, path, message)]) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid(f"malformed JSON: {exc}", [Issue(REQUEST, 0, "", f"malformed JSON: {exc}")]) from None
    except RecursionError:
        raise Invalid(
            "malformed JSON: nested too deeply", [Issue(REQUEST, 0, "", f"nested deeper than {MAX_DEPTH}")]
        ) from None


# No document or rule pack comes near this; it keeps validation and diffs away from the recursion limit.
MAX_DEPTH = 64


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object; a key given twice is an error, as in YAML (not silently the last one)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _shallow(data: Any, source: SourceMap | None = None) -> Any:
    """`data` if it nests at most MAX_DEPTH deep; `Invalid` naming the place otherwise (checked without recursion)."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, (dict, list)):
            if len(path) >= MAX_DEPTH:
                message = f"nested deeper than {MAX_DEPTH} levels"
                issue = source.issue(path, message) if source else Issue(REQUEST, 0, format_path(path), message)
                raise Invalid(f"the body is {message}", [issue])
            children = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend((child, (*path, key)) for key, child in children)
    return data


def wants_yaml(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return any(t in accept for t in YAML_TYPES) or request.query_params.get("format") == "yaml"


def yaml_response(text: str, filename: str | None = None, headers: dict[str, str] | None = None) -> Response[bytes]:
    extra = dict(headers or {})
    if filename:
        extra["Content-Disposition"] = f'attachment; filename="{filename}"'
    return Response(text.encode(), media_type="application/yaml; charset=utf-8", headers=extra)


@dataclass(slots=True)
class WriteOptions:
    """What a write says besides the new value."""

    comment: str = ""
    preview: bool = False
    effective_at: dt.datetime | None = None
    checks: list[Any] = field(default_factory=list)
    at: str | None = None


def write_options(request: Request, body: Any) -> tuple[Any, WriteOptions]:
    """Take the options out of a write: the `X-Change-Comment` and `X-Effective-At` headers, `?preview=true`,
    or `comment`, `preview`, `effective_at` (and, with preview, `checks` and `at`) in a JSON object body.
    Returns the body without them."""
    options = WriteOptions()
    header = request.headers.get("x-change-comment")
    if header:
        options.comment = urllib.parse.unquote(header)
    options.preview = request.query_params.get("preview", "").lower() in ("1", "true", "yes")
    effective = request.headers.get("x-effective-at")
    if isinstance(body, dict):
        body = dict(body)
        if isinstance(body.get("comment"), str):
            options.comment = body.pop("comment")
        if "preview" in body:
            options.preview = body.pop("preview") is True or options.preview
        if "effective_at" in body:
            effective = body.pop("effective_at")
        if options.preview:
            options.checks = body.pop("checks", None) or []
            options.at = body.pop("at", None)
    if len(options.comment) > 4000:
        raise Invalid("comment: at most 4000 characters", [Issue(REQUEST, 0, "comment", "at most 4000 characters")])
    if effective:
        options.effective_at = when(str(effective), None, "effective_at", "an ISO date-time")
    return body, options
