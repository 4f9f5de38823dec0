"""Rules engines behind one protocol: "does this rule fire for this event?", safely and fast.

The only package of ours that touches durable_rules (an import contract in pyproject.toml holds it to that),
split at its seams:

- `backend`: the `RuleBackend` protocol and `new_backend` (DUTYLINE_RULES_BACKEND chooses the default);
- `host`: `RuleHost`, the durable_rules backend: the engine's C core behind one process-wide lock, and every
  trap of durable_rules 2.0.28 closed by construction;
- `reference`: `ReferenceHost`, the same semantics in pure Python, reading the same ruleset JSON and events;
- `conditions`: the condition language both accept (checked, guarded, split within the engine's limits);
- `encoding`: values as the engine must see them (positional doubles, canonical keys, typed fields);
- `operands`, `compiler`: expressions → conditions (`condition_json`), with the evaluator's semantics.
"""

from dutyline.engines.rulehost.backend import BACKENDS, RuleBackend, new_backend
from dutyline.engines.rulehost.compiler import condition_json
from dutyline.engines.rulehost.conditions import NotExpressible, check_condition
from dutyline.engines.rulehost.host import RuleHost, RuleHostError
from dutyline.engines.rulehost.reference import ReferenceHost

__all__ = [
    "BACKENDS",
    "NotExpressible",
    "ReferenceHost",
    "RuleBackend",
    "RuleHost",
    "RuleHostError",
    "check_condition",
    "condition_json",
    "new_backend",
]
