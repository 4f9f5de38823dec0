"""Binding tokens and callback endpoints of the access request profile (services/access_requests.py): what is refused,
and why. The whole flow runs end to end in tests/clients/test_access_requests.py."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import msgspec
import pytest

from dutyline.errors import Invalid
from dutyline.services.access_requests import (
    AUDIENCE,
    ISSUER,
    BindingClaims,
    Callback,
    Problem,
    sign,
    validate_callback,
    verify,
)

KEY = b"k" * 32


def _claims(**changed: object) -> BindingClaims:
    claims = BindingClaims(
        iss=ISSUER,
        aud=AUDIENCE,
        iat=1_800_000_000,
        exp=1_800_000_900,
        jti="j1",
        denial_expires_at="2027-01-15T08:15:00Z",
        evaluation_id="d1",
        binding_context_members=["amount"],
        subject={"type": "user", "id": "ann"},
        resource={"type": "expense", "id": "e1"},
        action={"name": "approve"},
        context={"amount": 20000},
        organisation="sales_company",
        policy_version=7,
        rules=["expense_claim_limit"],
    )
    return msgspec.structs.replace(claims, **changed)


def _b64(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def test_a_token_verifies_with_its_key_only() -> None:
    token = sign(KEY, _claims())
    assert verify(KEY, token) == _claims()
    for forged in (
        token[:-2] + ("AA" if not token.endswith("AA") else "BB"),  # another signature
        sign(b"another key", _claims()),
        sign(KEY, _claims(aud="urn:somebody:else")),  # issued for another access request service
        f"{_b64({'alg': 'none'})}.{_b64({'aud': AUDIENCE})}.",  # unsigned
        "not.a.token",
        "one-part",
        "a.b.c.d",
    ):
        with pytest.raises(Problem) as refused:
            verify(KEY, forged)
        assert (refused.value.kind, refused.value.status) == ("invalid_denial_binding", 400)
        assert refused.value.type == "urn:openid:authzen:access-request:error:invalid_denial_binding"


def test_a_token_whose_payload_was_changed_does_not_verify() -> None:
    header, _, signature = sign(KEY, _claims()).split(".")
    altered = msgspec.to_builtins(_claims(context={"amount": 90000}))
    with pytest.raises(Problem):
        verify(KEY, f"{header}.{_b64(altered)}.{signature}")


def test_a_signed_token_that_is_not_a_binding_of_this_pdp_is_refused_naming_what_it_lacks() -> None:
    partial = sign(KEY, _claims())  # the header and signature scheme of a real one, over a payload lacking `jti`
    header, _, _ = partial.split(".")
    payload = {k: v for k, v in msgspec.to_builtins(_claims()).items() if k != "jti"}
    body = f"{header}.{_b64(payload)}"
    signature = base64.urlsafe_b64encode(hmac.new(KEY, body.encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
    with pytest.raises(Problem) as refused:
        verify(KEY, f"{body}.{signature}")
    assert refused.value.kind == "invalid_denial_binding"
    assert "jti" in str(refused.value)


@pytest.mark.parametrize(
    ("endpoint", "field"),
    [
        ("ftp://pep.example.com/cb", "callback.endpoint"),
        ("pep.example.com/cb", "callback.endpoint"),
        ("http://127.0.0.1:9/cb", "callback.endpoint"),
        ("http://localhost/cb", "callback.endpoint"),
        ("http://10.0.0.7/cb", "callback.endpoint"),
        ("http://192.168.1.1/cb", "callback.endpoint"),
        ("http://169.254.169.254/latest/meta-data", "callback.endpoint"),
        ("http://[::1]/cb", "callback.endpoint"),
        ("http://0.0.0.0/cb", "callback.endpoint"),
        ("https://pep.example.com/" + "a" * 2048, "callback.endpoint"),
    ],
)
def test_a_callback_endpoint_that_is_not_a_public_http_url_is_refused(endpoint: str, field: str) -> None:
    with pytest.raises(Invalid) as refused:
        validate_callback(Callback(endpoint), (), "secret")
    assert refused.value.issues[0].path == field


def test_callbacks_need_a_secret_and_known_events_and_an_allowed_host_may_be_internal() -> None:
    validate_callback(Callback("https://pep.example.com/cb", "s", ["approved", "denied"]), (), "secret")
    validate_callback(Callback("http://127.0.0.1:8080/cb"), ("127.0.0.1",), "secret")
    with pytest.raises(Invalid) as unsigned:
        validate_callback(Callback("https://pep.example.com/cb"), (), "")
    assert unsigned.value.issues[0].path == "callback"
    with pytest.raises(Invalid) as events:
        validate_callback(Callback("https://pep.example.com/cb", None, ["approved", "granted"]), (), "secret")
    assert events.value.issues[0].path == "callback.events"
    with pytest.raises(Invalid) as state:
        validate_callback(Callback("https://pep.example.com/cb", "x" * 5000), (), "secret")
    assert state.value.issues[0].path == "callback.state"
