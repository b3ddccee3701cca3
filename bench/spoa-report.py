"""Turns the raw points of bench/spoa.sh into bench/results/spoa.json and
spoa.md: every figure beside its baselines from the same run, as ratios, and
one line per aim of the issue saying met or not met, with the numbers.

A point whose load generator saw errors, refusals or non-2xx answers is
reported as invalid, never as a number, and its ratios are left out.

The end-to-end points run in rounds (NAME.r1 .. NAME.rN, RR_BENCH_ROUNDS). A
configuration's row is its median round (by req/s; by p99 at light load),
with the spread over the rounds; a ratio is taken round by round (the two
points closest in time) and the median of those is reported. One invalid
round makes the row invalid.

Usage: /usr/bin/python3 bench/spoa-report.py RAW_DIR OUT_JSON OUT_MD [DOC_MD]
DOC_MD (docs/benchmarks.md) gets the table between its
"<!-- spoa-results:begin -->" and "<!-- spoa-results:end -->" lines.
"""
import datetime
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

NOISY_CORES = 0.15  # other processes using more than this during a point

AGENT_CASES = [
    ("hs256_hit", "agent-hs256-hit", "HS256, cache hit (1 token)"),
    ("hs256_miss", "agent-hs256-miss", "HS256, cache miss (--cache-size 0, unique tokens)"),
    ("rs256_hit", "agent-rs256-hit", "RS256, cache hit (1 token)"),
    ("rs256_miss", "agent-rs256-miss", "RS256, cache miss (--cache-size 0, unique tokens)"),
]

# key, raw name, label, the (b) point of the same algorithm (None for (a) and (b))
E2E_CASES = [
    ("a_noauth", "e2e-a-noauth", "(a) no auth", None),
    ("b_rs256", "e2e-b-rs256", "(b) native jwt_verify RS256", None),
    ("b_hs256", "e2e-b-hs256", "(b) native jwt_verify HS256", None),
    ("bplus_hs256", "e2e-bplus-hs256", "(b+) native jwt_verify HS256, exp check, sub header",
     None),
    ("c_hs256_hit", "e2e-c-hs256-hit", "(c) roomrelay-spoa HS256, cache hit", "b_hs256"),
    ("c_rs256_hit", "e2e-c-rs256-hit", "(c) roomrelay-spoa RS256, cache hit", "b_rs256"),
    ("c_hs256_miss", "e2e-c-hs256-miss", "(c) roomrelay-spoa HS256, cache miss", "b_hs256"),
    ("c_rs256_miss", "e2e-c-rs256-miss", "(c) roomrelay-spoa RS256, cache miss", "b_rs256"),
    ("c_hs256_hit_shipped", "e2e-c-hs256-hit-shipped",
     "(c) with the shipped haproxy.cfg (JSON /demo answer), HS256, cache hit", "b_hs256"),
    ("c_hs256_hit_unix", "e2e-c-hs256-hit-unix",
     "(c) agent on a Unix socket (--listen unix@PATH), HS256, cache hit", "b_hs256"),
]

LIGHT_CASES = [
    ("a_noauth", "e2e-a-noauth-light", "(a) no auth"),
    ("b_rs256", "e2e-b-rs256-light", "(b) native jwt_verify RS256"),
    ("c_rs256_hit", "e2e-c-rs256-hit-light", "(c) roomrelay-spoa RS256, cache hit"),
    ("c_rs256_miss", "e2e-c-rs256-miss-light", "(c) roomrelay-spoa RS256, cache miss"),
]


load_json = benchlib.load_json


def point(raw, name):
    return load_json(os.path.join(raw, name + ".json")), load_json(
        os.path.join(raw, name + ".cpu.json")) or {}


def agent_point(raw, name):
    r, cpu = point(raw, name)
    if r is None:
        return {"valid": False, "why": "spop-load gave no result", "cpu": cpu}
    p = dict(r)
    p["cpu"] = cpu
    if not r.get("valid"):
        p["why"] = r.get("first_error") or (
            f"{r.get('auth_false', 0)} refused, {r.get('errors', 0)} errors")
        if r.get("auth_true", 0) == 0:
            p["why"] = "no token accepted: " + p["why"]
    agent_cpu = cpu.get("agent", 0)
    p["rps_per_agent_core"] = round(r["rps"] / agent_cpu) if agent_cpu > 0.05 else None
    return p


def wrk_point(raw, name):
    r, cpu = point(raw, name)
    if r is None:
        return {"valid": False, "why": "wrk gave no result", "cpu": cpu}
    p = dict(r)
    p["cpu"] = cpu
    errors = {k: r[k] for k in ("non2xx", "connect_errors", "read_errors", "write_errors",
                                "timeouts") if r.get(k)}
    p["valid"] = r.get("requests", 0) > 0 and not errors and cpu.get("exit", 0) == 0
    if not p["valid"]:
        p["why"] = ", ".join(f"{v} {k}" for k, v in errors.items()) or "no requests"
    return p


def ratio(num, den):
    if not num or not den or not num.get("valid") or not den.get("valid"):
        return None
    return num, den


def rps_ratio(num, den):
    pair = ratio(num, den)
    return round(pair[0]["rps"] / pair[1]["rps"], 3) if pair and pair[1]["rps"] else None


def p99_ratio(num, den):
    pair = ratio(num, den)
    return round(pair[0]["p99_us"] / pair[1]["p99_us"], 3) if pair and pair[1]["p99_us"] else None


def p99_added_ms(num, den):
    pair = ratio(num, den)
    return round((pair[0]["p99_us"] - pair[1]["p99_us"]) / 1000.0, 3) if pair else None


def per_round(fn, nums, dens):
    """The median over the rounds of fn(round's point, same round's baseline);
    None if any round has no value."""
    vals = [fn(c, b) for c, b in zip(nums, dens)]
    if not vals or any(v is None for v in vals):
        return None
    return round(statistics.median(vals), 3)


def median_point(points, key):
    """The round whose `key` is the median (the lower middle one for an even
    count), with `key`'s smallest and largest value over the rounds; invalid,
    with the first bad round's reason, if any round is."""
    for i, p in enumerate(points):
        if not p.get("valid"):
            bad = dict(p)
            bad["why"] = f"round {i + 1} of {len(points)}: {p.get('why', '?')}"
            return bad
    ordered = sorted(points, key=lambda p: p[key])
    m = dict(ordered[(len(ordered) - 1) // 2])
    m["rounds"] = len(points)
    m["spread"] = [ordered[0][key], ordered[-1][key]]
    return m


def machine():
    return benchlib.machine(haproxy=(["haproxy", "-v"], r"HAProxy version (\S+)"),
                            wrk=(["wrk", "-v"], r"wrk (\S+)"),
                            openssl=(["openssl", "version"], r"OpenSSL (\S+)"))


def fmt_num(v, digits=0):
    return "–" if v is None else f"{v:,.{digits}f}"


def fmt_ratio(v):
    return "–" if v is None else f"{v:.2f}x"


def fmt_cpu(cpu, key):
    return f"{cpu[key]:.2f}" if key in cpu else "–"


def first_cell(p, key):
    """The first figure of a row, or why the row has none."""
    if not p.get("valid"):
        return f"**invalid** ({p.get('why', '?')})"
    return fmt_num(p[key])


def cell(p, key, scale=1.0, digits=0):
    return fmt_num(p[key] / scale, digits) if p.get("valid") else "–"


def spread(p):
    """" (lowest–highest)" over the rounds, for a valid point of 2 rounds or more."""
    if not p.get("valid") or p.get("rounds", 1) < 2:
        return ""
    return f" ({fmt_num(p['spread'][0])}–{fmt_num(p['spread'][1])})"


def is_noisy(*points):
    return any(p.get("cpu", {}).get("other", 0) > NOISY_CORES for p in points)


def aims(e2e, light, ratios, light_added):
    """Each aim's verdict, from the medians over the rounds; one judged on a
    noisy point says so."""
    out = []

    def line(text, met, detail, *points):
        out.append({"aim": text, "met": met, "noisy": is_noisy(*points), "detail": detail})

    def faster(text, key, bkey, floor):
        c, b = e2e[key], e2e[bkey]
        r = ratios.get(key, {}).get("rps_vs_b")
        line(text, None if r is None else r >= floor,
             "invalid point" if r is None else
             f"(c) {c['rps']:,.0f} req/s vs (b) {b['rps']:,.0f} req/s (median rounds); "
             f"median of the per-round ratios {r:.2f}x", c, b)

    for alg in ("hs256", "rs256"):
        faster(f"cache hits, {alg.upper()}: (c) at least as fast as (b)", f"c_{alg}_hit",
               f"b_{alg}", 1.0)
    faster("uncached RS256: (c) within 0.8x of (b)", "c_rs256_miss", "b_rs256", 0.8)

    def added(label, d, where, c, a):
        text = f"the agent adds under 1 ms at p99 ({label}, {where})"
        if d is None:
            line(text, None, "invalid point", c, a)
        else:
            line(text, d < 1.0, f"{d:+.2f} ms (median of the per-round differences)", c, a)

    for key, label in (("c_rs256_hit", "RS256 cache hit"), ("c_rs256_miss", "RS256 cache miss")):
        added(label, light_added.get(key), "1 connection", light[key], light["a_noauth"])
    for key, label in (("c_rs256_hit", "RS256 cache hit"), ("c_rs256_miss", "RS256 cache miss")):
        added(label, ratios[key].get("p99_added_ms"), "saturated", e2e[key], e2e["a_noauth"])
    return out


def markdown(doc):
    m, prm = doc["machine"], doc["params"]
    L = []
    L.append(f"Run {doc['date']} on {m['cores']} × {m['cpu']}, Linux {m['kernel']}, "
             f"HAProxy {m['haproxy']}, wrk {m['wrk']}, OpenSSL {m['openssl']}.")
    if prm.get("agent", "build/roomrelay-spoa") != "build/roomrelay-spoa":
        L.append("")
        L.append(f"Agent binary: `{prm['agent']}` (RR_BENCH_AGENT), not build/roomrelay-spoa.")
    L.append("")
    L.append(f"Agent alone: roomrelay-spoa `--threads 1` on core 0, spop-load on core 1, "
             f"{prm['spop_connections']} connections × {prm['spop_pipeline']} NOTIFYs in "
             f"flight, 1 s warmup then {prm['duration_s']} s.")
    L.append("")
    L.append("| case | check-token/s | agent CPU (cores) | per agent core | p50 µs | p99 µs "
             "| p99.9 µs | load CPU | other CPU |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key, _, label in AGENT_CASES:
        p = doc["agent_alone"][key]
        cpu = p.get("cpu", {})
        L.append(f"| {label} | {first_cell(p, 'rps')} | {fmt_cpu(cpu, 'agent')} | "
                 f"{fmt_num(p.get('rps_per_agent_core')) if p.get('valid') else '–'} | "
                 f"{cell(p, 'p50_us', digits=1)} | {cell(p, 'p99_us', digits=1)} | "
                 f"{cell(p, 'p999_us', digits=1)} | {fmt_cpu(cpu, 'load')} | "
                 f"{fmt_cpu(cpu, 'other')} |")
    L.append("")
    rounds = prm.get("rounds", 1)
    L.append(f"End to end: wrk (1 thread, {prm['wrk_connections']} connections, "
             f"{prm['duration_s']} s) on core 1 → HAProxy `nbthread 1` on core 0; in (c) "
             f"the agent (`--threads 1`) shares core 0 with HAProxy. {rounds} rounds, each "
             f"running every configuration once: a row is its median round (req/s from the "
             f"slowest to the fastest round in brackets). Ratios are req/s (higher is "
             f"better) and p99 (lower is better) against (a) and against (b) of the same "
             f"algorithm, taken round by round, median of the rounds.")
    L.append("")
    L.append("| configuration | req/s (spread) | p99 ms | req/s vs (a) | req/s vs (b) "
             "| p99 vs (a) | p99 vs (b) | HAProxy CPU | agent CPU | other CPU |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key, _, label, bkey in E2E_CASES:
        p = doc["end_to_end"][key]
        r = doc["ratios"].get(key, {})
        cpu = p.get("cpu", {})
        base = "1.00x" if p.get("valid") else "–"
        L.append(f"| {label} | {first_cell(p, 'rps')}{spread(p)} | {cell(p, 'p99_us', 1000, 2)} | "
                 f"{fmt_ratio(r.get('rps_vs_a')) if key != 'a_noauth' else base} | "
                 f"{fmt_ratio(r.get('rps_vs_b')) if bkey else '–'} | "
                 f"{fmt_ratio(r.get('p99_vs_a')) if key != 'a_noauth' else base} | "
                 f"{fmt_ratio(r.get('p99_vs_b')) if bkey else '–'} | "
                 f"{fmt_cpu(cpu, 'haproxy')} | "
                 f"{fmt_cpu(cpu, 'agent') if key.startswith('c_') else '–'} | "
                 f"{fmt_cpu(cpu, 'other')} |")
    L.append("")
    L.append(f"Light load: the same, with 1 connection for {prm['light_duration_s']} s "
             f"(latency without queueing), in the same rounds: a row is its median round by "
             f"p99 (p99 from the lowest to the highest round in brackets); *p99 added* is "
             f"taken round by round, median of the rounds.")
    L.append("")
    L.append("| configuration | req/s | p50 µs | p99 µs (spread) | p99 added vs (a) | other CPU |")
    L.append("|---|---:|---:|---:|---:|---:|")
    for key, _, label in LIGHT_CASES:
        p = doc["light"][key]
        add = doc["light_p99_added_ms"].get(key)
        add = "–" if add is None else f"{add:+.2f} ms"
        L.append(f"| {label} | {first_cell(p, 'rps')} | {cell(p, 'p50_us')} | "
                 f"{cell(p, 'p99_us')}{spread(p)} | {add} | "
                 f"{fmt_cpu(p.get('cpu', {}), 'other')} |")
    L.append("")
    L.append("Aims:")
    L.append("")
    for a in doc["aims"]:
        verdict = {True: "**met**", False: "**not met**", None: "**not measured**"}[a["met"]]
        if a["noisy"] and a["met"] is not None:
            verdict += " (on a noisy point: do not trust this verdict)"
        L.append(f"- {a['aim']}: {verdict}, {a['detail']}")
    r = doc["ratios"].get("c_hs256_hit", {}).get("rps_vs_bplus")
    if r is not None:
        L.append("")
        L.append(f"For reference (not an aim): HS256 cache hits, (c) vs (b+), the native "
                 f"check with the `exp` test and `sub` header a user adds by hand: "
                 f"{r:.2f}x (median of the per-round ratios).")
    if doc["noisy_points"]:
        L.append("")
        L.append("⚠ Other processes used more than "
                 f"{NOISY_CORES} of a core during: {', '.join(doc['noisy_points'])}. "
                 "Those figures are noisy; run again on a quiet machine.")
    return "\n".join(L) + "\n"


def main():
    raw, out_json, out_md = sys.argv[1:4]
    params = load_json(os.path.join(raw, "params.json")) or {}
    with open("/proc/loadavg") as f:
        params["loadavg_after"] = " ".join(f.read().split()[:3])

    agent = {k: agent_point(raw, n) for k, n, _ in AGENT_CASES}
    n = int(params.get("rounds", 1))
    e2e_r = {k: [wrk_point(raw, f"{name}.r{r}") for r in range(1, n + 1)]
             for k, name, _, _ in E2E_CASES}
    light_r = {k: [wrk_point(raw, f"{name}.r{r}") for r in range(1, n + 1)]
               for k, name, _ in LIGHT_CASES}
    e2e = {k: median_point(pts, "rps") for k, pts in e2e_r.items()}
    light = {k: median_point(pts, "p99_us") for k, pts in light_r.items()}

    ratios = {}
    for key, _, _, bkey in E2E_CASES:
        if key == "a_noauth":
            continue
        a = e2e_r["a_noauth"]
        r = {"rps_vs_a": per_round(rps_ratio, e2e_r[key], a),
             "p99_vs_a": per_round(p99_ratio, e2e_r[key], a),
             "p99_added_ms": per_round(p99_added_ms, e2e_r[key], a)}
        if bkey:
            r["rps_vs_b"] = per_round(rps_ratio, e2e_r[key], e2e_r[bkey])
            r["p99_vs_b"] = per_round(p99_ratio, e2e_r[key], e2e_r[bkey])
        if bkey == "b_hs256":
            r["rps_vs_bplus"] = per_round(rps_ratio, e2e_r[key], e2e_r["bplus_hs256"])
        ratios[key] = r
    light_added = {key: per_round(p99_added_ms, pts, light_r["a_noauth"])
                   for key, pts in light_r.items() if key != "a_noauth"}

    noisy = [f"agent alone {key}" for key, p in agent.items() if is_noisy(p)]
    noisy += [f"{group} {key} (round {i + 1})"
              for group, cases in (("end to end", e2e_r), ("light", light_r))
              for key, pts in cases.items() for i, p in enumerate(pts) if is_noisy(p)]

    doc = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "params": params,
        "agent_alone": agent,
        "end_to_end": e2e,
        "light": light,
        "ratios": ratios,
        "light_p99_added_ms": light_added,
        "noisy_points": noisy,
    }
    doc["aims"] = aims(e2e, light, ratios, light_added)
    table = markdown(doc)

    with open(out_json, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    with open(out_md, "w") as f:
        f.write("# roomrelay-spoa benchmark (`make bench-spoa`)\n\n" + table)
    if len(sys.argv) > 4:
        benchlib.replace_between_markers(sys.argv[4], "spoa-results", table, "spoa-report")


if __name__ == "__main__":
    main()
