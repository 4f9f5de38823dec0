"""The durable_rules backend, the one module that touches the engine: "does this rule fire for this event?", safely and fast.

Every rule is one durable_rules ruleset, asked one event at a time. durable_rules 2.0.28 (last released 2020)
has traps; each is closed here by construction, and the numbers below were measured on 2.0.28:

- **Timer and dispatch threads; actions run on the wrong thread.** `durable.engine.Host` starts two timer
  threads that may run an action themselves, so that `post()` returns without the result. We use neither `Host`
  nor `durable.engine`: we call the engine's C core, `durable_rules_engine`, through the same functions
  `Host.post` calls (`assert_event`, `start_action_for_state`, `complete_and_start_action`). Nothing starts a
  thread, so nobody else can take an action. There are no Python actions either: the engine hands back the
  matched event, and "fired" means the action handed back carries this call's correlation id (`id`). Without
  Python actions there is no `state['exception']` to miss; any unexpected engine result raises `RuleHostError`.
- **Not thread-safe.** One process-wide lock serialises every call into the engine, from every `RuleHost`
  (the engine is one global C state). The extension never releases the GIL, so the lock costs nothing extra.
- **1024 sessions per ruleset, then MemoryError and SIGSEGV.** Each ruleset has exactly one session, "0",
  created when the ruleset is registered and reused by every call; a call leaves nothing in it (200,000 calls:
  no growth). **A session that never ran an action holds uninitialised pointers that `delete_state` frees**
  (SIGSEGV, depending on the heap), so each ruleset has a second rule, `prime`, whose action is run to
  completion when the session is created. Only then can the session be deleted, which `delete_ruleset` needs:
  alone it leaks the session (≈80 KB).
- **`set_rulesets` mutates its argument; a name registers only once.** We write the ruleset JSON ourselves and
  name the ruleset after its content digest; logical names with equal conditions share it. `load()` replaces
  the whole set: unchanged content keeps its registration, the rest is registered anew, and what is no longer
  used is unregistered (session, then `delete_ruleset`). Memory is bounded: ≈180 KB per distinct condition
  (ruleset and session pools); 80 reloads of 300 changed rules leave the process no bigger than the first
  reload. The engine lock is taken per ruleset during a load (≈1 ms each), so decisions go on during a reload.
- **An unmatched event raises `MessageNotHandledException`.** At this level it is result code 1: "does not
  fire", as it should be.
- **Numbers.** The engine's JSON reader rejects exponents (`1e-06`, `1e+16`: error 204), does integer arithmetic
  on integers (`7 / 2 == 3`; an integer division by zero kills the process with SIGFPE), and computes arithmetic
  between two constants wrongly. We write every number, in rulesets and events, as a positional decimal with a
  point (`0.000001`, `5.0`), so all arithmetic is floating-point; constant arithmetic is folded beforehand.
- **`$nex` loops forever** (100 % CPU, in C) when the field is missing, the only case it exists for. Never
  written; `load()` refuses it.
- **A `$m` reference to a missing field matches** (`a > b` holds when `b` is missing). Every reference is guarded.
- **Texts longer than 65,535 bytes are compared modulo 65,536** (70,000 "x" equal their first 4,464). No value
  we send comes near that length (see the encoding).
- **Mixed types coerce** (`5 == "5"`, `"abc" > 5`, `true == 1`, `"m" < true`). See the encoding.
- **Size.** A rule with 16 `$and`/`$or` groups is refused (error 113); a node with 512 successors (a flat `$or`
  of 512, or 64 rules of 14 branches) makes `assert_event` loop forever. A condition with more than 15 groups
  is split at its top-level `$or` into up to 16 rules of the same ruleset; more than 400 tests and groups in all,
  or a top-level `$and` of more than 15 groups, is refused (`NotExpressible` / ValueError).


## Speed (bench/rulehost_bench.py; one thread, CPython 3.11, 2 cores with load average ≈5; the whole call)

| rule | p50 | p99 |
|---|---|---|
| `{"$gt": {"amount": {"$m": "limit"}}}`, fires | 2.8 µs | 4.3 µs |
| the same, does not fire | 1.9 µs | 2.3 µs |
| `context.amount > resource.limit` (condition_json), fires | 3.6 µs | 3.9 µs |
| `resource.owner == subject.id and context.amount > 2 * resource.limit`, fires | 6.4 µs | 7.2 µs |

Eight threads sharing one host: 140,000–165,000 calls/s in all. Loading 300 new rules: 0.06–0.3 s (the engine
lock is released between rulesets); loading the same condition objects again: under 1 ms.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import durable_rules_engine as _engine

from dutyline.engines.rulehost.conditions import SESSION, Prepared, event_fields, prepare
from dutyline.errors import DutylineError

_LOCK = threading.Lock()  # the engine is one global C state: every call from every RuleHost goes through this
_IDS = itertools.count(1)  # correlation ids, taken under _LOCK
_NOT_HANDLED = 1  # durable_rules' ERR_EVENT_NOT_HANDLED: the event matched no rule
_PRIME = '{"id":0,"sid":"0","#prime":true}'  # matched by each ruleset's second rule, "prime", and by nothing else


class RuleHostError(DutylineError):
    """durable_rules did something it should not (an unexpected result code, an action for another event)."""


@dataclass(frozen=True, slots=True)
class _Registration:
    """One ruleset in the engine, shared by every logical name whose condition has this content."""

    handle: int
    digest: str
    head: str  # '"sid":"0"' and the constant fields the condition reads
    typed: tuple[tuple[str, str, str], ...]  # (flat key, '"<key>#', tags read)
    raw: tuple[tuple[str, str], ...]  # (field name, '"name":')


class RuleHost:
    """Rules as durable_rules rulesets, asked one event at a time. Thread-safe; starts no threads."""

    def __init__(self) -> None:
        self._rules: dict[str, _Registration] = {}  # replaced whole, under _LOCK; read under _LOCK
        self._loading = threading.Lock()  # one load at a time per host
        # name → (the condition object last loaded under it, its preparation): `load` is given every rule of
        # every organisation on each change, and preparing them all again costs ~0.1 s at 1,000 organisations.
        # Conditions are not changed in place (they are compiled artefacts), so the same object means the same
        # preparation.
        self._prepared: dict[str, tuple[Mapping[str, Any], Prepared]] = {}

    def load(self, rulesets: Mapping[str, Mapping[str, Any]]) -> None:
        """Replace the whole set of rules atomically: logical name → durable_rules condition, the `m` of
        `{"all": [{"m": condition}]}` (from `condition_json`, or hand-written over plain fields).

        Names absent from `rulesets` stop existing (`fires` raises KeyError); a name whose condition is unchanged
        keeps its registration; identical conditions share one. Raises ValueError naming the rule whose
        condition is malformed or unsafe, and then nothing changes."""
        with self._loading:
            prepared: dict[str, Prepared] = {}
            for name, condition in rulesets.items():
                cached = self._prepared.get(name)
                if cached is not None and cached[0] is condition:
                    prepared[name] = cached[1]
                    continue
                try:
                    prepared[name] = prepare(condition)
                except (ValueError, TypeError) as error:
                    raise ValueError(f"rule {name!r}: {error}") from error
            current = {registration.digest: registration for registration in self._rules.values()}
            created: dict[str, _Registration] = {}
            try:
                for name, item in prepared.items():
                    if item.digest in current or item.digest in created:
                        continue
                    # The engine lock is taken per ruleset (≈1 ms each), so decisions go on during a reload.
                    with _LOCK:
                        try:
                            created[item.digest] = _register(item)
                        except _engine.error as error:
                            raise ValueError(f"rule {name!r}: durable_rules refused the condition: {error}") from error
                    time.sleep(0)  # hand the GIL to a decision waiting for the lock, or we would take it again first
            except BaseException:
                with _LOCK:
                    for registration in created.values():
                        _unregister(registration)
                raise
            available = {**current, **created}
            rules = {name: available[item.digest] for name, item in prepared.items()}
            kept = {registration.digest for registration in rules.values()}
            with _LOCK:
                self._rules = rules
                for digest, registration in current.items():
                    if digest not in kept:
                        _unregister(registration)
            self._prepared = {name: (rulesets[name], item) for name, item in prepared.items()}

    def fires(self, name: str, event: Mapping[str, Any]) -> bool:
        """Whether rule `name`'s condition holds for `event` (flat: field name → value; only the fields the
        condition reads are sent, a missing one is null). Unknown name: KeyError."""
        with _LOCK:
            return _ask(self._rules[name], event)

    def fired(self, events: Iterable[tuple[str, Mapping[str, Any]]]) -> list[bool]:
        """`fires` for each (name, event), under one acquisition of the engine lock."""
        with _LOCK:
            return [_ask(self._rules[name], event) for name, event in events]

    def names(self) -> frozenset[str]:
        """The logical names loaded."""
        return frozenset(self._rules)

    def registration(self, name: str) -> str:
        """The durable_rules ruleset serving `name` (it changes only when the condition does). KeyError if unknown."""
        return f"dutyline@{self._rules[name].digest}"

    def close(self) -> None:
        """Unregister every ruleset; the host is empty afterwards. (A host dropped without it keeps its rulesets
        in the engine: a finaliser could run inside `fires`, on the thread that holds the engine lock.)"""
        self.load({})


def _ask(registration: _Registration, event: Mapping[str, Any]) -> bool:
    """One question to the engine. Called with _LOCK held."""
    cid = next(_IDS)
    return _post(registration.handle, f'{{"id":{cid},{event_fields(registration, event)}}}', cid)


def _post(handle: int, text: str, cid: int) -> bool:
    """Assert one event and run every action it queued (ours alone, in practice), on this thread."""
    started = False
    try:
        code, state = _engine.assert_event(handle, text)
        if code == _NOT_HANDLED:
            return False
        if code != 0:
            raise RuleHostError(f"durable_rules answered {code} for {text}")
        echo = f'{{"id":{cid},'
        fired = False
        result = _engine.start_action_for_state(handle, state)
        messages = result[1] if result else None
        while messages is not None:
            started = True
            fired = fired or _carries(messages, echo, cid)
            messages = _engine.complete_and_start_action(handle, state)
            started = messages is not None
        if not fired:
            raise RuleHostError(f"durable_rules matched {text} but handed back no action for it")
        return True
    except _engine.error as error:
        raise RuleHostError(f"durable_rules failed on {text}: {error}") from error
    finally:
        if started:  # an action left open would lock the session for the engine's lease time
            _engine.abandon_action(handle, state)


def _carries(messages: str, echo: str, cid: int) -> bool:
    """Whether the action's messages are this call's event. The engine echoes our text verbatim, and no text
    value can hold `{"m":{"id":` unescaped, so a substring test decides; JSON is the fallback."""
    if '{"m":' + echo in messages:
        return True
    for value in json.loads(messages).values():
        for message in value if isinstance(value, list) else [value]:
            if isinstance(message, Mapping) and isinstance(message.get("m"), Mapping) and message["m"].get("id") == cid:
                return True
    return False


def _register(item: Prepared) -> _Registration:
    handle = _engine.create_ruleset(f"dutyline@{item.digest}", item.text)
    try:
        # Create the one session now, through an action run to completion: a session that never ran an action
        # holds uninitialised pointers that delete_state would free (SIGSEGV).
        if not _post(handle, _PRIME, 0):
            raise RuleHostError("durable_rules did not run the priming rule")
    except BaseException:
        _engine.delete_ruleset(handle)
        raise
    return _Registration(handle, item.digest, item.head, item.typed, item.raw)


def _unregister(registration: _Registration) -> None:
    # The session first: delete_ruleset alone leaks it (≈80 KB). It is primed, so deleting it is safe.
    _engine.delete_state(registration.handle, SESSION)
    _engine.delete_ruleset(registration.handle)
