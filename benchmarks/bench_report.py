#!/usr/bin/env python3
"""`imagefix report --files 20` against `dive --ci --json` on the same images (many files), interleaved.

    .venv/bin/pip install -e '.[bench]' && .venv/bin/python benchmarks/bench_report.py [--runs 3]

Builds (once) a 100 MB and a 1 GB image of many files on the engine and prints,
per image, the median wall time and peak memory (max RSS) of imagefix on the
direct path (overlay2 layer folders, no export) and on the export path, and of
dive; plus whether both imagefix paths report the same figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from bases import BASE, ensure_bases  # noqa: E402
from common import build_cached, tool  # noqa: E402

SIZES_MB = {"100mb": 100, "1gb": 1000}


def build(api, size_mb: int) -> str:
    """Half the bytes in 20 KB files (many files), half in a few big ones; some overwritten (waste)."""
    small_files = size_mb * 1_000_000 // 2 // 20_000
    dockerfile = (
        f"FROM {BASE}\n"
        f"RUN mkdir -p /data/big && for i in $(seq 5); do "
        f"dd if=/dev/urandom of=/data/big/f$i bs=1000000 count={size_mb // 10} 2>/dev/null; done\n"
        "RUN mkdir -p /data/small && cd /data/small && "
        "dd if=/dev/urandom of=seed bs=20000 count=1 2>/dev/null "
        f"&& i=0; while [ $i -lt {small_files} ]; do cp seed f$i; i=$((i+1)); done\n"
        f"RUN dd if=/dev/urandom of=/data/big/f1 bs=1000000 count=1 2>/dev/null\n"
    )
    return build_cached(api, f"imagefix-bench/files:{size_mb}mb", dockerfile)


def measured(cmd: list[str]) -> tuple[float, int, bytes]:
    """Wall seconds, peak RSS in KB (GNU time), stdout."""
    with tempfile.NamedTemporaryFile() as stats:
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "%e %M", "-o", stats.name, *cmd], capture_output=True, timeout=1800
        )
        if proc.returncode not in (0, 1):
            sys.exit(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.decode()[-400:]}")
        seconds, rss = Path(stats.name).read_text().split()[-2:]
    return float(seconds), int(rss), proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    import docker

    api = docker.APIClient(version="auto", timeout=1800)
    ensure_bases(api)
    imagefix, dive = tool("imagefix"), tool("dive")
    print(f"engine storage driver: {api.info()['Driver']}; median of {args.runs} runs; peak RSS")
    for label, size_mb in SIZES_MB.items():
        tag = build(api, size_mb)
        commands = {
            f"imagefix {walk}": [imagefix, "report", tag, "--files", "20", "--walk", walk, "--format", "json"]
            for walk in ("direct", "export")
        } | {
            "dive --ci --json": [dive, "--ci", "--source", "docker", "--json", "/dev/null", tag],
        }
        # Interleaved, run by run: the engine's export rate drifts (6.5-10 s for the same 1 GB here),
        # and back-to-back repetitions of one tool would hand one of them the slow minutes.
        samples: dict[str, list] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, cmd in commands.items():
                samples[name].append(measured(cmd))
        results = {
            name: (statistics.median(r[0] for r in runs), max(r[1] for r in runs))
            for name, runs in samples.items()
        }
        outputs = {name: runs[-1][2] for name, runs in samples.items()}
        direct, export = (json.loads(outputs[k]) for k in ("imagefix direct", "imagefix export"))
        for doc in (direct, export):
            doc["files"].pop("read_by")  # says which path was taken: the one key that must differ
        same = direct["files"] == export["files"] and direct["layers"] == export["layers"]
        dive_s = results["dive --ci --json"][0]
        print(f"{label}:")
        for name, (seconds, rss) in results.items():
            ratio = f"{dive_s / seconds:5.2f}x vs dive" if not name.startswith("dive") else ""
            print(f"  {name:18} {seconds:7.2f} s  {rss / 1024:7.1f} MB  {ratio}")
        print(f"  same figures from both imagefix paths: {same}")


if __name__ == "__main__":
    main()
