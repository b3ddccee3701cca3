"""What the benchmark scripts share: reading JSON that may be missing, the
machine a run happened on, and rewriting the part of docs/benchmarks.md
between a pair of markers. Imported by bench/*.py (run with
/usr/bin/python3 from the project root or bench/)."""
import json
import os
import platform
import re
import subprocess
import sys


def load_json(path):
    """The JSON in path, or None when it is missing or not JSON."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def version(cmd, pattern):
    """The first group of pattern in what cmd prints (stdout and stderr), or
    None when cmd is missing or prints no match."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(pattern, out.stdout + out.stderr)
    return m.group(1) if m else None


def machine(**versions):
    """Cores, CPU model and kernel, plus name=(cmd, pattern) versions."""
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
            model = m.group(1).strip() if m else None
    except OSError:
        pass
    out = {"cores": os.cpu_count(), "cpu": model, "kernel": platform.release()}
    for name, (cmd, pattern) in versions.items():
        out[name] = version(cmd, pattern)
    return out


def replace_between_markers(path, marker, text, who):
    """Replaces what lies between <!-- marker:begin --> and <!-- marker:end -->
    in path with text; says so on stderr and leaves path alone when the
    markers are missing."""
    try:
        with open(path) as f:
            doc = f.read()
    except OSError:
        return
    begin, end = f"<!-- {marker}:begin -->", f"<!-- {marker}:end -->"
    pat = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    if not pat.search(doc):
        print(f"{who}: no {marker} markers in {path}; left as is", file=sys.stderr)
        return
    with open(path, "w") as f:
        f.write(pat.sub(lambda _: begin + "\n" + text + end, doc))
