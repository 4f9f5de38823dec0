"""The admin API for organisations: documents, their entities and rule packs, versions, previews, as-of.

Thin: each handler authenticates (`admin_caller`), asks the admin policy (`access.require`), and hands the
use case to `services.editing` or `services.versions`. See docs/admin-api.md.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, patch, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, Parameter

from dutyline.api.auth import admin_caller, json_response
from dutyline.api.check import CheckResource, CheckSubject, Text
from dutyline.api.decision_log import SIMULATED, Simulated
from dutyline.api.guards import requires
from dutyline.api.openapi import ADMIN, YAML, answers, header, query, reads, takes
from dutyline.api.paging import LogPosition, PageTokens, log_cursor, log_position
from dutyline.api.payloads import (
    YAML_TYPES,
    WriteOptions,
    media_type,
    parse_time,
    read_body,
    wants_yaml,
    write_options,
    yaml_response,
)
from dutyline.api.schemas import (
    Applied,
    Change,
    ChangeOptions,
    DocumentAsOf,
    Entities,
    NewRulePack,
    OrgDecisions,
    OrgDocument,
    Orgs,
    OrgSettings,
    OrgSummary,
    Packs,
    Preview,
    Texts,
    Version,
    VersionDiff,
    Versions,
)
from dutyline.engines.admin_policy import ALL, AdminPermission
from dutyline.engines.decision import Check
from dutyline.errors import Invalid, Issue, NotFound
from dutyline.orgmodel.diff import ORG_COLLECTIONS
from dutyline.orgmodel.document import (
    Department,
    Organisation,
    Person,
    Post,
    ResourceGroup,
    ResourceType,
    SeparationOfDuties,
)
from dutyline.orgmodel.windows import instant, zone
from dutyline.rulemodel.document import RulePack
from dutyline.runtime import Runtime
from dutyline.services.access import Caller
from dutyline.services.editing import Edit, Editor, Held, Method, Read, Written, etag_of
from dutyline.services.four_eyes import kind_of
from dutyline.services.log_reader import LogFilter
from dutyline.services.orgs import to_yaml
from dutyline.services.versions import pack_yaml
from dutyline.store import history
from dutyline.store import orgs as org_store

Limit = Annotated[int, Parameter(ge=1, le=1000)]
# A version number: bounded (the columns are 32-bit), so that a huge one is a 400, not a database overflow.
Number = Annotated[int, Parameter(ge=0, le=2**31 - 1)]
TAGS = ["admin: organisations"]

# What a write says besides its value (a JSON object body may carry `comment`, `preview`, `effective_at` too).
COMMENT = header(
    "X-Change-Comment", "Why the change is made (URL-encoded), for the version history and the audit trail"
)
OPTIONS = [
    COMMENT,
    header(
        "X-Effective-At", "Apply at this ISO date-time instead of now: a scheduled change (202)", format="date-time"
    ),
    query("preview", "`true`: answer what the change would do, and store nothing", enum=["true", "false"]),
]
IF_MATCH = header(
    "If-Match", "The ETag of the version the change is based on (`*`: whatever is there now)", required=True
)
RESTORE_IF_MATCH = header("If-Match", "The ETag the current version must have (default `*`)")
# A write: applied (200), previewed (200), scheduled or held for four-eyes approval (202).
WROTE = {200: Applied | Preview, 202: Change}
CREATED = {201: Applied, 200: Preview, 202: Change}
WRITE_ERRORS = (*ADMIN, 404, 409, 412, 413, 428)
ENTITY = (Department, Post, Person, ResourceType, ResourceGroup, SeparationOfDuties)  # a body is one of them


class PreviewCheck(msgspec.Struct):
    subject: CheckSubject
    resource: CheckResource
    action: Text
    context: dict[str, Any] | None = None
    at: str | None = None


class PreviewBody(msgspec.Struct):
    document: dict[str, Any] | None = None
    checks: list[PreviewCheck] = []
    at: str | None = None
    rules: dict[str, dict[str, Any] | None] = {}  # draft rule packs by name (null: the pack deleted)


class NewPack(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=64)]
    pack: dict[str, Any]


class SettingsBody(msgspec.Struct, forbid_unknown_fields=True):
    """The switches to change (one left out stays as it is)."""

    rules_four_eyes: bool | None = None
    org_four_eyes: bool | None = None


def _collection(name: str) -> str:
    if name not in ORG_COLLECTIONS:
        raise NotFound(f"no such collection {name!r}; there are {', '.join(ORG_COLLECTIONS)} and rules")
    return name


def _written(written: Written, status: int = 200) -> Response[bytes]:
    headers = {"X-Policy-Version": str(written.version), "X-Revision": str(written.revision)}
    if written.etag:
        headers["ETag"] = written.etag
    body = Applied(
        written.organisation,
        written.target,
        written.version,
        written.changed,
        written.etag,
        written.value,
        written.version,
        written.revision,
    )
    return json_response(body, status, headers)


def _read_headers(read: Read) -> dict[str, str]:
    """What every read of a document or entity says of its versions: the global policy version now, and the
    revision of the document (the organisation's, or the rule pack's)."""
    return {"ETag": read.etag or "", "X-Policy-Version": str(read.policy_version), "X-Revision": str(read.revision)}


def _checks(runtime: Runtime, org_id: str, raw: list[Any], at: str | None) -> tuple[list[Check], float]:
    """Preview checks as engine checks, times read in the organisation's zone."""
    org = runtime.policies.current.get(org_id)
    tz = zone(org.document.timezone) if org is not None else dt.UTC
    try:
        moment = instant(at, tz) if at else time.time()
        parsed = [msgspec.convert(c, PreviewCheck) if not isinstance(c, PreviewCheck) else c for c in raw]
        checks = [
            Check(
                subject_id=c.subject.id,
                subject_type=c.subject.type,
                subject_properties=c.subject.properties,
                resource_type=c.resource.type,
                resource_id=c.resource.id,
                resource_properties=c.resource.properties,
                action=c.action,
                context=c.context,
                at=instant(c.at, tz) if c.at else moment,
            )
            for c in parsed
        ]
    except msgspec.ValidationError as exc:
        raise Invalid(f"checks: {exc}", [Issue("<request>", 0, "checks", str(exc))]) from None
    except ValueError as exc:
        raise Invalid(f"at: {exc}", [Issue("<request>", 0, "at", "not a date or date-time")]) from None
    return checks, moment


async def _write(
    request: Request,
    state: State,
    org_id: str,
    target: str | Callable[[Any], tuple[str, Any]],
    method: Method,
    status: int = 200,
) -> Response[bytes]:
    """One change to an organisation: authorise, then preview, schedule, hold for four-eyes, or apply.

    `target` is the object changed, or (for a create) a function of the body giving it and the value."""
    runtime, caller = await admin_caller(request, state)
    resource = "rule_pack" if target is _new_pack else kind_of(target) if isinstance(target, str) else "org_chart"
    runtime.access.require(caller, AdminPermission.of(resource, "write"), org_id)
    body, source = (None, None) if method == "delete" else await read_body(request)
    if callable(target):
        target, body = target(body)
        if target.startswith("rules/") and source is not None:  # {name, pack}: the pack's lines from the pack
            source = source.under(("pack",))
    text = (
        await _file_text(request, body)
        if method == "put" and (target == "org" or target.startswith("rules/"))
        else None
    )
    value, options = write_options(request, body)
    edit = Edit(target, method, value, source, text)
    return await _submit(runtime, caller, org_id, edit, request.headers.get("if-match"), options, status)


async def _file_text(request: Request, body: Any) -> str | None:
    """The body's text when it is a YAML file of a whole document and nothing else (no options beside it): kept
    with the version, so that an export gives it back as sent (comments, order)."""
    if media_type(request) not in YAML_TYPES or not isinstance(body, dict) or set(body) & _OPTION_KEYS:
        return None
    return (await request.body()).decode("utf-8")


_OPTION_KEYS = {"comment", "preview", "effective_at", "checks", "at"}


async def _submit(
    runtime: Runtime, caller: Caller, org_id: str, edit: Edit, if_match: str | None, options: WriteOptions, status: int
) -> Response[bytes]:
    """Preview, or hand the change to `Editor.submit`, which applies it, schedules it or holds it for four-eyes."""
    editor = runtime.editor
    if options.preview:
        checks, moment = _checks(runtime, org_id, options.checks, options.at)
        effective = options.effective_at.timestamp() if options.effective_at is not None else None
        return json_response(await asyncio.to_thread(editor.preview, org_id, edit, checks, moment, None, effective))
    result = await asyncio.to_thread(
        editor.submit, org_id, edit, if_match, caller.username, options.comment, options.effective_at
    )
    return _result(result, status)


def _result(result: Written | Held, status: int) -> Response[bytes]:
    return json_response(result.change, 202) if isinstance(result, Held) else _written(result, status)


# --- organisations ----------------------------------------------------------------------------------------


@get(
    "/admin/orgs",
    tags=TAGS,
    summary="Organisations the caller may read",
    responses=answers({200: Orgs}, *ADMIN),
)
async def list_orgs(request: Request, state: State) -> Response[bytes]:
    runtime, caller = await admin_caller(request, state)

    def rows() -> tuple[list[tuple[str, str, str, int, bool, int]], int]:
        with runtime.sessions() as session:
            return history.organisations(session), org_store.latest_version(session)

    found, policy_version = await asyncio.to_thread(rows)
    items = [
        OrgSummary(org_id, Texts(zh, en), version, revision)
        for org_id, zh, en, version, deleted, revision in found
        if not deleted and runtime.access.allowed(caller, AdminPermission.ORGANISATION_READ, org_id)
    ]
    return json_response(Orgs(items, policy_version))


@post(
    "/admin/orgs",
    tags=TAGS,
    summary="Create an organisation (JSON or YAML document)",
    status_code=201,
    responses=answers({201: Applied, 202: Change}, *ADMIN, 409, 413),
    operation_class=takes(Organisation, "OrgDocument", yaml=True, parameters=[COMMENT]),
)
async def create_org(request: Request, state: State) -> Response[bytes]:
    runtime, caller = await admin_caller(request, state)
    runtime.access.require(caller, AdminPermission.ORGANISATION_CREATE, ALL)
    body, source = await read_body(request)
    text = await _file_text(request, body)
    data, options = write_options(request, body)
    result = await asyncio.to_thread(runtime.editor.create_org, data, caller.username, options.comment, source, text)
    return _result(result, 201)


@get(
    "/admin/orgs/{org_id:str}",
    tags=TAGS,
    summary="The whole document (Accept: application/yaml for YAML)",
    responses=answers({200: OrgDocument}, *ADMIN, 404, 409),
    operation_class=reads(yaml_answer="Organisation"),
)
async def get_org(request: Request, state: State, org_id: FromPath[str]) -> Response[bytes]:
    runtime, caller = await admin_caller(request, state)
    runtime.access.require(caller, AdminPermission.ORG_CHART_READ, org_id)
    document, read = await asyncio.to_thread(runtime.editor.document, org_id)
    headers = _read_headers(read)
    if wants_yaml(request):
        return yaml_response(read.source or to_yaml(document), headers=headers)
    return json_response(
        OrgDocument(org_id, read.version, read.etag or "", document, read.revision, read.policy_version),
        headers=headers,
    )


@get(
    "/admin/orgs/{org_id:str}/export",
    tags=TAGS,
    summary="The document as a YAML file (what `dutyline export` writes)",
    responses=answers({200: Organisation}, *ADMIN, 404, 409, media_type=YAML),
    guards=[requires(AdminPermission.ORG_CHART_READ)],
)
async def export_org(org_id: FromPath[str], editor: NamedDependency[Editor]) -> Response[bytes]:
    document, read = await asyncio.to_thread(editor.document, org_id)
    return yaml_response(read.source or to_yaml(document), f"{org_id}.yaml", _read_headers(read))


@put(
    "/admin/orgs/{org_id:str}",
    tags=TAGS,
    summary="Replace the whole document (JSON, or YAML: an import); If-Match",
    responses=answers(WROTE, *WRITE_ERRORS),
    operation_class=takes(Organisation, "OrgDocument", yaml=True, parameters=[*OPTIONS, IF_MATCH]),
)
async def put_org(request: Request, state: State, org_id: FromPath[str]) -> Response[bytes]:
    return await _write(request, state, org_id, "org", "put")


@delete(
    "/admin/orgs/{org_id:str}",
    tags=TAGS,
    summary="Delete an organisation (its history stays); If-Match",
    status_code=200,
    responses=answers(WROTE, *WRITE_ERRORS),
    operation_class=reads(*OPTIONS, IF_MATCH),
)
async def delete_org(request: Request, state: State, org_id: FromPath[str]) -> Response[bytes]:
    runtime, caller = await admin_caller(request, state)
    runtime.access.require(caller, AdminPermission.ORGANISATION_DELETE, org_id)
    _, options = write_options(request, None)
    return await _submit(runtime, caller, org_id, Edit("org", "delete"), request.headers.get("if-match"), options, 200)


@get(
    "/admin/orgs/{org_id:str}/settings",
    tags=TAGS,
    summary="The organisation's admin settings",
    responses=answers({200: OrgSettings}, *ADMIN, 404),
)
async def get_settings(request: Request, state: State, org_id: FromPath[str]) -> Response[bytes]:
    runtime, caller = await admin_caller(request, state)
    runtime.access.require(caller, AdminPermission.ORGANISATION_READ, org_id)
    await asyncio.to_thread(runtime.editor.packs, org_id)  # 404 for an unknown organisation
    now = await asyncio.to_thread(runtime.editor.four_eyes, org_id)
    return json_response(OrgSettings(org_id, now.rules, now.org))


@put(
    "/admin/orgs/{org_id:str}/settings",
    tags=TAGS,
    summary="Change the organisation's admin settings (system admin)",
    responses=answers({200: OrgSettings}, *ADMIN, 404, 413),
    operation_class=takes(SettingsBody, yaml=True),
)
async def put_settings(request: Request, state: State, org_id: FromPath[str]) -> Response[bytes]:
    runtime, caller = await admin_caller(request, state)
    runtime.access.require(caller, AdminPermission.ORGANISATION_CONFIGURE, org_id)
    body, _ = await read_body(request)
    try:
        wanted = msgspec.convert(body, SettingsBody)
    except msgspec.ValidationError as exc:
        where = _path_of(str(exc)) or "rules_four_eyes"
        raise Invalid(str(exc), [Issue("<request>", 0, where, str(exc))]) from None
    if wanted.rules_four_eyes is None and wanted.org_four_eyes is None:
        raise Invalid("give rules_four_eyes or org_four_eyes", [Issue("<request>", 0, "", "nothing to change")])
    now = await asyncio.to_thread(
        runtime.editor.set_four_eyes, org_id, caller.username, wanted.rules_four_eyes, wanted.org_four_eyes
    )
    return json_response(OrgSettings(org_id, now.rules, now.org))


def _path_of(message: str) -> str:
    return message.rsplit("at `$.", 1)[1].rstrip("`") if "at `$." in message else ""


# --- entities: departments, posts, people, resources, groups, separation_of_duties -------------------------


@get(
    "/admin/orgs/{org_id:str}/{collection:str}",
    tags=TAGS,
    summary="All entities of one kind, with their ETags",
    responses=answers({200: Entities}, *ADMIN, 404),
)
async def list_entities(
    request: Request, state: State, org_id: FromPath[str], collection: FromPath[str]
) -> Response[bytes]:
    runtime, caller = await admin_caller(request, state)
    runtime.access.require(caller, AdminPermission.ORG_CHART_READ, org_id)
    items, read = await asyncio.to_thread(runtime.editor.collection, org_id, _collection(collection))
    etags = {i["id"]: etag_of(i) for i in items}
    return json_response(Entities(org_id, read.version, items, etags, read.revision, read.policy_version))


@post(
    "/admin/orgs/{org_id:str}/{collection:str}",
    tags=TAGS,
    summary="Create an entity (409 if its id exists)",
    status_code=201,
    responses=answers(CREATED, *ADMIN, 404, 409, 412, 413),
    operation_class=takes(ENTITY, "Entity", yaml=True, parameters=OPTIONS),
)
async def create_entity(
    request: Request, state: State, org_id: FromPath[str], collection: FromPath[str]
) -> Response[bytes]:
    _collection(collection)

    def new_entity(body: Any) -> tuple[str, Any]:
        ident = body.get("id") if isinstance(body, dict) else None
        if not isinstance(ident, str) or not ident:
            raise Invalid("id: required", [Issue("<request>", 0, "id", "required: the new entity's id")])
        return f"{collection}/{ident}", body

    return await _write(request, state, org_id, new_entity, "create", 201)


@get(
    "/admin/orgs/{org_id:str}/{collection:str}/{ident:str}",
    tags=TAGS,
    summary="One entity, with its ETag",
    responses=answers({200: dict[str, Any]}, *ADMIN, 404),
)
async def get_entity(
    request: Request, state: State, org_id: FromPath[str], collection: FromPath[str], ident: FromPath[str]
) -> Response[bytes]:
    runtime, caller = await admin_caller(request, state)
    runtime.access.require(caller, AdminPermission.ORG_CHART_READ, org_id)
    read = await asyncio.to_thread(runtime.editor.current, org_id, f"{_collection(collection)}/{ident}")
    return json_response(read.value, headers=_read_headers(read))


@put(
    "/admin/orgs/{org_id:str}/{collection:str}/{ident:str}",
    tags=TAGS,
    summary="Replace an entity; If-Match",
    responses=answers(WROTE, *WRITE_ERRORS),
    operation_class=takes(ENTITY, "Entity", yaml=True, parameters=[*OPTIONS, IF_MATCH]),
)
async def put_entity(
    request: Request, state: State, org_id: FromPath[str], collection: FromPath[str], ident: FromPath[str]
) -> Response[bytes]:
    return await _write(request, state, org_id, f"{_collection(collection)}/{ident}", "put")


@patch(
    "/admin/orgs/{org_id:str}/{collection:str}/{ident:str}",
    tags=TAGS,
    summary="Change an entity (JSON Merge Patch); If-Match",
    responses=answers(WROTE, *WRITE_ERRORS),
    operation_class=takes(dict[str, Any], "MergePatch", yaml=True, parameters=[*OPTIONS, IF_MATCH]),
)
async def patch_entity(
    request: Request, state: State, org_id: FromPath[str], collection: FromPath[str], ident: FromPath[str]
) -> Response[bytes]:
    return await _write(request, state, org_id, f"{_collection(collection)}/{ident}", "patch")


@delete(
    "/admin/orgs/{org_id:str}/{collection:str}/{ident:str}",
    tags=TAGS,
    summary="Delete an entity; If-Match",
    status_code=200,
    responses=answers(WROTE, *WRITE_ERRORS),
    operation_class=reads(*OPTIONS, IF_MATCH),
)
async def delete_entity(
    request: Request, state: State, org_id: FromPath[str], collection: FromPath[str], ident: FromPath[str]
) -> Response[bytes]:
    return await _write(request, state, org_id, f"{_collection(collection)}/{ident}", "delete")


# --- rule packs ---------------------------------------------------------------------------------------------


@get(
    "/admin/orgs/{org_id:str}/rules",
    tags=TAGS,
    summary="The organisation's rule packs, with their ETags",
    responses=answers({200: Packs}, *ADMIN, 404),
)
async def list_packs(request: Request, state: State, org_id: FromPath[str]) -> Response[bytes]:
    runtime, caller = await admin_caller(request, state)
    runtime.access.require(caller, AdminPermission.RULE_PACK_READ, org_id)
    items, policy_version = await asyncio.to_thread(runtime.editor.packs, org_id)
    return json_response(Packs(org_id, items, policy_version))  # type: ignore[arg-type]


def _new_pack(body: Any) -> tuple[str, Any]:
    """A create's body, {name, pack, comment?}: the target and the pack with the write's options beside it."""
    fields = body if isinstance(body, dict) else {}
    try:
        new = msgspec.convert({"name": fields.get("name"), "pack": fields.get("pack")}, NewPack)
    except msgspec.ValidationError as exc:
        where = "name" if "$.name" in str(exc) else "pack"
        raise Invalid(f"{where}: {exc}", [Issue("<request>", 0, where, str(exc))]) from None
    return f"rules/{new.name}", {**new.pack, **{k: v for k, v in fields.items() if k not in ("name", "pack")}}


@post(
    "/admin/orgs/{org_id:str}/rules",
    tags=TAGS,
    summary="Create a rule pack: {name, pack} (409 if it exists)",
    status_code=201,
    responses=answers(CREATED, *ADMIN, 404, 409, 412, 413),
    operation_class=takes(NewRulePack, yaml=True, parameters=OPTIONS),
)
async def create_pack(request: Request, state: State, org_id: FromPath[str]) -> Response[bytes]:
    return await _write(request, state, org_id, _new_pack, "create", 201)


@get(
    "/admin/orgs/{org_id:str}/rules/{name:str}",
    tags=TAGS,
    summary="One rule pack, with its ETag (Accept: application/yaml)",
    responses=answers({200: RulePack}, *ADMIN, 404),
    operation_class=reads(yaml_answer="RulePack"),
)
async def get_pack(request: Request, state: State, org_id: FromPath[str], name: FromPath[str]) -> Response[bytes]:
    runtime, caller = await admin_caller(request, state)
    runtime.access.require(caller, AdminPermission.RULE_PACK_READ, org_id)
    read = await asyncio.to_thread(runtime.editor.current, org_id, f"rules/{name}")
    headers = _read_headers(read)
    if wants_yaml(request):
        return yaml_response(read.source or pack_yaml(read.value), headers=headers)
    return json_response(read.value, headers=headers)


@put(
    "/admin/orgs/{org_id:str}/rules/{name:str}",
    tags=TAGS,
    summary="Replace a rule pack (JSON or YAML); If-Match",
    responses=answers(WROTE, *WRITE_ERRORS),
    operation_class=takes(RulePack, yaml=True, parameters=[*OPTIONS, IF_MATCH]),
)
async def put_pack(request: Request, state: State, org_id: FromPath[str], name: FromPath[str]) -> Response[bytes]:
    return await _write(request, state, org_id, f"rules/{name}", "put")


@patch(
    "/admin/orgs/{org_id:str}/rules/{name:str}",
    tags=TAGS,
    summary="Change a rule pack (JSON Merge Patch); If-Match",
    responses=answers(WROTE, *WRITE_ERRORS),
    operation_class=takes(dict[str, Any], "MergePatch", yaml=True, parameters=[*OPTIONS, IF_MATCH]),
)
async def patch_pack(request: Request, state: State, org_id: FromPath[str], name: FromPath[str]) -> Response[bytes]:
    return await _write(request, state, org_id, f"rules/{name}", "patch")


@delete(
    "/admin/orgs/{org_id:str}/rules/{name:str}",
    tags=TAGS,
    summary="Delete a rule pack; If-Match",
    status_code=200,
    responses=answers(WROTE, *WRITE_ERRORS),
    operation_class=reads(*OPTIONS, IF_MATCH),
)
async def delete_pack(request: Request, state: State, org_id: FromPath[str], name: FromPath[str]) -> Response[bytes]:
    return await _write(request, state, org_id, f"rules/{name}", "delete")


# --- history, point in time, preview ----------------------------------------------------------------------


@get(
    "/admin/orgs/{org_id:str}/versions",
    tags=TAGS,
    summary="Versions of the document and its rule packs, newest first",
    responses=answers({200: Versions}, *ADMIN, 404),
)
async def list_versions(
    request: Request, state: State, org_id: FromPath[str], limit: Limit = 100, before: FromQuery[Number | None] = None
) -> Response[bytes]:
    runtime, caller = await admin_caller(request, state)
    runtime.access.require(caller, AdminPermission.ORG_CHART_READ, org_id)
    items = await asyncio.to_thread(runtime.versions.history, org_id, limit, before)
    next_before = items[-1]["version"] if len(items) == limit else None
    return json_response(Versions(org_id, items, next_before))  # type: ignore[arg-type]


@get(
    "/admin/orgs/{org_id:str}/versions/{number:int}",
    tags=TAGS,
    summary="One version, with its document",
    responses=answers({200: Version}, *ADMIN, 404),
)
async def get_version(request: Request, state: State, org_id: FromPath[str], number: Number) -> Response[bytes]:
    runtime, caller = await admin_caller(request, state)
    runtime.access.require(caller, AdminPermission.ORG_CHART_READ, org_id)
    return json_response(await asyncio.to_thread(runtime.versions.get, org_id, number))


@get(
    "/admin/orgs/{org_id:str}/versions/{number:int}/diff",
    tags=TAGS,
    summary="What a version changed: unified diff and summary",
    responses=answers({200: VersionDiff}, *ADMIN, 404),
)
async def diff_version(request: Request, state: State, org_id: FromPath[str], number: Number) -> Response[bytes]:
    runtime, caller = await admin_caller(request, state)
    runtime.access.require(caller, AdminPermission.ORG_CHART_READ, org_id)
    return json_response(await asyncio.to_thread(runtime.versions.diff, org_id, number))


@post(
    "/admin/orgs/{org_id:str}/versions/{number:int}/restore",
    tags=TAGS,
    summary="A new version equal to this one",
    status_code=200,
    responses=answers(WROTE, *WRITE_ERRORS),
    operation_class=takes(ChangeOptions, required=False, yaml=True, parameters=[*OPTIONS, RESTORE_IF_MATCH]),
)
async def restore_version(request: Request, state: State, org_id: FromPath[str], number: Number) -> Response[bytes]:
    runtime, caller = await admin_caller(request, state)
    runtime.access.require(caller, AdminPermission.ORG_CHART_READ, org_id)
    edit = await asyncio.to_thread(runtime.versions.restore_edit, org_id, number)
    runtime.access.require(caller, AdminPermission.of(kind_of(edit.target), "write"), org_id)
    body = None
    if (await request.body()).strip():
        body, _ = await read_body(request)
    _, options = write_options(request, body)
    if not options.comment:
        options.comment = f"restore version {number}"
    if_match = request.headers.get("if-match") or "*"  # a restore replaces whatever is there unless told otherwise
    return await _submit(runtime, caller, org_id, edit, if_match, options, 200)


@get(
    "/admin/orgs/{org_id:str}/as-of",
    tags=TAGS,
    summary="The document in force at a moment",
    responses=answers({200: DocumentAsOf}, *ADMIN, 404),
)
async def as_of(
    request: Request,
    state: State,
    org_id: FromPath[str],
    at: Annotated[str, Parameter(description="ISO date-time (UTC without an offset)")],
) -> Response[bytes]:
    runtime, caller = await admin_caller(request, state)
    runtime.access.require(caller, AdminPermission.ORG_CHART_READ, org_id)
    return json_response(await asyncio.to_thread(runtime.versions.as_of, org_id, parse_time("at", at)))


@post(
    "/admin/orgs/{org_id:str}/preview",
    tags=TAGS,
    summary="What a proposed document would change (nothing stored)",
    status_code=200,
    responses=answers({200: Preview}, *ADMIN, 404, 413),
    operation_class=takes(PreviewBody, yaml=True),
)
async def preview(request: Request, state: State, org_id: FromPath[str]) -> Response[bytes]:
    runtime, caller = await admin_caller(request, state)
    runtime.access.require(caller, AdminPermission.ORG_CHART_READ, org_id)
    body, _ = await read_body(request)
    try:
        wanted = msgspec.convert(body, PreviewBody)
    except msgspec.ValidationError as exc:
        raise Invalid(str(exc), [Issue("<request>", 0, "", str(exc))]) from None
    if wanted.rules:
        runtime.access.require(caller, AdminPermission.RULE_PACK_READ, org_id)
    edit = Edit("org", "delete") if wanted.document is None else Edit("org", "put", wanted.document)
    checks, moment = _checks(runtime, org_id, list(wanted.checks), wanted.at)
    return json_response(await asyncio.to_thread(runtime.editor.preview, org_id, edit, checks, moment, wanted.rules))


@get(
    "/admin/orgs/{org_id:str}/decisions",
    tags=TAGS,
    summary="The organisation's decision log, newest first (auditors)",
    responses=answers({200: OrgDecisions}, *ADMIN, 404),
)
async def org_decisions(
    request: Request,
    state: State,
    org_id: FromPath[str],
    limit: Limit = 100,
    page_token: FromQuery[str | None] = None,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    subject: FromQuery[str | None] = None,
    simulated: Annotated[Simulated, Parameter(description=SIMULATED)] = "exclude",
) -> Response[bytes]:
    runtime, caller = await admin_caller(request, state)
    runtime.access.require(caller, AdminPermission.DECISION_LOG_READ, org_id)
    where = LogFilter(
        organisation=org_id,
        subject=subject,
        since=parse_time("since", since) if since else None,
        until=parse_time("until", until) if until else None,
        simulated=simulated,
    )

    tokens = PageTokens(
        runtime.page_key, "/admin/orgs/{org}/decisions", where, "page_token", caller.reach.holder.encode()
    )
    position = tokens.read(page_token, LogPosition)
    after = log_cursor(position) if position is not None else None

    def read() -> OrgDecisions:
        page = runtime.log_reader.summaries(where, limit, after)
        next_token = tokens.issue(log_position(page.following)) if page.following is not None else ""
        return OrgDecisions(page.items, next_token)

    return json_response(await asyncio.to_thread(read))


ROUTES = [
    list_orgs,
    create_org,
    get_org,
    export_org,
    put_org,
    delete_org,
    get_settings,
    put_settings,
    list_packs,
    create_pack,
    get_pack,
    put_pack,
    patch_pack,
    delete_pack,
    list_versions,
    get_version,
    diff_version,
    restore_version,
    as_of,
    preview,
    org_decisions,
    list_entities,
    create_entity,
    get_entity,
    put_entity,
    patch_entity,
    delete_entity,
]
