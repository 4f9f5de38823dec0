"""The `dutyline` command line."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
import msgspec

from dutyline import __version__
from dutyline.content import content_root
from dutyline.errors import DutylineError, Invalid, Issue, NotFound
from dutyline.settings import Settings

if TYPE_CHECKING:  # the commands import what they use when they run, so that `dutyline --help` starts fast
    from sqlalchemy.orm import Session, sessionmaker

    from dutyline.orgmodel.document import Organisation
    from dutyline.services.access import AccessService
    from dutyline.services.decisions import FactsProvider
    from dutyline.services.ledger import Ledger
    from dutyline.services.policies import PolicyService
    from dutyline.store.orgs import StoredOrg


def _settings() -> Settings:
    return Settings.from_env()


def _sessions(settings: Settings, upgrade: bool = True) -> sessionmaker[Session]:
    from dutyline.store.db import make_engine, session_factory
    from dutyline.store.db import upgrade as db_upgrade

    engine = make_engine(settings.database_url)
    if upgrade:
        db_upgrade(engine, secret_key=settings.secret_key)
    return session_factory(engine, settings.secret_key)


def _print_issues(issues: list[Issue], lang: str | None = None) -> None:
    """Each issue on a line (file:line: severity: what is wrong (path)): as the API words it, or with `lang` in
    the console's words in that language."""
    from dutyline.messages import located

    for issue in issues:
        click.echo(located(issue, lang) if lang else str(issue), err=issue.severity == "error")


def _fail(exc: DutylineError) -> NoReturn:
    if isinstance(exc, Invalid) and exc.issues:
        _print_issues(exc.issues)
    click.echo(f"error: {exc}", err=True)
    sys.exit(1)


# Commands' first lines are written to be read whole: at click's default width they were cut at 45 characters.
@click.group(context_settings={"max_content_width": 120, "terminal_width": 120, "help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="dutyline")
def main() -> None:
    """Dutyline: organisation-aware authorization and business rules."""


@main.command()
@click.option("--host", default=None, help="Interface to listen on (DUTYLINE_HOST, default 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (DUTYLINE_PORT, default 8000).")
@click.option(
    "--workers",
    default=None,
    type=click.IntRange(min=1),
    help="Server processes on this port (DUTYLINE_WORKERS, default 1); each is a full replica.",
)
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Start the HTTP service (migrates the database and loads the seed into an empty one).

    Bound to an address other than loopback, the decision API refuses anonymous callers unless
    DUTYLINE_ALLOW_ANONYMOUS=true; set DUTYLINE_REQUIRE_AUTH=true in production (docs/deployment.md)."""
    import uvicorn

    from dutyline.settings import bind_workers_to

    settings = _settings()
    # Each worker builds its own app from the environment (an import string, as uvicorn's workers need):
    # a worker is a replica like any other, kept in step through the database. The address goes there too,
    # so that every worker knows what it is bound to (anonymous access depends on it).
    bind = host or settings.host
    bind_workers_to(bind)
    uvicorn.run(
        "dutyline.app:create_app",
        factory=True,
        host=bind,
        port=port or settings.port,
        workers=workers or settings.workers,
        log_level=settings.log_level,
        access_log=False,
    )


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--lang",
    type=click.Choice(["zh", "en"]),
    default=None,
    help="Word the problems as the console does, in Chinese or English (default: the API's English messages).",
)
def validate(paths: tuple[str, ...], lang: str | None) -> None:
    """Check policy files (default: policies/ and rules/). Prints every problem with file and line; exit 1 on error."""
    from dutyline.engines.decision_tables import parse_table
    from dutyline.engines.rule_tests import parse_rule_table
    from dutyline.services import sources

    loaded = sources.load(paths or _default_paths(), bounds=Settings.from_env().bounds)
    issues = list(loaded.issues)
    for data, source in loaded.decision_tables:
        issues += parse_table(data, source)[1]
    for data, source in loaded.rule_tables:
        issues += parse_rule_table(data, source)[1]
    _print_issues(issues, lang)
    errors = [i for i in issues if i.severity == "error"]
    count = len(loaded.organisations)
    if errors:
        click.echo(f"{len(errors)} error(s) in {count} valid organisation(s) and the other files", err=True)
        sys.exit(1)
    click.echo(
        f"ok: {count} organisation(s), {len(loaded.rule_packs)} rule pack(s), "
        f"{len(loaded.decision_tables)} decision table(s), {len(loaded.rule_tables)} rule test table(s)"
    )


def _default_paths() -> list[Path]:
    return [content_root() / "policies", content_root() / "rules"]


def _organisation(org: str) -> tuple[Organisation, int, int]:
    """An organisation by file path, or by id from the database; with its revision and the policy version (both
    0 for a file)."""
    document, stored, policy_version = _stored_organisation(org)
    return document, (stored.revision if stored is not None else 0), policy_version


def _stored_organisation(org: str) -> tuple[Organisation, StoredOrg | None, int]:
    """(document, the stored version or None for a file, the global policy version or 0 for a file)."""
    from dutyline.orgmodel.validate import parse_organisation
    from dutyline.store import orgs as org_store

    path = Path(org)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return parse_organisation(path.read_text(encoding="utf-8"), str(path)).organisation, None, 0
    with _sessions(_settings())() as session:
        stored = org_store.head(session, org)
        policy_version = org_store.latest_version(session)
    if stored.document is None:
        raise NotFound(f"organisation {org!r} has been deleted")
    return stored.document, stored, policy_version


def _versions(revision: int, policy_version: int) -> str:
    """How the command line names versions, as the API does: the document's own revision, the global policy version."""
    return f"revision {revision}, policy version {policy_version}"


def _at(value: str | None, tz_name: str) -> float:
    from dutyline.orgmodel.windows import moment

    if value is None:
        return time.time()
    try:
        return moment(value, tz_name, "--at")
    except Invalid as exc:
        raise click.BadParameter(str(exc), param_hint="--at") from None


@main.command("compile")
@click.argument("org")
@click.option("--at", "at", default=None, help="Only assignments active at this date-time (default: all).")
def compile_command(org: str, at: str | None) -> None:
    """Print the Casbin policy lines of ORG (an id in the database, or a YAML file)."""
    from dutyline.engines.compiler import conditional_lines, policy_lines

    try:
        document, revision, policy_version = _organisation(org)
    except DutylineError as exc:
        _fail(exc)
    instant = _at(at, document.timezone) if at else None
    shown = _versions(revision, policy_version) if policy_version else "from its file"
    click.echo(f"# organisation {document.id} ({shown}); model: policies/casbin/model.conf")
    if instant is None:
        click.echo("# every assignment is listed; give --at to see only those active at a moment")
    for line in policy_lines(document, instant):
        click.echo(", ".join(line))
    for comment in conditional_lines(document):
        click.echo(comment)


@main.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--author", default="cli", show_default=True)
@click.option("--comment", default="", help="Why the change was made.")
def import_command(paths: tuple[str, ...], author: str, comment: str) -> None:
    """Validate and store organisation files (all of them or none)."""
    from dutyline.services import orgs
    from dutyline.services.four_eyes import FourEyes

    settings = _settings()
    sessions = _sessions(settings)
    four_eyes = FourEyes(settings.rules_four_eyes, settings.org_four_eyes)
    with click.progressbar(length=0, label="importing", show_pos=True) as bar:

        def progress(_org_id: str) -> None:
            bar.length = (bar.length or 0) + 1
            bar.update(1)

        try:
            results = orgs.import_paths(
                sessions, paths, author, comment, progress, four_eyes=four_eyes, max_scalars=settings.max_yaml_scalars
            )
        except DutylineError as exc:
            _fail(exc)
    for result in results:
        what = f"{result.org_id} rule pack {result.name}" if result.name else result.org_id
        state = _versions(result.revision, result.version)
        click.echo(f"{what}: {state if result.changed else f'unchanged ({state})'}")


@main.command()
@click.argument("org", required=False)
@click.option("-o", "--output", type=click.Path(), help="Write to this file instead of standard output.")
@click.option("--pack", "pack", default=None, metavar="NAME", help="Export ORG's rule pack NAME instead of ORG.")
@click.option(
    "--all",
    "folder",
    default=None,
    type=click.Path(file_okay=False),
    help="Export every organisation and rule pack to this folder: policies/orgs/<org>.yaml and rules/<pack>.yaml.",
)
def export(org: str | None, output: str | None, pack: str | None, folder: str | None) -> None:
    """Write organisation ORG (or its rule pack --pack NAME, or everything: --all DIR) from the database as YAML.

    A document imported from a file and not edited since is written as that file was (comments, order); one
    edited since, as its canonical YAML. `dutyline import` reads either back to the same policy."""
    from dutyline.services import orgs
    from dutyline.store import orgs as org_store
    from dutyline.store import rule_packs as pack_store

    if folder is not None:
        if org or pack or output:
            raise click.UsageError("--all DIR exports everything: give no ORG, --pack or --output with it")
        try:
            written = orgs.export_all(_sessions(_settings()), Path(folder))
        except DutylineError as exc:
            _fail(exc)
        for item in written:
            what = item.organisation if item.kind == "org" else f"{item.organisation}: rule pack {item.name}"
            click.echo(f"{what} → {item.path}{'' if item.verbatim else ' (canonical YAML: edited since its import)'}")
        return
    if not org:
        raise click.UsageError("give ORG (with --pack NAME for one of its rule packs), or --all DIR")
    try:
        if pack is not None:
            with _sessions(_settings())() as session:
                org_store.head(session, org)  # 404 for an unknown organisation
                found = next((p for p in pack_store.current(session, org) if p.name == pack), None)
            if found is None:
                raise NotFound(f"rule pack {pack!r} of {org!r} not found")
            text = orgs.pack_text(found)
        else:
            with _sessions(_settings())() as session:
                text = orgs.org_text(org_store.head(session, org))
    except DutylineError as exc:
        _fail(exc)
    if output:
        Path(output).write_bytes(text.encode("utf-8"))
    else:
        click.echo(text, nl=False)


@main.command()
@click.argument("org", required=False)
@click.argument("person", required=False)
@click.argument("resource", required=False)
@click.argument("action", required=False)
@click.option(
    "--requests",
    "requests_file",
    type=click.File("r", encoding="utf-8"),
    default=None,
    help="Instead of one question: a file (or -) of /v1/check bodies, one JSON object a line; prints one "
    "/v1/check answer a line (JSON). ORG names the organisation file with file bodies, else is left out.",
)
@click.option(
    "--at", "at", default=None, help="Date-time to decide at, in the organisation's time zone (default: now)."
)
@click.option("--post", "as_post", is_flag=True, help="PERSON is a post id: decide for the post itself.")
@click.option("--resource-id", default=None, help="The resource instance (e.g. a contract id).")
@click.option(
    "--context",
    "context_items",
    multiple=True,
    metavar="KEY=VALUE",
    help="A context attribute (repeatable): amount=120000, currency=CNY; a VALUE that is JSON (numbers, true, "
    "[..], {..}) is read as JSON, anything else as text.",
)
@click.option(
    "--context-json", default=None, metavar="JSON", help='The whole context as a JSON object, e.g. {"amount": 5}.'
)
@click.option("--resource-property", "resource_items", multiple=True, metavar="KEY=VALUE", help="A resource property.")
@click.option("--subject-property", "subject_items", multiple=True, metavar="KEY=VALUE", help="A subject property.")
@click.option(
    "--rules",
    "rule_paths",
    multiple=True,
    type=click.Path(exists=True),
    help="With ORG a file: rule pack files or folders (default: the rules/ folder beside policies/).",
)
@click.option("--lang", type=click.Choice(["zh", "en", "both"]), default="both", help="Language of the reasons.")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as /v1/check gives it.")
def explain(
    org: str,
    person: str,
    resource: str,
    action: str,
    at: str | None,
    as_post: bool,
    resource_id: str | None,
    context_items: tuple[str, ...],
    context_json: str | None,
    resource_items: tuple[str, ...],
    subject_items: tuple[str, ...],
    rule_paths: tuple[str, ...],
    lang: str,
    as_json: bool,
    requests_file: Any,
) -> None:
    """Decide whether PERSON may do ACTION on RESOURCE in ORG, as the service decides it (the duty model, then the
    business rules with the usage ledger and approval history), and say why: the post and duty, or the rule.

    ORG is an organisation id in the database, or an organisation file (its rule packs from --rules)."""
    from dutyline.api.check import result_of
    from dutyline.services.decisions import DecisionService, Question

    if requests_file is not None:
        _explain_requests(requests_file, org, rule_paths)
        return
    if not (org and person and resource and action):
        raise click.UsageError("give ORG PERSON RESOURCE ACTION, or --requests FILE")
    context = _attributes(context_items, "--context")
    if context_json is not None:
        try:
            extra = json.loads(context_json)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--context-json") from None
        if not isinstance(extra, dict):
            raise click.BadParameter("must be a JSON object", param_hint="--context-json")
        context = {**extra, **context}
    try:
        policies, facts, org_id = _policy_for(org, rule_paths)
    except DutylineError as exc:
        _fail(exc)
    compiled = policies.current.get(org_id)
    if compiled is None:
        _fail(Invalid(f"organisation {org_id!r} not found", [Issue("<command>", 0, "ORG", "not found")]))
    question = Question(
        subject_id=person,
        resource_type=resource,
        action=action,
        organisation=org_id,
        subject_type="post" if as_post else "person",
        resource_id=resource_id,
        subject_properties=_attributes(subject_items, "--subject-property") or None,
        resource_properties=_attributes(resource_items, "--resource-property") or None,
        context=context or None,
        at=_at(at, compiled.document.timezone),
    )
    answer = DecisionService(policies, log=None, facts=facts).answer(question)
    result = result_of(answer)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return
    click.echo(
        f"{answer.outcome.upper()} ({result['code']}): {person} {action} {resource} in {org_id} "
        f"(policy version {answer.policy_version})"
    )
    for reason in result["reasons"]:
        for language in ("zh", "en"):
            if lang in (language, "both"):
                click.echo(f"  - {reason[language]}" if language == "zh" or lang == "en" else f"    {reason[language]}")
    if result["approvers"]:
        chain = " → ".join(f"{s['post']} ({', '.join(s['people'])})" for s in result["approvers"])
        click.echo(f"  approvers: {chain}")
    for obligation in result["obligations"]:
        instead = f" (instead of vacant {obligation['instead_of']})" if obligation["instead_of"] else ""
        click.echo(f"  notifies: {obligation['notify'] or 'nobody'}{instead}")


def _explain_requests(lines: Any, org: str | None, rule_paths: tuple[str, ...]) -> None:
    """`explain --requests`: each line a /v1/check body, decided as the service decides it; each answer a line."""
    from dutyline.api.check import CheckRequest, question_of, result_of
    from dutyline.services.decisions import DecisionService

    loaded: dict[str, Any] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            body = msgspec.json.decode(line, type=CheckRequest)
        except msgspec.DecodeError as exc:
            click.echo(json.dumps({"line": number, "error": str(exc)}, ensure_ascii=False))
            continue
        key = org or ""  # the database's policy holds every organisation: loaded once
        if key not in loaded:
            try:
                policies, facts, _ = _policy_for(org or body.organisation, rule_paths)
            except DutylineError as exc:
                _fail(exc)
            loaded[key] = DecisionService(policies, log=None, facts=facts)
        service = loaded[key]
        try:
            answer = service.answer(question_of(service.policies, body, None))
        except DutylineError as exc:
            click.echo(json.dumps({"line": number, "error": str(exc)}, ensure_ascii=False))
            continue
        click.echo(json.dumps(result_of(answer), ensure_ascii=False))


def _attributes(items: tuple[str, ...], option: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for item in items:
        key, equals, text = item.partition("=")
        if not equals or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint=option)
        try:
            out[key] = json.loads(text)
        except json.JSONDecodeError:
            out[key] = text
    return out


def _policy_for(org: str, rule_paths: tuple[str, ...]) -> tuple[PolicyService, FactsProvider | Ledger, str]:
    """The policy and facts to decide ORG with: the database's, as the service holds them; or an org file's."""
    from dutyline.services import sources
    from dutyline.services.decisions import FactsProvider
    from dutyline.services.ledger import Ledger
    from dutyline.services.policies import PolicyService

    settings = _settings()
    path = Path(org)
    if path.suffix in (".yaml", ".yml") and path.exists():
        document, _, _ = _organisation(org)
        paths = [path, *map(Path, rule_paths)] if rule_paths else [path, *_rules_beside(path, document.id)]
        loaded = sources.load(paths, bounds=settings.bounds)
        if loaded.errors:
            raise Invalid(f"{len(loaded.errors)} error(s) in {org}", loaded.errors)
        (org_id, parsed), *_ = loaded.organisations.items()
        policies = PolicyService.of_documents(
            [parsed.organisation], {org_id: [p.pack for p in loaded.packs_of(org_id)]}, settings.bounds
        )
        return policies, FactsProvider(), org_id
    sessions = _sessions(settings)
    policies = PolicyService(sessions, bounds=settings.bounds)
    policies.refresh()
    ledger = Ledger(sessions, policies)
    ledger.refresh()
    return policies, ledger, org


def _rules_beside(org_file: Path, org_id: str) -> list[Path]:
    """The organisation's packs (`rules/<org>*.yaml`) next to the `policies/` folder its file sits in."""
    for parent in org_file.resolve().parents:
        if parent.name == "policies" and (parent.parent / "rules").is_dir():
            return sorted((parent.parent / "rules").glob(f"{org_id}*.yaml"))
    return []


@main.command("test")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("-v", "--verbose", is_flag=True, help="List passing cases too.")
def test_command(paths: tuple[str, ...], verbose: bool) -> None:
    """Run decision tables and rule test cases (default: policies/ and rules/) against the files beside them."""
    from dutyline.services.policy_tests import run_all

    results, issues = run_all(paths or _default_paths())
    if issues:
        _print_issues(issues)
        click.echo("fix the errors above first", err=True)
        sys.exit(1)
    passed = failed = 0
    for result in results:
        if result.passed:
            passed += 1
            if verbose:
                click.echo(f"PASS {result.file}:{result.line} {result.name}")
        else:
            failed += 1
            click.echo(f"FAIL {result.file}:{result.line} {result.name}: {result.message}", err=True)
    click.echo(f"{passed} passed, {failed} failed")
    if failed or not passed:
        sys.exit(1)


@main.command()
@click.option("--rules", "rules", is_flag=True, help="The rule pack schema (rules/schema/rules.schema.json).")
def schema(rules: bool) -> None:
    """Print the JSON Schema of organisation files (policies/schema/org.schema.json) or rule packs."""
    from dutyline.orgmodel.document import schema as org_schema
    from dutyline.rulemodel.document import schema as rules_schema

    click.echo(json.dumps(rules_schema() if rules else org_schema(), ensure_ascii=False, indent=2))


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply database migrations (default: all)."""
    from dutyline.store.db import make_engine, upgrade

    settings = _settings()
    upgrade(make_engine(settings.database_url), revision, secret_key=settings.secret_key)
    click.echo(f"database at {revision}")


@main.group()
def admin() -> None:
    """Admin users and API tokens (the first system admin is made here)."""


def _access() -> AccessService:
    from dutyline.services.access import AccessService

    settings = _settings()
    return AccessService(_sessions(settings), secret_key=settings.secret_key)


@admin.command("create")
@click.argument("username")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    help="ROLE or ROLE@ORG (repeatable): system_admin, hr_admin, compliance_officer, auditor; ORG defaults to * (all).",
)
@click.option("--display-name", default="", help="Shown in the console (default: the username).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input instead of prompting.")
def admin_create(username: str, roles: tuple[str, ...], display_name: str, password_stdin: bool) -> None:
    """Create an admin user, e.g. `dutyline admin create root --role system_admin`."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    grants = [(r.partition("@")[0], r.partition("@")[2] or "*") for r in roles]
    try:
        user = _access().create_user(username, display_name, password, grants, by="cli")
    except DutylineError as exc:
        _fail(exc)
    shown = ", ".join(f"{g.role}@{g.organisation}" for g in user.roles)
    click.echo(f"created {user.username} ({shown})")


@admin.command("token")
@click.argument("username")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    default=("decide",),
    show_default=True,
    help="decide, read or admin (repeatable).",
)
@click.option(
    "--org",
    "organisations",
    multiple=True,
    help="An organisation the token may reach on the decision API (repeatable); a decide or admin token needs one.",
)
@click.option("--all-orgs", is_flag=True, help="The token reaches every organisation (instead of --org).")
@click.option("--name", default="", help="What the token is for.")
@click.option("--expires-in-days", type=float, default=None, help="Default: never.")
def admin_token(
    username: str,
    scopes: tuple[str, ...],
    organisations: tuple[str, ...],
    all_orgs: bool,
    name: str,
    expires_in_days: float | None,
) -> None:
    """Issue an API token acting as USERNAME; prints the secret (shown only once)."""
    if all_orgs and organisations:
        raise click.UsageError("give --org or --all-orgs, not both")
    reached = ["*"] if all_orgs else list(organisations) if organisations else None
    try:
        token = _access().issue_token(
            username, scopes, name, by="cli", expires_in_days=expires_in_days, organisations=reached
        )
    except DutylineError as exc:
        if isinstance(exc, Invalid) and exc.issues and exc.issues[0].path == "organisations":
            click.echo("error: name the organisations it may reach: --org ORG (repeatable), or --all-orgs", err=True)
            sys.exit(1)
        _fail(exc)
    shown = ",".join(token.organisations or []) or "none"
    scopes_shown = ",".join(token.scopes)
    click.echo(f"# token {token.id} for {username}, scopes {scopes_shown}, organisations {shown}", err=True)
    click.echo(token.token)


@main.group()
def audit() -> None:
    """The admin audit trail."""


@audit.command("verify")
@click.option(
    "--head",
    "published",
    default=None,
    metavar="SEQ:HASH",
    help="A head printed earlier (and kept elsewhere): the chain must still hold that entry.",
)
def audit_verify(published: str | None) -> None:
    """Walk the hash chain of the audit trail and check it ends at its head anchor; report the first broken link
    (exit 1). Prints the head (SEQ:HASH): keep it somewhere else, to check against with --head later."""
    from dutyline.store import audit as audit_store

    try:
        expected = audit_store.parse_head(published) if published is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--head") from None
    with _sessions(_settings())() as session:
        checked, broken = audit_store.verify(session, published=expected)
        head = audit_store.head(session)
    if broken is not None:
        click.echo(f"BROKEN at entry {broken.seq}: {broken.message} ({checked} entries before it are intact)", err=True)
        sys.exit(1)
    click.echo(f"ok: {checked} entries, chain intact, head {_shown_head(head)}")


@audit.command("reset-head")
@click.option("--reason", required=True, help="Why: kept in the entry that records the reset.")
def audit_reset_head(reason: str) -> None:
    """Move the head anchor to a new entry recording the reset (after changing DUTYLINE_SECRET_KEY, or once a break
    `verify` reported has been looked into). Breaks in the chain itself stay visible."""
    from dutyline.store import audit as audit_store

    with _sessions(_settings()).begin() as session:
        row = audit_store.reset_head(session, "cli", reason)
    click.echo(f"head {row.seq}:{row.hash}")


def _shown_head(head: tuple[int, str] | None) -> str:
    return f"{head[0]}:{head[1]}" if head is not None else "none (no entries)"


if __name__ == "__main__":
    main()
