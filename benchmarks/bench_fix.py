#!/usr/bin/env python3
"""`imagefix fix --in-registry` against `docker pull` + `imagefix fix` (a real build) + `docker push`.

    .venv/bin/python benchmarks/bench_fix.py [--runs 3]

A 1 GB image with USER spark (its /etc/passwd in the bottom layer, as in
apache/spark) in a loopback registry. imagefix runs behind a byte-counting
proxy, so the bytes it uploads are measured, not assumed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "samples"))

from bench_registry import _forget_layers, installed_imagefix  # noqa: E402
from bench_scan import build  # noqa: E402
from common import push_local  # noqa: E402
from registries import CountingProxy, start_registry  # noqa: E402


def run(cmd: list[str]) -> tuple[float, bytes]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, timeout=1800)
    if proc.returncode != 0:
        sys.exit(f"{cmd[:3]} failed ({proc.returncode}): {proc.stderr.decode()[-400:]}")
    return time.perf_counter() - start, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    import docker

    api = docker.APIClient(version="auto", timeout=1800)
    work = Path(tempfile.mkdtemp(prefix="imagefix-bench-fix-"))
    imagefix = installed_imagefix(work)
    registry = start_registry(work)
    proxy = CountingProxy(registry.host)
    try:
        local = build(api, 1000)
        repo = f"{registry.host}/bench/fix"
        push_local(api, local, repo, "1gb")
        results = {}
        for mode in ("numeric", "root"):
            times, sent = [], []
            for i in range(args.runs):
                before = proxy.sent
                seconds, out = run([*imagefix, "fix", f"docker://{proxy.host}/bench/fix:1gb", "--in-registry",
                                    "--user-mode", mode, "--tag", f"{proxy.host}/bench/fix:kata-{mode}-{i}",
                                    "--format", "json"])
                times.append(seconds)
                sent.append(proxy.sent - before)
                json.loads(out)
            results[mode] = (statistics.median(times), max(sent))
        classic = []
        for i in range(min(args.runs, 2)):
            _forget_layers(api, [local, f"{repo}:1gb"])
            start = time.perf_counter()
            for event in api.pull(repo, "1gb", stream=True, decode=True):
                if "error" in event:
                    sys.exit(event["error"])
            target = f"{repo}:built-{i}"
            run([*imagefix, "fix", f"{repo}:1gb", "--tag", target, "--force"])
            for event in api.push(repo, f"built-{i}", stream=True, decode=True):
                if "error" in event:
                    sys.exit(event["error"])
            classic.append(time.perf_counter() - start)
            api.remove_image(target, force=True)
        classic_median = statistics.median(classic)
        print("1 GB image, USER spark, /etc/passwd in the bottom layer; medians")
        print(f"docker pull + imagefix fix (build) + docker push: {classic_median:.2f} s")
        for mode, (seconds, sent) in results.items():
            print(f"fix --in-registry --user-mode {mode:7}: {seconds:.2f} s, {sent / 1000:.1f} kB sent "
                  f"(requests, config, manifests; no layers)  {classic_median / seconds:.0f}x faster")
        _forget_layers(api, [local, f"{repo}:1gb"])
    finally:
        proxy.close()
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
