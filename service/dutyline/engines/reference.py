"""Plain `casbin.Enforcer` over the compiled policy: the reference the fast path is checked against."""

from __future__ import annotations

import logging

import casbin

from dutyline.content import casbin_model_path
from dutyline.engines.compiler import policy_lines
from dutyline.orgmodel.document import Organisation

# pycasbin logs every enforce at INFO; that costs throughput and floods logs (see BASELINES.md).
for _name in ("casbin", "casbin.policy", "casbin.enforcer", "casbin.role_manager"):
    logging.getLogger(_name).setLevel(logging.WARNING)


def reference_enforcer(org: Organisation, at: float | None) -> casbin.Enforcer:
    """A plain Casbin enforcer holding the organisation's policy as of `at`."""
    enforcer = casbin.Enforcer(str(casbin_model_path()), enable_log=False)
    p_lines: list[list[str]] = []
    g_lines: list[list[str]] = []
    g2_lines: list[list[str]] = []
    for line in policy_lines(org, at):
        {"p": p_lines, "g": g_lines, "g2": g2_lines}[line[0]].append(line[1:])
    if p_lines:
        enforcer.add_policies(p_lines)
    if g_lines:
        enforcer.add_named_grouping_policies("g", g_lines)
    if g2_lines:
        enforcer.add_named_grouping_policies("g2", g2_lines)
    return enforcer
