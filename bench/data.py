"""The files every measurement of one size reads: the family, its rule packs, its Casbin policy and the requests."""

from __future__ import annotations

import csv
import json
import random
from dataclasses import astuple
from pathlib import Path

import msgspec

from bench.generate import AT_TEXT, family, limit_requests, requests, rule_pack
from dutyline.engines.compiler import compile_org, policy_lines
from dutyline.engines.decision import Check, decide
from dutyline.orgmodel.document import Organisation
from dutyline.orgmodel.windows import instant, zone

ROOT = Path(__file__).resolve().parent / ".data"
ENCODER = msgspec.json.Encoder()
AT = instant(AT_TEXT, zone("Asia/Shanghai"))
REQUESTS = 20_000


def prepare(size: int) -> tuple[Path, list[Organisation], int]:
    """Write (or reuse) the files for `size` policy lines; returns the folder, the family and its line count."""
    folder = ROOT / str(size)
    orgs = family(size)
    marker = folder / "lines.txt"
    if marker.exists():
        return folder, orgs, int(marker.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "family.json").write_bytes(ENCODER.encode(orgs))
    (folder / "rules.json").write_bytes(ENCODER.encode([rule_pack(o) for o in orgs]))
    lines = 0
    with (folder / "policy.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        for org in orgs:
            for line in policy_lines(org, AT):
                writer.writerow(line)
                lines += 1
    plain = requests(orgs, REQUESTS, AT)
    within, above = _limit_requests(orgs)
    (folder / "requests.json").write_text(
        json.dumps(
            {
                "at": AT,
                "plain": [astuple(r)[:4] for r in plain],
                "limit_within": [astuple(r) for r in within],
                "limit_above": [astuple(r) for r in above],
            }
        )
    )
    # the line count of the family as stored (every assignment, whatever its window): what "size" means
    total = sum(1 for org in orgs for _ in policy_lines(org))
    marker.write_text(str(total))
    return folder, orgs, total


def _limit_requests(orgs: list[Organisation], count: int = 5_000) -> tuple[list, list]:
    """Counter staff whose duties allow entering a transaction: 20,000 (within 50,000) and 80,000 (above)."""
    compiled: dict = {}
    rng = random.Random(3)
    within, above = [], []
    for r in limit_requests(orgs, count * 4, 20_000):
        org = compiled.get(r.org) or compiled.setdefault(r.org, compile_org(next(o for o in orgs if o.id == r.org)))
        if decide(org, Check(r.person, r.resource, r.action, AT)).allowed:
            within.append(r)
            above.append(type(r)(r.org, r.person, r.resource, r.action, 80_000))
        if len(within) >= count:
            break
    rng.shuffle(above)
    return within, above
