#!/usr/bin/env python3
"""`imagefix fix --in-registry` against `docker pull` + `imagefix fix` (a real build) + `docker push`.

    .venv/bin/python benchmarks/bench_fix.py [--runs 3]

A 1 GB image with USER spark (its /etc/passwd in the bottom layer, as in
apache/spark) in a loopback registry. imagefix runs behind a byte-counting
proxy (in one extra run per case: timed runs go straight to the registry), so
the bytes it uploads are measured, not assumed. The default numeric
mode is timed with an empty layer cache (it must stream the layers above
/etc/passwd) and with the cache an earlier fix of the same layers left.
"""

from __future__ import annotations

import argparse
import json
import os
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


def run(cmd: list[str], cache: Path | None = None) -> tuple[float, bytes]:
    env = {**os.environ, "IMAGEFIX_CACHE_DIR": str(cache)} if cache else None
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, timeout=1800, env=env)
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
        # numeric, cold: an empty layer cache each run, so /etc/passwd is found by streaming the 1 GB
        # above it; numeric, warm: the cache a previous fix of these layers left (another tag, next CI run)
        warm_cache = work / "warm-cache"
        cases = {"numeric, cold cache": ("numeric", None), "numeric, warm cache": ("numeric", warm_cache),
                 "root": ("root", None)}
        run([*imagefix, "fix", f"docker://{registry.host}/bench/fix:1gb", "--in-registry", "--tag",
             f"{registry.host}/bench/fix:warm-up", "--format", "json"], cache=warm_cache)
        for name, (mode, cache) in cases.items():
            times, sent = [], []
            # timed runs talk to the registry directly; one more run through the proxy counts what is sent
            # (the proxy is a Python thread per connection: it would add its own latency to the times)
            for i in range(args.runs + 1):
                counted = i == args.runs
                host = proxy.host if counted else registry.host
                before = proxy.sent
                tag = f"{host}/bench/fix:kata-{mode}-{i}-{'warm' if cache else 'cold'}"
                seconds, out = run([*imagefix, "fix", f"docker://{host}/bench/fix:1gb", "--in-registry",
                                    "--user-mode", mode, "--tag", tag, "--format", "json"],
                                   cache=cache or Path(tempfile.mkdtemp(dir=work)))
                json.loads(out)
                if counted:
                    sent.append(proxy.sent - before)
                else:
                    times.append(seconds)
            results[name] = (statistics.median(times), max(sent))
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
        for name, (seconds, sent) in results.items():
            print(f"fix --in-registry, {name:19}: {seconds:.2f} s, {sent / 1000:.1f} kB sent "
                  f"(requests, config, manifests; no layers)  {classic_median / seconds:.0f}x faster")
        _forget_layers(api, [local, f"{repo}:1gb"])
    finally:
        proxy.close()
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
