#!/usr/bin/python3
"""Turns bench/backend.sh's raw results into JSON and Markdown.

Usage: backend-report.py RAW_DIR OUT.json OUT.md DOCS.md MODE

RAW_DIR holds params.json, one roomrelay-bench JSON per server and test
(SERVER-TEST.json: idle, latency1..N, saturation) and skipped-SERVER.json for a
peer that could not run. Every figure is shown beside the raw-fanout baseline
of the same run, as a ratio; the issue's targets get a met / not met line.
The Markdown also replaces the part of DOCS.md between the markers
<!-- backend-results:begin/end --> (MODE backend) or
<!-- backend-peers-results:begin/end --> (MODE peers).
"""
import datetime
import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

NAMES = {
    "backend": "roomrelay-backend",
    "raw": "raw-fanout (baseline)",
    "node_ws": "node ws",
    "nchan": "nchan (nginx)",
}
ORDER = ["backend", "raw", "node_ws", "nchan"]
RSS_TARGET = 1024  # bytes of user-space RSS per idle connection
P99_TARGET = 1.25  # x the baseline's p99 at the same rate
SAT_RAW_TARGET = 0.70
SAT_NODE_TARGET = 10.0
NOISY_CPU = 0.2  # cores used by other processes during a run: above, the run is left out


load = benchlib.load_json


def machine():
    m = benchlib.machine(node=(["node", "--version"], r"(.+)"), nginx=(["nginx", "-v"], r"(.+)"))
    m["ws"] = (load("node_modules/ws/package.json") or {}).get("version")
    return m


def fmt_int(v):
    return "–" if v is None else f"{v:,.0f}"


def fmt_ms(us):
    return "–" if us is None else f"{us / 1000:,.2f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(r):
    return "–" if r is None else f"{r:.2f}x"


def verdict(ok):
    return "**met**" if ok else "**not met**"


def main():
    raw_dir, out_json, out_md, docs, mode = sys.argv[1:6]
    params = load(os.path.join(raw_dir, "params.json")) or {}
    runs, skipped = {}, {}
    for path in glob.glob(os.path.join(raw_dir, "*.json")):
        base = os.path.basename(path)[:-5]
        if base == "params":
            continue
        if base.startswith("skipped-"):
            s = load(path)
            skipped[s["server"]] = s["skipped"]
            continue
        server, test = base.rsplit("-", 1)
        runs.setdefault(server, {})[test] = load(path)
    servers = [s for s in ORDER if s in runs]

    def get(server, test):
        return runs.get(server, {}).get(test)

    def step0(server, test):
        r = get(server, test)
        return r["steps"][0] if r and r.get("steps") else None

    def latency_runs(server):
        tests = sorted(t for t in runs.get(server, {}) if t.startswith("latency"))
        return [st for st in (step0(server, t) for t in tests) if st]

    def clean_runs(server):
        """The runs other processes did not disturb; all of them if none is clean."""
        lr = latency_runs(server)
        return [st for st in lr if st["other_cpu"] <= NOISY_CPU] or lr

    def latency(server):
        """The clean run with the median p99 (the lower middle one of an even count)."""
        lr = sorted(clean_runs(server), key=lambda st: st["p99_us"])
        return lr[(len(lr) - 1) // 2] if lr else None

    def run_p99(st):
        noisy = st["other_cpu"] > NOISY_CPU
        return fmt_ms(st["p99_us"]) + (f" (noisy: other CPU {st['other_cpu']:.2f}, "
                                       f"{st['missing']:,} missing)" if noisy else "")

    now = params.get("date") or \
        datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    m = machine()
    result = {"date": now, "mode": mode, "machine": m, "params": params, "runs": runs,
              "skipped": skipped, "targets": []}
    md = []
    md.append(f"Run {now} on {m['cores']} × {m['cpu']}, Linux {m['kernel']}"
              + (f", node {m['node']}, ws {m['ws']}" if "node_ws" in servers else "")
              + (f", {m['nginx']}" if "nchan" in servers else "") + ".")
    md.append("")
    md.append("Server on core 0 (`taskset`), roomrelay-bench on core 1. "
              f"`data` of {params.get('size')} bytes. Ratios are against raw-fanout in this run. "
              "*other CPU*: what processes outside the benchmark used meanwhile, in cores "
              "(above ~0.1 the figures are noisy).")
    for s, why in sorted(skipped.items()):
        md.append("")
        md.append(f"{NAMES.get(s, s)}: not run ({why}).")

    # 1. idle
    md += ["", f"**Idle connections** ({params.get('idle_connections')} connections in 1,000 rooms, "
           "3 s after the last handshake): the server's VmRSS growth per connection "
           "(user space; the kernel adds ~4.5 KB of socket buffers per connection on top).", "",
           "| server | open | failed | RSS before (KiB) | RSS idle (KiB) | bytes per connection | vs raw |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    raw_idle = get("raw", "idle")
    raw_pc = raw_idle.get("server_rss_per_conn_bytes") if raw_idle else None
    for s in servers:
        r = get(s, "idle")
        if not r:
            md.append(f"| {NAMES[s]} | no result | | | | | |")
            continue
        pc = r.get("server_rss_per_conn_bytes")
        md.append(f"| {NAMES[s]} | {r['opened']:,} | {r['failed']:,} | "
                  f"{fmt_int(r.get('server_rss_start_kb'))} | {fmt_int(r.get('server_rss_idle_kb'))} | "
                  f"{fmt_int(pc)} | {fmt_ratio(ratio(pc, raw_pc)) if s != 'raw' else '1.00x'} |")

    # 2. latency at a fixed rate
    rate = params.get("rate")
    members = params.get("members")
    offered = (rate or 0) * (members or 0)
    md += ["", f"**Fan-out latency**: one room of {members:,} members, {rate} publishes/s "
           f"({offered:,.0f} deliveries/s offered), {params.get('duration_s')} s measured after 1 s, "
           f"{params.get('latency_runs')} runs per server taking turns; the row is each server's "
           "run with the median p99 among the runs that other processes left alone (other CPU "
           f"≤ {NOISY_CPU}), and the last column lists every run's p99, the noisy ones marked and "
           "left out of the median and the targets. Latency is "
           "publish → deliver: the publisher's CLOCK_MONOTONIC stamp in `data` to the loop pass "
           "of the member that read it.", "",
           "| server | deliveries/s | missing | duplicates | p50 ms | p99 ms | p99.9 ms | "
           "p99 vs raw | server CPU | generator CPU | other CPU | p99 of each run (ms) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    raw_lat = latency("raw")
    for s in servers:
        st = latency(s)
        if not st:
            md.append(f"| {NAMES[s]} | no result | | | | | | | | | | |")
            continue
        each = ", ".join(run_p99(x) for x in latency_runs(s))
        md.append(f"| {NAMES[s]} | {fmt_int(st['deliveries_per_s'])} | {st['missing']:,} | "
                  f"{st['duplicates']:,} | {fmt_ms(st['p50_us'])} | {fmt_ms(st['p99_us'])} | "
                  f"{fmt_ms(st['p999_us'])} | "
                  f"{fmt_ratio(ratio(st['p99_us'], raw_lat['p99_us'] if raw_lat else None))} | "
                  f"{st['server_cpu']:.2f} | {st['generator_cpu']:.2f} | {st['other_cpu']:.2f} | "
                  f"{each} |")

    # 3. saturation
    md += ["", f"**Saturation**: the same room, the publish rate raised step by step "
           f"({params.get('ladder')} publishes/s, {params.get('step_duration_s')} s each after 1 s) "
           "until deliveries/s grows by less than 5 % or a message goes missing. *Peak*: the most "
           "deliveries/s of a step that lost nothing.", "",
           "| server | peak deliveries/s | at publishes/s | vs raw | server CPU | generator CPU | "
           "other CPU | steps (publishes/s: deliveries/s, missing) |",
           "|---|---:|---:|---:|---:|---:|---:|---|"]
    raw_sat = get("raw", "saturation")
    raw_peak = raw_sat.get("peak_deliveries_per_s") if raw_sat else None
    for s in servers:
        r = get(s, "saturation")
        if not r:
            md.append(f"| {NAMES[s]} | no result | | | | | | |")
            continue
        peak = r.get("peak_deliveries_per_s")
        at = next((st for st in r["steps"] if st["rate"] == r.get("peak_rate")), None)
        steps = "; ".join(f"{st['rate']:.0f}: {st['deliveries_per_s'] / 1e6:.2f}M"
                          + (f", {st['missing']:,} missing" if st["missing"] else "")
                          + (f", {st['closed']:,} closed" if st["closed"] else "")
                          for st in r["steps"])
        md.append(f"| {NAMES[s]} | {fmt_int(peak)} | {r.get('peak_rate', 0):.0f} | "
                  f"{fmt_ratio(ratio(peak, raw_peak)) if s != 'raw' else '1.00x'} | "
                  + (f"{at['server_cpu']:.2f} | {at['generator_cpu']:.2f} | {at['other_cpu']:.2f}"
                     if at else "– | – | –") + f" | {steps} |")

    # targets
    targets = []
    b_idle = get("backend", "idle")
    if b_idle:
        pc = b_idle.get("server_rss_per_conn_bytes")
        ok = b_idle["failed"] == 0 and pc is not None and pc <= RSS_TARGET
        targets.append((f"{params.get('idle_connections'):,} idle connections at ≤ 1 KB of "
                        "user-space RSS each", ok,
                        f"{fmt_int(pc)} bytes per connection, {b_idle['opened']:,} open, "
                        f"{b_idle['failed']:,} failed (raw-fanout: {fmt_int(raw_pc)} bytes)"))
    b_lat = latency("backend")
    if b_lat:
        # every run must keep up, not only the median one
        b_all = clean_runs("backend")
        n_clean = sum(1 for x in latency_runs("backend") if x["other_cpu"] <= NOISY_CPU)
        keeps = all(x["missing"] == 0 and x["closed"] == 0 and
                    x["deliveries_per_s"] >= 0.95 * offered for x in b_all)
        targets.append((f"{members:,}-member room at {rate} publishes/s keeps up with no message "
                        f"missing ({n_clean} clean runs of {len(latency_runs('backend'))}"
                        + (": all noisy, all judged)" if n_clean == 0 else ")"),
                        keeps,
                        "deliveries/s " + ", ".join(fmt_int(x["deliveries_per_s"]) for x in b_all)
                        + f" of {offered:,.0f} offered; missing "
                        + ", ".join(f"{x['missing']:,}" for x in b_all)
                        + "; connections closed " + ", ".join(f"{x['closed']:,}" for x in b_all)))
        if raw_lat:
            r = ratio(b_lat["p99_us"], raw_lat["p99_us"])
            targets.append((f"p99 publish → deliver ≤ {P99_TARGET}x raw-fanout's at the same rate "
                            "(medians)",
                            r is not None and r <= P99_TARGET,
                            f"{fmt_ms(b_lat['p99_us'])} ms vs {fmt_ms(raw_lat['p99_us'])} ms = "
                            f"{fmt_ratio(r)}"))
    b_sat = get("backend", "saturation")
    if b_sat:
        peak = b_sat.get("peak_deliveries_per_s")
        if raw_sat:
            r = ratio(peak, raw_peak)
            targets.append(("saturation throughput ≥ 70% of raw-fanout's",
                            r is not None and r >= SAT_RAW_TARGET,
                            f"{fmt_int(peak)} vs {fmt_int(raw_peak)} deliveries/s = {fmt_ratio(r)}"))
        n_sat = get("node_ws", "saturation")
        if n_sat:
            npk = n_sat.get("peak_deliveries_per_s")
            r = ratio(peak, npk)
            targets.append(("saturation throughput ≥ 10x node ws's", r is not None and
                            r >= SAT_NODE_TARGET,
                            f"{fmt_int(peak)} vs {fmt_int(npk)} deliveries/s = {fmt_ratio(r)}"))
    md += ["", "Targets:", ""]
    for what, ok, detail in targets:
        md.append(f"- {what}: {verdict(ok)}, {detail}")
        result["targets"].append({"target": what, "met": ok, "detail": detail})
    if not targets:
        md.append("- no backend result to judge")

    title = "# roomrelay-backend benchmark (`make bench-%s`)" % (
        "peers" if mode == "peers" else "backend")
    text = "\n".join(md) + "\n"
    with open(out_json, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    with open(out_md, "w") as f:
        f.write(title + "\n\n" + text)

    marker = "backend-peers-results" if mode == "peers" else "backend-results"
    benchlib.replace_between_markers(docs, marker, text, "backend-report")


if __name__ == "__main__":
    main()
