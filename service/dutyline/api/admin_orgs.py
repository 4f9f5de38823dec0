"""The admin API for organisations: documents, their entities and rule packs, versions, previews, as-of.

One controller per resource: documents and settings, entities, rule packs, history. A route's guard says which
permission it needs in the organisation of its path (`api.guards.requires`); the handler reads the body and
hands the use case to `services.editing` or `services.versions`. See docs/admin-api.md.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, Parameter

from dutyline.api.auth import json_response
from dutyline.api.check import CheckResource, CheckSubject, Text
from dutyline.api.decision_log import SIMULATED, Simulated
from dutyline.api.guards import requires
from dutyline.api.openapi import ADMIN, YAML, answers, header, query, reads, takes
from dutyline.api.paging import LogPosition, PageTokens, log_cursor, log_position
from dutyline.api.payloads import (
    YAML_TYPES,
    WriteOptions,
    media_type,
    read_body,
    wants_yaml,
    write_options,
    yaml_response,
)
from dutyline.api.schemas import (
    Applied,
    ChangeOptions,
    DocumentAsOf,
    Entities,
    NewRulePack,
    OrgDecisions,
    OrgDocument,
    OrgSettings,
    Packs,
    Version,
    Versions,
)
from dutyline.engines.admin_policy import AdminPermission
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
from dutyline.orgmodel.windows import moment, when
from dutyline.rulemodel.document import RulePack
from dutyline.runtime import Runtime
from dutyline.services.access import AccessService, Caller
from dutyline.services.editing import Change, Edit, Editor, Held, Method, Preview, Read, Written, etag_of
from dutyline.services.four_eyes import kind_of
from dutyline.services.log_reader import LogFilter
from dutyline.services.orgs import to_yaml
from dutyline.services.policies import PolicyService
from dutyline.services.versions import Orgs, VersionDiff, pack_yaml
from dutyline.services.versions import Versions as VersionHistory

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


def _checks(policies: PolicyService, org_id: str, raw: list[Any], at: str | None) -> tuple[list[Check], float]:
    """Preview checks as engine checks, times read in the organisation's zone."""
    org = policies.current.get(org_id)
    tz = org.document.timezone if org is not None else None
    instant = moment(at, tz) if at else time.time()
    try:
        parsed = [msgspec.convert(c, PreviewCheck) if not isinstance(c, PreviewCheck) else c for c in raw]
    except msgspec.ValidationError as exc:
        raise Invalid(f"checks: {exc}", [Issue("<request>", 0, "checks", str(exc))]) from None
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
            at=moment(c.at, tz, f"checks[{i}].at") if c.at else instant,
        )
        for i, c in enumerate(parsed)
    ]
    return checks, instant


async def _write(
    request: Request,
    writing: Writing,
    org_id: str,
    target: str | Callable[[Any], tuple[str, Any]],
    method: Method,
    status: int = 200,
) -> Response[bytes]:
    """One change to an organisation (the route's guard has authorised it): preview, schedule, hold for four-eyes,
    or apply. `target` is the object changed, or (for a create) a function of the body giving it and the value."""
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
    return await _submit(writing, org_id, edit, request.headers.get("if-match"), options, status)


async def _file_text(request: Request, body: Any) -> str | None:
    """The body's text when it is a YAML file of a whole document and nothing else (no options beside it): kept
    with the version, so that an export gives it back as sent (comments, order)."""
    if media_type(request) not in YAML_TYPES or not isinstance(body, dict) or set(body) & _OPTION_KEYS:
        return None
    return (await request.body()).decode("utf-8")


_OPTION_KEYS = {"comment", "preview", "effective_at", "checks", "at"}


async def _submit(
    writing: Writing,
    org_id: str,
    edit: Edit,
    if_match: str | None,
    options: WriteOptions,
    status: int,
) -> Response[bytes]:
    """Preview, or hand the change to `Editor.submit`, which applies it, schedules it or holds it for four-eyes."""
    editor, policies, caller = writing.editor, writing.policies, writing.caller
    if options.preview:
        checks, instant = _checks(policies, org_id, options.checks, options.at)
        effective = options.effective_at.timestamp() if options.effective_at is not None else None
        return json_response(await asyncio.to_thread(editor.preview, org_id, edit, checks, instant, None, effective))
    result = await asyncio.to_thread(
        editor.submit, org_id, edit, if_match, caller.username, options.comment, options.effective_at
    )
    return _result(result, status)


def _result(result: Written | Held, status: int) -> Response[bytes]:
    return json_response(result.change, 202) if isinstance(result, Held) else _written(result, status)


def _path_of(message: str) -> str:
    return message.rsplit("at `$.", 1)[1].rstrip("`") if "at `$." in message else ""


def _new_pack(body: Any) -> tuple[str, Any]:
    """A create's body, {name, pack, comment?}: the target and the pack with the write's options beside it."""
    fields = body if isinstance(body, dict) else {}
    try:
        new = msgspec.convert({"name": fields.get("name"), "pack": fields.get("pack")}, NewPack)
    except msgspec.ValidationError as exc:
        where = "name" if "$.name" in str(exc) else "pack"
        raise Invalid(f"{where}: {exc}", [Issue("<request>", 0, where, str(exc))]) from None
    return f"rules/{new.name}", {**new.pack, **{k: v for k, v in fields.items() if k not in ("name", "pack")}}


# The services every handler below may take, by name (api/guards.py).
@dataclass(frozen=True, slots=True)
class Writing:
    """What every write of a document needs: the editor, the policy (a preview's checks read time in the
    organisation's zone) and who is writing."""

    editor: Editor
    policies: PolicyService
    caller: Caller


def _writing(
    editor: NamedDependency[Editor], policies: NamedDependency[PolicyService], caller: NamedDependency[Caller]
) -> Writing:
    return Writing(editor, policies, caller)


EditorDep = NamedDependency[Editor]
PoliciesDep = NamedDependency[PolicyService]
CallerDep = NamedDependency[Caller]
WritingDep = NamedDependency[Writing]
WRITING = {"writing": Provide(_writing, sync_to_thread=False)}
READ_CHART = [requires(AdminPermission.ORG_CHART_READ)]
WRITE_CHART = [requires(AdminPermission.ORG_CHART_WRITE)]
READ_RULES = [requires(AdminPermission.RULE_PACK_READ)]
WRITE_RULES = [requires(AdminPermission.RULE_PACK_WRITE)]


class DocumentController(Controller):
    """Organisations: the list, a whole document (JSON or YAML), its export, its settings, and previews."""

    path = "/admin/orgs"
    tags = TAGS
    dependencies = WRITING

    @get("/", summary="Organisations the caller may read", responses=answers({200: Orgs}, *ADMIN))
    async def list_orgs(
        self, versions: NamedDependency[VersionHistory], access: NamedDependency[AccessService], caller: CallerDep
    ) -> Orgs:
        def readable(org_id: str) -> bool:
            return access.allowed(caller, AdminPermission.ORGANISATION_READ, org_id)

        return await asyncio.to_thread(versions.organisations, readable)

    @post(
        "/",
        summary="Create an organisation (JSON or YAML document)",
        status_code=201,
        responses=answers({201: Applied, 202: Change}, *ADMIN, 409, 413),
        operation_class=takes(Organisation, "OrgDocument", yaml=True, parameters=[COMMENT]),
        guards=[requires(AdminPermission.ORGANISATION_CREATE, organisation=None)],
    )
    async def create_org(self, request: Request, editor: EditorDep, caller: CallerDep) -> Response[bytes]:
        body, source = await read_body(request)
        text = await _file_text(request, body)
        data, options = write_options(request, body)
        result = await asyncio.to_thread(editor.create_org, data, caller.username, options.comment, source, text)
        return _result(result, 201)

    @get(
        "/{org_id:str}",
        summary="The whole document (Accept: application/yaml for YAML)",
        responses=answers({200: OrgDocument}, *ADMIN, 404, 409),
        operation_class=reads(yaml_answer="Organisation"),
        guards=READ_CHART,
    )
    async def get_org(self, request: Request, editor: EditorDep, org_id: FromPath[str]) -> Response[bytes]:
        document, read = await asyncio.to_thread(editor.document, org_id)
        headers = _read_headers(read)
        if wants_yaml(request):
            return yaml_response(read.source or to_yaml(document), headers=headers)
        return json_response(
            OrgDocument(org_id, read.version, read.etag or "", document, read.revision, read.policy_version),
            headers=headers,
        )

    @get(
        "/{org_id:str}/export",
        summary="The document as a YAML file (what `dutyline export` writes)",
        responses=answers({200: Organisation}, *ADMIN, 404, 409, media_type=YAML),
        guards=READ_CHART,
    )
    async def export_org(self, editor: EditorDep, org_id: FromPath[str]) -> Response[bytes]:
        document, read = await asyncio.to_thread(editor.document, org_id)
        return yaml_response(read.source or to_yaml(document), f"{org_id}.yaml", _read_headers(read))

    @put(
        "/{org_id:str}",
        summary="Replace the whole document (JSON, or YAML: an import); If-Match",
        responses=answers(WROTE, *WRITE_ERRORS),
        operation_class=takes(Organisation, "OrgDocument", yaml=True, parameters=[*OPTIONS, IF_MATCH]),
        guards=WRITE_CHART,
    )
    async def put_org(self, request: Request, writing: WritingDep, org_id: FromPath[str]) -> Response[bytes]:
        return await _write(request, writing, org_id, "org", "put")

    @delete(
        "/{org_id:str}",
        summary="Delete an organisation (its history stays); If-Match",
        status_code=200,
        responses=answers(WROTE, *WRITE_ERRORS),
        operation_class=reads(*OPTIONS, IF_MATCH),
        guards=[requires(AdminPermission.ORGANISATION_DELETE)],
    )
    async def delete_org(self, request: Request, writing: WritingDep, org_id: FromPath[str]) -> Response[bytes]:
        _, options = write_options(request, None)
        if_match = request.headers.get("if-match")
        return await _submit(writing, org_id, Edit("org", "delete"), if_match, options, 200)

    @get(
        "/{org_id:str}/settings",
        summary="The organisation's admin settings",
        responses=answers({200: OrgSettings}, *ADMIN, 404),
        guards=[requires(AdminPermission.ORGANISATION_READ)],
    )
    async def get_settings(self, editor: EditorDep, org_id: FromPath[str]) -> OrgSettings:
        await asyncio.to_thread(editor.packs, org_id)  # 404 for an unknown organisation
        now = await asyncio.to_thread(editor.four_eyes, org_id)
        return OrgSettings(org_id, now.rules, now.org)

    @put(
        "/{org_id:str}/settings",
        summary="Change the organisation's admin settings (system admin)",
        responses=answers({200: OrgSettings}, *ADMIN, 404, 413),
        operation_class=takes(SettingsBody, yaml=True),
        guards=[requires(AdminPermission.ORGANISATION_CONFIGURE)],
    )
    async def put_settings(
        self, request: Request, editor: EditorDep, caller: CallerDep, org_id: FromPath[str]
    ) -> OrgSettings:
        body, _ = await read_body(request)
        try:
            wanted = msgspec.convert(body, SettingsBody)
        except msgspec.ValidationError as exc:
            where = _path_of(str(exc)) or "rules_four_eyes"
            raise Invalid(str(exc), [Issue("<request>", 0, where, str(exc))]) from None
        if wanted.rules_four_eyes is None and wanted.org_four_eyes is None:
            raise Invalid("give rules_four_eyes or org_four_eyes", [Issue("<request>", 0, "", "nothing to change")])
        now = await asyncio.to_thread(
            editor.set_four_eyes, org_id, caller.username, wanted.rules_four_eyes, wanted.org_four_eyes
        )
        return OrgSettings(org_id, now.rules, now.org)

    @post(
        "/{org_id:str}/preview",
        summary="What a proposed document would change (nothing stored)",
        status_code=200,
        responses=answers({200: Preview}, *ADMIN, 404, 413),
        operation_class=takes(PreviewBody, yaml=True),
        guards=READ_CHART,
    )
    async def preview(
        self,
        request: Request,
        editor: EditorDep,
        policies: PoliciesDep,
        access: NamedDependency[AccessService],
        caller: CallerDep,
        org_id: FromPath[str],
    ) -> Response[bytes]:
        body, _ = await read_body(request)
        try:
            wanted = msgspec.convert(body, PreviewBody)
        except msgspec.ValidationError as exc:
            raise Invalid(str(exc), [Issue("<request>", 0, "", str(exc))]) from None
        if wanted.rules:  # draft rule packs: the caller must be able to read the packs too
            access.require(caller, AdminPermission.RULE_PACK_READ, org_id)
        edit = Edit("org", "delete") if wanted.document is None else Edit("org", "put", wanted.document)
        checks, instant = _checks(policies, org_id, list(wanted.checks), wanted.at)
        return json_response(await asyncio.to_thread(editor.preview, org_id, edit, checks, instant, wanted.rules))


class EntityController(Controller):
    """One kind of entity of a document (departments, posts, people, resources, groups, separation_of_duties)."""

    path = "/admin/orgs/{org_id:str}/{collection:str}"
    tags = TAGS
    dependencies = WRITING

    @get(
        "/",
        summary="All entities of one kind, with their ETags",
        responses=answers({200: Entities}, *ADMIN, 404),
        guards=READ_CHART,
    )
    async def list_entities(self, editor: EditorDep, org_id: FromPath[str], collection: FromPath[str]) -> Entities:
        items, read = await asyncio.to_thread(editor.collection, org_id, _collection(collection))
        etags = {i["id"]: etag_of(i) for i in items}
        return Entities(org_id, read.version, items, etags, read.revision, read.policy_version)

    @post(
        "/",
        summary="Create an entity (409 if its id exists)",
        status_code=201,
        responses=answers(CREATED, *ADMIN, 404, 409, 412, 413),
        operation_class=takes(ENTITY, "Entity", yaml=True, parameters=OPTIONS),
        guards=WRITE_CHART,
    )
    async def create_entity(
        self,
        request: Request,
        writing: WritingDep,
        org_id: FromPath[str],
        collection: FromPath[str],
    ) -> Response[bytes]:
        _collection(collection)

        def new_entity(body: Any) -> tuple[str, Any]:
            ident = body.get("id") if isinstance(body, dict) else None
            if not isinstance(ident, str) or not ident:
                raise Invalid("id: required", [Issue("<request>", 0, "id", "required: the new entity's id")])
            return f"{collection}/{ident}", body

        return await _write(request, writing, org_id, new_entity, "create", 201)

    @get(
        "/{ident:str}",
        summary="One entity, with its ETag",
        responses=answers({200: dict[str, Any]}, *ADMIN, 404),
        guards=READ_CHART,
    )
    async def get_entity(
        self, editor: EditorDep, org_id: FromPath[str], collection: FromPath[str], ident: FromPath[str]
    ) -> Response[bytes]:
        read = await asyncio.to_thread(editor.current, org_id, f"{_collection(collection)}/{ident}")
        return json_response(read.value, headers=_read_headers(read))

    @put(
        "/{ident:str}",
        summary="Replace an entity; If-Match",
        responses=answers(WROTE, *WRITE_ERRORS),
        operation_class=takes(ENTITY, "Entity", yaml=True, parameters=[*OPTIONS, IF_MATCH]),
        guards=WRITE_CHART,
    )
    async def put_entity(
        self,
        request: Request,
        writing: WritingDep,
        org_id: FromPath[str],
        collection: FromPath[str],
        ident: FromPath[str],
    ) -> Response[bytes]:
        return await _write(request, writing, org_id, f"{_collection(collection)}/{ident}", "put")

    @patch(
        "/{ident:str}",
        summary="Change an entity (JSON Merge Patch); If-Match",
        responses=answers(WROTE, *WRITE_ERRORS),
        operation_class=takes(dict[str, Any], "MergePatch", yaml=True, parameters=[*OPTIONS, IF_MATCH]),
        guards=WRITE_CHART,
    )
    async def patch_entity(
        self,
        request: Request,
        writing: WritingDep,
        org_id: FromPath[str],
        collection: FromPath[str],
        ident: FromPath[str],
    ) -> Response[bytes]:
        return await _write(request, writing, org_id, f"{_collection(collection)}/{ident}", "patch")

    @delete(
        "/{ident:str}",
        summary="Delete an entity; If-Match",
        status_code=200,
        responses=answers(WROTE, *WRITE_ERRORS),
        operation_class=reads(*OPTIONS, IF_MATCH),
        guards=WRITE_CHART,
    )
    async def delete_entity(
        self,
        request: Request,
        writing: WritingDep,
        org_id: FromPath[str],
        collection: FromPath[str],
        ident: FromPath[str],
    ) -> Response[bytes]:
        return await _write(request, writing, org_id, f"{_collection(collection)}/{ident}", "delete")


class RulePackController(Controller):
    """An organisation's rule packs (JSON or YAML)."""

    path = "/admin/orgs/{org_id:str}/rules"
    tags = TAGS
    dependencies = WRITING

    @get(
        "/",
        summary="The organisation's rule packs, with their ETags",
        responses=answers({200: Packs}, *ADMIN, 404),
        guards=READ_RULES,
    )
    async def list_packs(self, editor: EditorDep, org_id: FromPath[str]) -> Packs:
        items, policy_version = await asyncio.to_thread(editor.packs, org_id)
        return Packs(org_id, items, policy_version)

    @post(
        "/",
        summary="Create a rule pack: {name, pack} (409 if it exists)",
        status_code=201,
        responses=answers(CREATED, *ADMIN, 404, 409, 412, 413),
        operation_class=takes(NewRulePack, yaml=True, parameters=OPTIONS),
        guards=WRITE_RULES,
    )
    async def create_pack(self, request: Request, writing: WritingDep, org_id: FromPath[str]) -> Response[bytes]:
        return await _write(request, writing, org_id, _new_pack, "create", 201)

    @get(
        "/{name:str}",
        summary="One rule pack, with its ETag (Accept: application/yaml)",
        responses=answers({200: RulePack}, *ADMIN, 404),
        operation_class=reads(yaml_answer="RulePack"),
        guards=READ_RULES,
    )
    async def get_pack(
        self, request: Request, editor: EditorDep, org_id: FromPath[str], name: FromPath[str]
    ) -> Response[bytes]:
        read = await asyncio.to_thread(editor.current, org_id, f"rules/{name}")
        headers = _read_headers(read)
        if wants_yaml(request):
            return yaml_response(read.source or pack_yaml(read.value), headers=headers)
        return json_response(read.value, headers=headers)

    @put(
        "/{name:str}",
        summary="Replace a rule pack (JSON or YAML); If-Match",
        responses=answers(WROTE, *WRITE_ERRORS),
        operation_class=takes(RulePack, yaml=True, parameters=[*OPTIONS, IF_MATCH]),
        guards=WRITE_RULES,
    )
    async def put_pack(
        self,
        request: Request,
        writing: WritingDep,
        org_id: FromPath[str],
        name: FromPath[str],
    ) -> Response[bytes]:
        return await _write(request, writing, org_id, f"rules/{name}", "put")

    @patch(
        "/{name:str}",
        summary="Change a rule pack (JSON Merge Patch); If-Match",
        responses=answers(WROTE, *WRITE_ERRORS),
        operation_class=takes(dict[str, Any], "MergePatch", yaml=True, parameters=[*OPTIONS, IF_MATCH]),
        guards=WRITE_RULES,
    )
    async def patch_pack(
        self,
        request: Request,
        writing: WritingDep,
        org_id: FromPath[str],
        name: FromPath[str],
    ) -> Response[bytes]:
        return await _write(request, writing, org_id, f"rules/{name}", "patch")

    @delete(
        "/{name:str}",
        summary="Delete a rule pack; If-Match",
        status_code=200,
        responses=answers(WROTE, *WRITE_ERRORS),
        operation_class=reads(*OPTIONS, IF_MATCH),
        guards=WRITE_RULES,
    )
    async def delete_pack(
        self,
        request: Request,
        writing: WritingDep,
        org_id: FromPath[str],
        name: FromPath[str],
    ) -> Response[bytes]:
        return await _write(request, writing, org_id, f"rules/{name}", "delete")


class HistoryController(Controller):
    """An organisation's history: versions, what each changed, restoring one, the document as of a moment, and the
    decisions logged against it."""

    path = "/admin/orgs/{org_id:str}"
    tags = TAGS
    dependencies = WRITING

    @get(
        "/versions",
        summary="Versions of the document and its rule packs, newest first",
        responses=answers({200: Versions}, *ADMIN, 404),
        guards=READ_CHART,
    )
    async def list_versions(
        self,
        versions: NamedDependency[VersionHistory],
        org_id: FromPath[str],
        limit: Limit = 100,
        before: FromQuery[Number | None] = None,
    ) -> Versions:
        items = await asyncio.to_thread(versions.history, org_id, limit, before)
        next_before = items[-1].version if len(items) == limit else None
        return Versions(org_id, items, next_before)

    @get(
        "/versions/{number:int}",
        summary="One version, with its document",
        responses=answers({200: Version}, *ADMIN, 404),
        guards=READ_CHART,
    )
    async def get_version(
        self, versions: NamedDependency[VersionHistory], org_id: FromPath[str], number: Number
    ) -> Response[bytes]:
        return json_response(await asyncio.to_thread(versions.get, org_id, number))

    @get(
        "/versions/{number:int}/diff",
        summary="What a version changed: unified diff and summary",
        responses=answers({200: VersionDiff}, *ADMIN, 404),
        guards=READ_CHART,
    )
    async def diff_version(
        self, versions: NamedDependency[VersionHistory], org_id: FromPath[str], number: Number
    ) -> VersionDiff:
        return await asyncio.to_thread(versions.diff, org_id, number)

    @post(
        "/versions/{number:int}/restore",
        summary="A new version equal to this one",
        status_code=200,
        responses=answers(WROTE, *WRITE_ERRORS),
        operation_class=takes(ChangeOptions, required=False, yaml=True, parameters=[*OPTIONS, RESTORE_IF_MATCH]),
        guards=READ_CHART,
    )
    async def restore_version(
        self,
        request: Request,
        versions: NamedDependency[VersionHistory],
        writing: WritingDep,
        access: NamedDependency[AccessService],
        org_id: FromPath[str],
        number: Number,
    ) -> Response[bytes]:
        edit = await asyncio.to_thread(versions.restore_edit, org_id, number)
        # what is restored decides the permission: the document (org chart) or a rule pack
        access.require(writing.caller, AdminPermission.of(kind_of(edit.target), "write"), org_id)
        body = None
        if (await request.body()).strip():
            body, _ = await read_body(request)
        _, options = write_options(request, body)
        if not options.comment:
            options.comment = f"restore version {number}"
        if_match = request.headers.get("if-match") or "*"  # a restore replaces whatever is there unless told otherwise
        return await _submit(writing, org_id, edit, if_match, options, 200)

    @get(
        "/as-of",
        summary="The document in force at a moment",
        responses=answers({200: DocumentAsOf}, *ADMIN, 404),
        guards=READ_CHART,
    )
    async def as_of(
        self,
        versions: NamedDependency[VersionHistory],
        org_id: FromPath[str],
        at: Annotated[str, Parameter(description="ISO date-time (UTC without an offset)")],
    ) -> Response[bytes]:
        return json_response(await asyncio.to_thread(versions.as_of, org_id, when(at, None, "at", "an ISO date-time")))

    @get(
        "/decisions",
        summary="The organisation's decision log, newest first (auditors)",
        responses=answers({200: OrgDecisions}, *ADMIN, 404),
        guards=[requires(AdminPermission.DECISION_LOG_READ)],
    )
    async def org_decisions(
        self,
        runtime: NamedDependency[Runtime],
        caller: CallerDep,
        org_id: FromPath[str],
        limit: Limit = 100,
        page_token: FromQuery[str | None] = None,
        since: FromQuery[str | None] = None,
        until: FromQuery[str | None] = None,
        subject: FromQuery[str | None] = None,
        simulated: Annotated[Simulated, Parameter(description=SIMULATED)] = "exclude",
    ) -> Response[bytes]:
        where = LogFilter(
            organisation=org_id,
            subject=subject,
            since=when(since, None, "since", "an ISO date-time") if since else None,
            until=when(until, None, "until", "an ISO date-time") if until else None,
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


ROUTES = [DocumentController, EntityController, RulePackController, HistoryController]
