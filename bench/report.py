"""results.json → results.md (tables, targets met or not) and PNG plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.service import percentile

MB = 1024 * 1024


def _us(x: float) -> str:
    if x != x:
        return "–"
    if x >= 1e6:
        return f"{x / 1e6:.2f} s"
    if x >= 1e3:
        return f"{x / 1e3:.1f} ms"
    return f"{x:.1f} µs"


def _ok(passed: bool) -> str:
    return "met" if passed else "**missed**"


def write(results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=float))
    plots(results, out)
    (out / "results.md").write_text(markdown(results))


_MISSING = (KeyError, IndexError, TypeError, ZeroDivisionError, ValueError)


def targets(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(target, measured, met?) rows; a target whose measurement failed says so."""
    rows: list[tuple[str, str, str]] = []
    for section in (_t_inprocess, _t_http, _t_peers, _t_queries, _t_writes, _t_replicas, _t_startup):
        try:
            section(r, rows)
        except _MISSING as exc:
            errors = r.get("service", {}).get("errors", {})
            rows.append((section.__doc__ or section.__name__, f"not measured: {errors or repr(exc)}", "**missed**"))
    return rows


def _lines(r: dict[str, Any]) -> str:
    return f"{r['service']['lines']:,} lines"


def _t_inprocess(r: dict[str, Any], rows: list) -> None:
    """in-process decisions"""
    sizes = r["sizes"]
    worst50 = max(s["dutyline"]["rules_plain"]["p50"] for s in sizes.values())
    worst99 = max(s["dutyline"]["rules_plain"]["p99"] for s in sizes.values())
    rows.append(
        (
            "decision, rules included, no rule fires: p50 ≤ 10 µs at every size",
            _us(worst50) + " (worst size)",
            _ok(worst50 <= 10),
        )
    )
    rows.append(("… and p99 ≤ 50 µs", _us(worst99) + " (worst size)", _ok(worst99 <= 50)))
    limit50 = max(s["dutyline"]["rules_limit_above"]["p50"] for s in sizes.values())
    rows.append(
        ("decision that triggers a limit rule: p50 ≤ 50 µs", _us(limit50) + " (worst size)", _ok(limit50 <= 50))
    )


def _t_http(r: dict[str, Any], rows: list) -> None:
    """HTTP"""
    s, lines = r["service"], _lines(r)
    http = s["http"]
    echo = http["echo"]["saturated"]["rps"]
    sampled = s.get("http_log_sampled")
    for name in ("evaluation", "check"):
        rps = http[name]["saturated"]["rps"]
        note = ""
        if sampled:
            note = f"; with the log sampled at 1 %: {sampled[name]['saturated']['rps'] / sampled['echo']['saturated']['rps']:.0%}"
        rows.append(
            (
                f"HTTP {name}: ≥ 70 % of the ceiling's req/s ({lines})",
                f"{rps:,.0f} vs {echo:,.0f} req/s = {rps / echo:.0%}{note}",
                _ok(rps >= 0.7 * echo),
            )
        )
        light = http[name]["light"]["p99_ms"]
        saturated = http[name]["saturated"]["p99_ms"]
        note = f"; with the log sampled at 1 %: {sampled[name]['light']['p99_ms']:.2f} ms" if sampled else ""
        rows.append(
            (
                f"HTTP {name}: p99 ≤ 5 ms ({lines})",
                f"{light:.2f} ms at 4 connections; {saturated:.2f} ms at 32 (saturated){note}",
                _ok(light <= 5),
            )
        )
    batch = http["evaluations_100"]["saturated"]["rps"] * 100
    note = (
        f"; {sampled['evaluations_100']['saturated']['rps'] * 100:,.0f} with the log sampled at 1 %" if sampled else ""
    )
    rows.append(
        (
            "batch evaluations, 100 per request: ≥ 100,000 decisions/s",
            f"{batch:,.0f} decisions/s{note}",
            _ok(batch >= 100_000),
        )
    )


def _t_peers(r: dict[str, Any], rows: list) -> None:
    """beside Cerbos (issue 18)"""
    agreed = [(int(k), x["cerbos"]["agreement"]) for k, x in r["sizes"].items() if "agreement" in x.get("cerbos", {})]
    if not agreed:
        raise KeyError(r.get("cerbos_unavailable", "cerbos"))
    native = sum(a["native"]["disagreements"] for _, a in agreed)
    authzen = sum(a["authzen"]["disagreements"] for _, a in agreed)
    rows.append(
        (
            "Cerbos and Dutyline agree on every request no business rule touches",
            f"{native} of {sum(a['native']['compared'] for _, a in agreed):,} disagree (native), {authzen} of "
            f"{sum(a['authzen']['compared'] for _, a in agreed):,} (AuthZEN); "
            + ", ".join(f"{k:,}" for k, _ in agreed)
            + " lines",
            _ok(native == 0 and authzen == 0),
        )
    )
    s = r["service"]
    http, peers = s["http"], s["peers"]
    bare = peers["bare"]["saturated"]["rps"]
    cerbos, cerbos_batch = peers["cerbos_check"], peers["cerbos_check_100"]
    at = f"{s['lines']:,} lines; Cerbos at {_peer_lines(r):,}"
    evaluation = http["evaluation"]
    rows.append(
        (
            f"evaluation, 1 worker: ≥ 70 % of the bare Litestar app's req/s ({at})",
            f"{evaluation['saturated']['rps']:,.0f} vs {bare:,.0f} req/s = {evaluation['saturated']['rps'] / bare:.0%}",
            _ok(evaluation["saturated"]["rps"] >= 0.7 * bare),
        )
    )
    for name in ("evaluation", "check"):
        ours, theirs = http[name]["saturated"]["p99_ms"], cerbos["saturated"]["p99_ms"]
        rows.append(
            (
                f"{name}, 1 worker: p99 ≤ Cerbos's p99 (32 connections)",
                f"{ours:.1f} vs {theirs:.1f} ms; req/s {http[name]['saturated']['rps']:,.0f} vs {cerbos['saturated']['rps']:,.0f}",
                _ok(ours <= theirs),
            )
        )
    check, single = http["check"]["saturated"]["rps"], evaluation["saturated"]["rps"]
    rows.append(
        ("`/v1/check` within 10 % of evaluation's req/s", f"{check / single:.0%} of it", _ok(check >= 0.9 * single))
    )
    ours_b = http["evaluations_100"]["saturated"]["rps"] * 100
    theirs_b = cerbos_batch["saturated"]["rps"] * 100
    rows.append(
        (
            "batches of 100: ≥ 2 × Cerbos's decisions/s, p99 ≤ Cerbos's",
            (
                f"{ours_b:,.0f} vs {theirs_b:,.0f} decisions/s (×{ours_b / theirs_b:.2f}); p99 "
                f"{http['evaluations_100']['saturated']['p99_ms']:.0f} vs {cerbos_batch['saturated']['p99_ms']:.0f} ms"
            ),
            _ok(
                ours_b >= 2 * theirs_b
                and http["evaluations_100"]["saturated"]["p99_ms"] <= cerbos_batch["saturated"]["p99_ms"]
            ),
        )
    )


def _t_queries(r: dict[str, Any], rows: list) -> None:
    """queries"""
    s, lines = r["service"], _lines(r)
    q = s["queries_http"]
    for name, label in (("who", "who may do X"), ("what", "what may Y do")):
        rows.append(
            (
                f'query "{label}": p50 ≤ 10 ms ({lines})',
                f"{q[name]['p50_ms']:.2f} ms over HTTP; {s['writes_inprocess'][name + '_ms']['p50']:.2f} ms in process",
                _ok(q[name]["p50_ms"] <= 10),
            )
        )


def _t_writes(r: dict[str, Any], rows: list) -> None:
    """writes"""
    s, lines = r["service"], _lines(r)
    w = s["writes_inprocess"]["changes"]
    total = [c["total_ms"] for c in w]
    rows.append(
        (
            f"one org change effective on the replica that took it: p99 ≤ 50 ms ({lines})",
            (
                f"p99 {percentile(total, 99):.1f} ms (store + refresh + check, in process; "
                f"{max(c['recompiled'] for c in w)} organisation(s) recompiled per change)"
            ),
            _ok(percentile(total, 99) <= 50 and all(c["ok"] for c in w)),
        )
    )
    took = s.get("propagation", {}).get("took_ms")
    if took:
        rows.append(
            (
                f"… through the admin API of a running replica ({lines})",
                f"p99 {percentile(took, 99):.1f} ms (PATCH answered, then a check on it shows the change)",
                _ok(percentile(took, 99) <= 50),
            )
        )


def _t_replicas(r: dict[str, Any], rows: list) -> None:
    """replicas"""
    s = r["service"]
    p = s["propagation"]
    others = p["others_ms"]
    rows.append(
        (
            "a change through one replica answered by the other two: p99 ≤ 250 ms",
            (
                f"p99 {percentile(others, 99):.0f} ms, max {max(others, default=float('nan')):.0f} ms over "
                f"{len(others)} answers; {len(p['failures'])} failure(s)"
            ),
            _ok(bool(others) and percentile(others, 99) <= 250 and not p["failures"]),
        )
    )
    sc = s["scaling"]
    gain = sc[1]["rps"] / sc[0]["rps"]
    echo_gain = sc[1]["echo_rps"] / sc[0]["echo_rps"]
    rows.append(
        (
            "decision throughput scales with processes up to the cores (2)",
            " → ".join(f"{x['rps']:,.0f}" for x in sc)
            + " req/s with "
            + ", ".join(str(x["replicas"]) for x in sc)
            + f" replicas: ×{gain:.2f} from 1 to 2; the trivial endpoint, same machine and load generator: "
            f"×{echo_gain:.2f} (met: at least 80 % of that)",
            _ok(gain >= 0.8 * echo_gain),
        )
    )


def _t_startup(r: dict[str, Any], rows: list) -> None:
    """start-up"""
    s, lines = r["service"], _lines(r)
    st = s["startup"]
    rows.append((f"start-up with {lines}: ready ≤ 15 s", f"{st['ready_s']:.1f} s", _ok(st["ready_s"] <= 15)))
    rss = max(st["rss_bytes"], s.get("rss_after_load_bytes", 0))
    rows.append(
        (
            "… resident memory ≤ 2 GiB",
            f"{rss / MB:,.0f} MiB (largest seen, after the HTTP runs)",
            _ok(rss <= 2 * 1024 * MB),
        )
    )


# What the issue measured "on this kind of machine for reference" at 1M lines: plain Enforcer ~1.8 s per
# request, FastEnforcer ~200 µs. The same engines measured in the same run tell how fast this machine was.
_REFERENCE_ENFORCER_US = 1.8e6
_REFERENCE_FAST_US = 200.0


def _gaps(r: dict[str, Any]) -> list[str]:
    """The causes of the missed targets, each stated with the figures of this run that show it."""
    out = ["## Gaps and their causes", ""]
    try:
        largest = r["sizes"][max(r["sizes"], key=int)]
        enforcer, fast = largest["casbin"]["engine"]["p50"], largest["fast"]["engine"]["p50"]
        ours = largest["dutyline"]["rules_plain"]["p50"]
        factor = enforcer / _REFERENCE_ENFORCER_US
        out.append(
            f"- **Machine speed (in-process targets).** At {largest['lines']:,} lines plain `Enforcer` took "
            f"{enforcer / 1e6:.2f} s per request here against the issue's ~1.8 s reference on this kind of machine "
            f"(×{factor:.1f}), FastEnforcer {_us(fast)} against ~200 µs (×{fast / _REFERENCE_FAST_US:.1f}). Dutyline, in "
            f"the same run, answered in {_us(ours)} p50 ({enforcer / ours:,.0f}× plain Enforcer, {fast / ours:,.0f}× "
            f"FastEnforcer); at the reference machine's speed that is about {_us(ours / factor)}. An absolute µs target "
            "missed in a run where the reference engines are this much slower is this machine, not a regression: "
            "compare the ratios."
        )
    except _MISSING:
        pass
    try:
        s = r["service"]
        http, sampled = s["http"], s["http_log_sampled"]
        full = http["evaluation"]["saturated"]["rps"] / http["echo"]["saturated"]["rps"]
        light = sampled["evaluation"]["saturated"]["rps"] / sampled["echo"]["saturated"]["rps"]
        extra = 1e6 / http["evaluation"]["saturated"]["rps"] - 1e6 / http["echo"]["saturated"]["rps"]
        extra_sampled = 1e6 / sampled["evaluation"]["saturated"]["rps"] - 1e6 / sampled["echo"]["saturated"]["rps"]
        service = r["sizes"][max(r["sizes"], key=int)]["dutyline"]["service_plain"]["p50"]
        out.append(
            f"- **HTTP against the ceiling.** With every decision logged (the default) evaluation reaches {full:.0%} of "
            f"the ceiling, {extra:.0f} µs per request more than the trivial endpoint; with the log sampled at 1 % "
            f"{light:.0%}, {extra_sampled:.0f} µs more. The first difference is the decision log: each decision is a "
            "row written to PostgreSQL by a thread that shares the interpreter with the decision path, and PostgreSQL "
            "runs on the same two cores as the server and `wrk`. What remains is the decision itself in a 1M-line "
            f"policy ({_us(service)} p50 for the whole decision service in process, cache misses included) plus its "
            "request and answer objects, against an endpoint that does nothing: on two shared cores, every µs of "
            "Python per request is throughput lost to the ratio."
        )
        per_item = 1e6 / (http["evaluations_100"]["saturated"]["rps"] * 100)
        out.append(
            f"- **Batches.** {per_item:.0f} µs per decision in a batch of 100, against {_us(service)} for the whole "
            "decision service in process: 100,000 decisions/s would need 10 µs per decision for everything (decoding, "
            "deciding with rules, metrics, logging, encoding) in one Python process on one core. Not reachable "
            "here; `--workers` and replicas multiply it."
        )
        took = s["propagation"]["took_ms"]
        inprocess = [c["total_ms"] for c in s["writes_inprocess"]["changes"]]
        out.append(
            f"- **A change through the admin API.** p99 {percentile(took, 99):.0f} ms from sending the PATCH to a check "
            f"showing it, against p99 {percentile(inprocess, 99):.0f} ms for storing and applying the same change in "
            "process. The rest is the admin path itself: the changed document validated as `dutyline validate` does, "
            "every rule pack of the organisation re-checked against it, the audit entry, then the HTTP round trips, "
            "while two other replicas run on the same cores."
        )
    except _MISSING:
        pass
    return [*out, ""] if len(out) > 2 else []


def _load(r: dict[str, Any]) -> str:
    values = [x[1] for x in r.get("load", [])]
    if not values:
        return "not recorded"
    return f"{min(values):.1f}–{max(values):.1f} (median {percentile(values, 50):.1f}; the machine has {r['machine']['cpus']} cores)"


def markdown(r: dict[str, Any]) -> str:
    s = r["service"]
    m = r["machine"]
    out = [
        "# Dutyline benchmark results",
        "",
        (
            f"{'Smoke run (`--quick`): small sizes, short loads; not the figures to quote.' if r['quick'] else 'Full run.'} "
            f"{m['cpus']} CPUs, Python {m['python']}, {m['platform']}; the suite took {r['elapsed_s'] / 60:.1f} min. "
            "Load generator, servers and PostgreSQL share the same cores, so absolute figures are pessimistic; the "
            "ratios against the references measured in the same run are the point. How to run it and what each "
            "figure means: [bench/README.md](../README.md)."
        ),
        "",
        f"1-minute load average while it ran: {_load(r)}.",
        "",
        "## Targets",
        "",
        "| target | measured | |",
        "|---|---|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in targets(r)],
        "",
        *_gaps(r),
        "## 1. In-process decisions (p50 / p99 per request)",
        "",
        (
            "Same generated family and the same requests for every engine (half of them something the person's active "
            "post is granted, half random; acting windows matter at the instant asked). *decision* is the duty decision; "
            "*with rules* adds the rules engine (each branch has a counter-transaction limit); *service* is the whole "
            "`DecisionService.answer` (organisation resolution, decision id, Prometheus metrics, decision-log queue). "
            "Casbin engines load the same policy from CSV; plain `Enforcer` is sampled (n requests) because it is linear "
            "in the policy. Every Casbin answer is compared with Dutyline's."
        ),
        "",
        (
            "| lines (orgs) | decision | with rules, no rule fires | with rules, limit within | with rules, limit fires "
            "| service | FastEnforcer | Enforcer (n) | disagreements |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for x in r["sizes"].values():
        d, f, c = x["dutyline"], x["fast"], x["casbin"]

        def pair(v: dict[str, float]) -> str:
            return f"{_us(v['p50'])} / {_us(v['p99'])}"

        out.append(
            f"| {x['lines']:,} ({x['orgs']}) | {pair(d['engine'])} | {pair(d['rules_plain'])} | "
            f"{pair(d['rules_limit_within'])} | {pair(d['rules_limit_above'])} | {pair(d['service_plain'])} | "
            f"{pair(f['engine'])} | {pair(c['engine'])} ({c['engine']['n']}) | "
            f"{f['disagreements']}/{f['compared']}, {c['disagreements']}/{c['compared']} |"
        )
    out += [
        "",
        (
            "| lines | Dutyline memory | Dutyline build (decode + compile) | rules build | FastEnforcer memory | "
            "FastEnforcer load | Enforcer memory | Enforcer load |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for x in r["sizes"].values():
        d, f, c = x["dutyline"], x["fast"], x["casbin"]
        out.append(
            f"| {x['lines']:,} | {d['memory_bytes'] / MB:,.0f} MiB | {d['build_s']:.2f} s | {d['rules_build_s']:.2f} s | "
            f"{f['memory_bytes'] / MB:,.0f} MiB | {f['build_s']:.2f} s | {c['memory_bytes'] / MB:,.0f} MiB | "
            f"{c['build_s']:.2f} s |"
        )
    out += ["", "![decision latency](latency.png) ![memory](memory.png)", ""]

    for section in (_m_http, _m_peers, _m_queries, _m_writes, _m_replicas, _m_startup):
        try:
            section(r, s, out)
        except _MISSING as exc:
            out += [f"*{section.__doc__}: not measured ({s.get('errors') or repr(exc)})*", ""]
    return "\n".join(out)


def _m_http(r: dict[str, Any], s: dict[str, Any], out: list[str]) -> None:
    """HTTP"""
    http = s["http"]
    out += [
        f"## 2. HTTP ({s['lines']:,} lines, one server process)",
        "",
        (
            "`wrk` (one thread) on loopback, 2,000 distinct request bodies in turn; `POST /bench/echo` is the ceiling: a "
            "trivial endpoint mounted in the same app (`DUTYLINE_BENCH_ECHO=1`) that decodes the JSON body and answers a "
            "constant. Decision log on (every decision written to PostgreSQL), as in production."
        ),
        "",
        "| endpoint | req/s (32 connections) | p50 / p99 | req/s (4 connections) | p50 / p99 | of the ceiling |",
        "|---|---|---|---|---|---|",
    ]
    echo = http["echo"]["saturated"]["rps"]
    for name, row in http.items():
        a, b = row["saturated"], row["light"]
        label = {
            "echo": "ceiling: `POST /bench/echo`",
            "evaluation": "`POST /access/v1/evaluation`",
            "check": "`POST /v1/check`",
            "evaluations_100": "`POST /access/v1/evaluations` (100 each)",
        }[name]
        extra = f" ({a['rps'] * 100:,.0f} decisions/s)" if name == "evaluations_100" else ""
        out.append(
            f"| {label} | {a['rps']:,.0f}{extra} | {a['p50_ms']:.2f} / {a['p99_ms']:.2f} ms | {b['rps']:,.0f} | "
            f"{b['p50_ms']:.2f} / {b['p99_ms']:.2f} ms | {a['rps'] / echo:.0%} |"
        )
    sampled = s.get("http_log_sampled")
    if sampled:
        echo2 = sampled["echo"]["saturated"]["rps"]
        out += [
            "",
            (
                "The same, on a server started with `DUTYLINE_DECISION_LOG_SAMPLE=0.01` (one decision in a hundred logged): "
                "the difference is what writing every decision to the log costs."
            ),
            "",
            "| endpoint | req/s (32 connections) | p50 / p99 | req/s (4 connections) | p50 / p99 | of the ceiling |",
            "|---|---|---|---|---|---|",
        ]
        for name, row in sampled.items():
            a, b = row["saturated"], row["light"]
            extra = f" ({a['rps'] * 100:,.0f} decisions/s)" if name == "evaluations_100" else ""
            out.append(
                f"| {name} | {a['rps']:,.0f}{extra} | {a['p50_ms']:.2f} / {a['p99_ms']:.2f} ms | {b['rps']:,.0f} | "
                f"{b['p50_ms']:.2f} / {b['p99_ms']:.2f} ms | {a['rps'] / echo2:.0%} |"
            )
    out += ["", "![HTTP](http.png)", ""]


def _peer_lines(r: dict[str, Any]) -> int:
    """The policy lines of the size Cerbos was loaded with for the HTTP runs."""
    size = r["service"]["peers"]["size"]
    return int(r["sizes"].get(str(size), r["sizes"].get(size, {"lines": size}))["lines"])


_PEER_ROWS = (
    # (label, where the figures are, key, decisions per request)
    ("bare Litestar app answering a constant (uvicorn, 1 worker)", "peers", "bare", 1),
    ("Dutyline `POST /bench/echo` (the ceiling inside Dutyline's app)", "http", "echo", 1),
    ("Dutyline `POST /access/v1/evaluation`, 1 worker", "http", "evaluation", 1),
    ("Dutyline `POST /v1/check`, 1 worker", "http", "check", 1),
    ("Cerbos `POST /api/check/resources`, 1 resource", "peers", "cerbos_check", 1),
    ("Cerbos `POST /access/v1/evaluation` (AuthZEN)", "peers", "cerbos_authzen", 1),
    ("batches: Dutyline `POST /access/v1/evaluations`, 100 each", "http", "evaluations_100", 100),
    ("batches: Cerbos `POST /api/check/resources`, 100 resources", "peers", "cerbos_check_100", 100),
    ("batches: Cerbos `POST /access/v1/evaluations` (AuthZEN), 100 each", "peers", "cerbos_authzen_100", 100),
)


def _m_peers(r: dict[str, Any], s: dict[str, Any], out: list[str]) -> None:
    """Beside Cerbos"""
    out += [
        "## 2b. Beside Cerbos and a bare Litestar app",
        "",
        (
            "Cerbos is given the same organisations (`bench/cerbos_policies.py`): one resource policy per organisation "
            "and resource type (kind `<org>.<type>`), each post's compiled permissions as rules, a deny written as a "
            "condition on the allow rules of the same action (Cerbos allows when any role allows; Dutyline denies when "
            "any active post denies), the person's active posts as the principal's roles. Audit log off in Cerbos; "
            "every Dutyline decision logged. Agreement: the same requests (the first 2,000 of each size, those no "
            "business rule touches) asked of Dutyline's decision core in process and of Cerbos over HTTP; AuthZEN "
            "maps `subject.type` to one role, so only people with one active post are asked that way."
        ),
        "",
        "| lines | policies | Cerbos ready | Cerbos memory | agreement, native | agreement, AuthZEN |",
        "|---|---|---|---|---|---|",
    ]
    for x in r["sizes"].values():
        c = x.get("cerbos")
        if not c:
            continue
        if "ready_s" not in c:
            out.append(f"| {x['lines']:,} | {c['policies']:,} | not loaded: {c.get('not_loaded')} | | | |")
            continue
        a = c["agreement"]
        out.append(
            f"| {x['lines']:,} | {c['policies']:,} | {c['ready_s']:.1f} s | {c['rss_bytes'] / MB:,.0f} MiB | "
            f"{a['native']['disagreements']} of {a['native']['compared']:,} disagree | "
            f"{a['authzen']['disagreements']} of {a['authzen']['compared']:,} disagree "
            f"({a['authzen']['multi_post_left_out']} multi-post left out) |"
        )
    if r.get("cerbos_unavailable"):
        out += ["", f"Cerbos unavailable: {r['cerbos_unavailable']}"]
    peers = s["peers"]
    out += [
        "",
        (
            f"HTTP in the same run, one after another on the same cores, `wrk` one thread: Dutyline at {s['lines']:,} "
            f"lines, Cerbos {peers['version']} at {_peer_lines(r):,} (the largest size it loaded; a smaller family is "
            "the first branches of the larger). A Cerbos batch has one principal and 100 resources of its "
            "organisation; Dutyline's and AuthZEN's batches have a subject per item."
        ),
        "",
        "| server | req/s (32 connections) | decisions/s | p50 / p99 | req/s (4 connections) | p50 / p99 |",
        "|---|---|---|---|---|---|",
    ]
    for label, where, key, per in _PEER_ROWS:
        row = s[where].get(key)
        if row is None:
            continue
        a, b = row["saturated"], row["light"]
        failed = a["errors"] + b["errors"]
        if failed:  # wrk's socket errors and timeouts (2 s), and non-2xx answers
            label += f" ({failed} errors or timeouts)"
        out.append(
            f"| {label} | {a['rps']:,.0f} | {a['rps'] * per:,.0f} | {a['p50_ms']:.2f} / {a['p99_ms']:.2f} ms | "
            f"{b['rps']:,.0f} | {b['p50_ms']:.2f} / {b['p99_ms']:.2f} ms |"
        )
    out += ["", "![beside Cerbos](peers.png)", ""]


def _m_queries(r: dict[str, Any], s: dict[str, Any], out: list[str]) -> None:
    """Queries"""
    q = s["queries_http"]
    wi = s["writes_inprocess"]
    out += [
        f"## 3. Queries ({s['lines']:,} lines)",
        "",
        "One request at a time over HTTP (p50 / p99), and the same question in process.",
        "",
        "| query | HTTP | in process |",
        "|---|---|---|",
        (
            f"| who may do X: `GET /v1/orgs/{{org}}/who` | {q['who']['p50_ms']:.2f} / {q['who']['p99_ms']:.2f} ms | "
            f"{wi['who_ms']['p50']:.3f} / {wi['who_ms']['p99']:.3f} ms |"
        ),
        (
            f"| what may Y do: `GET /v1/orgs/{{org}}/people/{{p}}/permissions` | {q['what']['p50_ms']:.2f} / "
            f"{q['what']['p99_ms']:.2f} ms | {wi['what_ms']['p50']:.3f} / {wi['what_ms']['p99']:.3f} ms |"
        ),
        f"| AuthZEN subject search | {q['search_subject']['p50_ms']:.2f} / {q['search_subject']['p99_ms']:.2f} ms | |",
        "",
    ]


def _m_writes(r: dict[str, Any], s: dict[str, Any], out: list[str]) -> None:
    """Writes"""
    wi = s["writes_inprocess"]
    changes = wi["changes"]
    out += [
        f"## 4. Writes ({s['lines']:,} lines)",
        "",
        (
            f"In process, on PostgreSQL: store the changed document (one transaction), `PolicyService.refresh()`, then a "
            f"check that shows the change. The first load of the whole policy from the database took {wi['load_s']:.1f} s; "
            f"after it, each refresh recompiled {sorted({c['recompiled'] for c in changes})} organisation(s) — no full "
            f"reload. {sum(not c['ok'] for c in changes)} of {len(changes)} checks did not show their change."
        ),
        "",
        "| change | n | store p50 / p99 | refresh p50 / p99 | total p50 / p99 |",
        "|---|---|---|---|---|",
    ]
    for kind in sorted({c["kind"] for c in changes}):
        rows = [c for c in changes if c["kind"] == kind]

        def pp(key: str, rows: list = rows) -> str:
            v = [c[key] for c in rows]
            return f"{percentile(v, 50):.1f} / {percentile(v, 99):.1f} ms"

        out.append(f"| {kind} | {len(rows)} | {pp('store_ms')} | {pp('refresh_ms')} | {pp('total_ms')} |")
    out += [
        "",
        "What one change costs if a single organisation held everything (compile and encode that organisation):",
        "",
        "| one organisation of | compile | encode (stored as JSON) |",
        "|---|---|---|",
        *[
            f"| {c['lines']:,} lines | {c['compile_ms']:,.0f} ms | {c['encode_ms']:,.0f} ms |"
            for c in r["compile_one_org"]
        ],
        "",
    ]


def _m_replicas(r: dict[str, Any], s: dict[str, Any], out: list[str]) -> None:
    """Replicas"""
    p = s["propagation"]
    out += [
        "## 5. Replicas",
        "",
        (
            f"Three `dutyline serve` processes on one PostgreSQL schema, {s['lines']:,} lines each. Changes (moves, duties, "
            f"limits in turn) through {p['via']}; the other replicas are asked (`POST /v1/check`, every 2 ms) until "
            "they answer with the change. Propagation is PostgreSQL LISTEN/NOTIFY (the 1 s polling refresh is the "
            "fallback)."
        ),
        "",
        "| | n | p50 | p99 | max |",
        "|---|---|---|---|---|",
    ]
    for label, values in (
        ("replica that took it (PATCH answered, then its check)", p["took_ms"]),
        ("the other two replicas, from the PATCH being sent", p["others_ms"]),
        ("the other two replicas, from the PATCH being answered", p.get("others_after_answer_ms", [])),
    ):
        if values:
            out.append(
                f"| {label} | {len(values)} | {percentile(values, 50):.1f} ms | {percentile(values, 99):.1f} ms | "
                f"{max(values):.1f} ms |"
            )
    if p["failures"]:
        out += ["", "Failures: " + "; ".join(p["failures"][:10])]
    out += [
        "",
        "Decision throughput (`POST /v1/check`) with 1, 2 and 3 replicas, each driven by its own `wrk` at the same time:",
        "",
        "| replicas | `/v1/check` req/s (sum) | worst p99 | ceiling `/bench/echo` req/s (sum) |",
        "|---|---|---|---|",
        *[
            f"| {x['replicas']} | {x['rps']:,.0f} | {x['p99_ms']:.1f} ms | {x.get('echo_rps', float('nan')):,.0f} |"
            for x in s["scaling"]
        ],
        "",
        "![writes and propagation](writes.png) ![scaling](scaling.png)",
        "",
    ]


def _m_startup(r: dict[str, Any], s: dict[str, Any], out: list[str]) -> None:
    """Start-up"""
    out += [
        "## 6. Start-up",
        "",
        (
            f"A replica with {s['lines']:,} lines in PostgreSQL was ready (`/readyz` 200) {s['startup']['ready_s']:.1f} s "
            f"after it was spawned, at {s['startup']['rss_bytes'] / MB:,.0f} MiB resident "
            f"({s.get('rss_after_load_bytes', 0) / MB:,.0f} MiB after the HTTP runs). Loading the family into PostgreSQL "
            f"(one transaction) took {s['store_load_s']:.1f} s."
        ),
        "",
    ]


def plots(r: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = list(r["sizes"].values())
    lines = [x["lines"] for x in sizes]

    fig, ax = plt.subplots(figsize=(7, 4.5))
    series = [
        ("Dutyline decision", lambda x: x["dutyline"]["engine"]),
        ("Dutyline with rules", lambda x: x["dutyline"]["rules_plain"]),
        ("Dutyline, limit rule fires", lambda x: x["dutyline"]["rules_limit_above"]),
        ("Dutyline service (all)", lambda x: x["dutyline"]["service_plain"]),
        ("casbin.FastEnforcer", lambda x: x["fast"]["engine"]),
        ("casbin.Enforcer (sampled)", lambda x: x["casbin"]["engine"]),
    ]
    for label, get in series:
        (line,) = ax.plot(lines, [get(x)["p50"] for x in sizes], marker="o", label=f"{label} p50")
        ax.plot(lines, [get(x)["p99"] for x in sizes], marker=".", linestyle="--", color=line.get_color(), alpha=0.6)
    ax.axhline(10, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("policy lines")
    ax.set_ylabel("latency per decision, µs (solid p50, dashed p99)")
    ax.set_title("In-process decision latency")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, key in (("Dutyline", "dutyline"), ("casbin.FastEnforcer", "fast"), ("casbin.Enforcer", "casbin")):
        ax.plot(lines, [max(x[key]["memory_bytes"], 1) / MB for x in sizes], marker="o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("policy lines")
    ax.set_ylabel("resident memory added, MiB")
    ax.set_title("Memory of the loaded policy")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "memory.png", dpi=110)
    plt.close(fig)

    http = r["service"].get("http", {})
    names = list(http)
    fig, ax = plt.subplots(figsize=(7, 4))
    values = [http[n]["saturated"]["rps"] for n in names]
    bars = ax.bar(names, values, color=["grey"] + ["tab:blue"] * (len(names) - 1))
    for bar, n in zip(bars, names):
        ax.annotate(
            f"p99 {http[n]['saturated']['p99_ms']:.1f} ms",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_ylabel("requests/s (32 connections)")
    ax.set_title(f"HTTP, {r['service']['lines']:,} lines, one process (grey: the ceiling)")
    fig.tight_layout()
    fig.savefig(out / "http.png", dpi=110)
    plt.close(fig)

    _plot_peers(plt, r, out)

    fig, ax = plt.subplots(figsize=(7, 4))
    propagated = r["service"].get("propagation", {})
    groups = [
        ("write, in process", [c["total_ms"] for c in r["service"].get("writes_inprocess", {}).get("changes", [])]),
        ("write via admin API, same replica", propagated.get("took_ms", [])),
        ("other replicas answer", propagated.get("others_ms", [])),
    ]
    for label, values in groups:
        if values:
            ordered = sorted(values)
            ax.plot(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))], label=label)
    ax.axvline(50, color="grey", linewidth=0.8, linestyle=":")
    ax.axvline(250, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xscale("log")
    ax.set_xlabel("ms from the write until decisions show it")
    ax.set_ylabel("fraction of changes")
    ax.set_title("Writes and propagation (CDF)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "writes.png", dpi=110)
    plt.close(fig)

    sc = r["service"].get("scaling")
    if not sc:
        return
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([x["replicas"] for x in sc], [x["rps"] for x in sc], marker="o", label="POST /v1/check")
    if all("echo_rps" in x for x in sc):
        ax.plot(
            [x["replicas"] for x in sc], [x["echo_rps"] for x in sc], marker="o", color="grey", label="ceiling (echo)"
        )
    ax.legend(fontsize=8)
    ax.set_xticks([x["replicas"] for x in sc])
    ax.set_xlabel("replicas (processes)")
    ax.set_ylabel("req/s, total")
    ax.set_ylim(bottom=0)
    ax.set_title(f"Throughput vs processes ({r['machine']['cpus']} cores)")
    fig.tight_layout()
    fig.savefig(out / "scaling.png", dpi=110)
    plt.close(fig)


def _plot_peers(plt: Any, r: dict[str, Any], out: Path) -> None:
    s = r["service"]
    if "peers" not in s or "http" not in s:
        return
    fig, axes = plt.subplots(2, 1, figsize=(8.5, 7), height_ratios=[6, 3])
    for ax, batch in zip(axes, (False, True)):
        rows = [(lab, s[w][k], per) for lab, w, k, per in _PEER_ROWS if (per > 1) == batch and k in s[w]]
        labels = [lab.replace("batches: ", "").split(" (")[0].replace("`", "") for lab, _, _ in rows]
        values = [row["saturated"]["rps"] * per for _, row, per in rows]
        colours = [
            "grey" if "bare" in lab or "echo" in lab else "tab:orange" if "Cerbos" in lab else "tab:blue"
            for lab, _, _ in rows
        ]
        bars = ax.barh(labels, values, color=colours)
        for bar, (_, row, _) in zip(bars, rows):
            ax.annotate(
                f" p99 {row['saturated']['p99_ms']:.1f} ms / {row['light']['p99_ms']:.1f} ms",
                (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                va="center",
                fontsize=7,
            )
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=7)
        ax.set_xlabel("decisions/s, 32 connections (labels: p99 at 32 / at 4 connections)", fontsize=8)
        ax.set_title("batches of 100" if batch else "single decisions", fontsize=9)
        ax.set_xlim(right=max(values, default=1) * 1.6)
    fig.suptitle(
        f"Dutyline ({s['lines']:,} lines) beside Cerbos ({_peer_lines(r):,} lines), one process each", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(out / "peers.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    import sys

    source = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "results"
    data = json.loads((source / "results.json").read_text())
    write(data, source)
