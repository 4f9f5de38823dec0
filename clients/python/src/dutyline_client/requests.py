"""What a caller asks: the bodies of `/v1/check` (Dutyline's) and of the AuthZEN endpoints. Fields left as None are
not sent, so the server applies its defaults."""

from __future__ import annotations

from typing import Any, Literal

import msgspec


class _Body(msgspec.Struct, kw_only=True, omit_defaults=True):
    pass


class CheckSubject(_Body):
    """A person (any of their identities: id, e-mail, IdP subject, staff number) or, with `type="post"`, a post."""

    id: str
    type: Literal["person", "post"] = "person"
    properties: dict[str, Any] | None = None


class CheckResource(_Body):
    type: str
    id: str | None = None
    properties: dict[str, Any] | None = None


class CheckRequest(_Body):
    """One `/v1/check`. `approval_id` presents an approval (the check is allowed through it when it covers the
    request); `at_least_version` waits until the server has applied that policy version (read your writes)."""

    organisation: str
    subject: CheckSubject
    resource: CheckResource
    action: str
    at: str | None = None
    context: dict[str, Any] | None = None
    at_least_version: int | None = None
    approval_id: str | None = None
    as_of: str | None = None
    simulated: bool = False


def check_request(
    organisation: str,
    subject: str,
    resource: str,
    action: str,
    *,
    resource_id: str | None = None,
    context: dict[str, Any] | None = None,
    at: str | None = None,
    approval_id: str | None = None,
    subject_type: Literal["person", "post"] = "person",
    subject_properties: dict[str, Any] | None = None,
    resource_properties: dict[str, Any] | None = None,
    as_of: str | None = None,
    simulated: bool = False,
    at_least_version: int | None = None,
) -> CheckRequest:
    """A `CheckRequest` from plain values (what `Client.check` takes), for `Client.checks`."""
    return CheckRequest(
        organisation=organisation,
        subject=CheckSubject(id=subject, type=subject_type, properties=subject_properties),
        resource=CheckResource(type=resource, id=resource_id, properties=resource_properties),
        action=action,
        at=at,
        context=context,
        at_least_version=at_least_version,
        approval_id=approval_id,
        as_of=as_of,
        simulated=simulated,
    )


# --- AuthZEN ------------------------------------------------------------------------------------------------


class Subject(_Body):
    """`type` "post" is a post; any other type (`user`, `identity`, `person`) a person found by any identity."""

    type: str
    id: str
    properties: dict[str, Any] | None = None


class Action(_Body):
    name: str
    properties: dict[str, Any] | None = None


class Resource(_Body):
    type: str
    id: str
    properties: dict[str, Any] | None = None


class EvaluationItem(_Body):
    """One item of a batch; what it leaves out comes from the batch's top level (each key replaced whole)."""

    subject: Subject | None = None
    action: Action | None = None
    resource: Resource | None = None
    context: dict[str, Any] | None = None


Semantic = Literal["execute_all", "deny_on_first_deny", "permit_on_first_permit"]
