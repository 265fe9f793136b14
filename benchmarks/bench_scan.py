#!/usr/bin/env python3
"""imagefix scan against `dive --ci` on the same local images (100 MB and 1 GB).

    .venv/bin/pip install -e '.[bench]' && .venv/bin/python benchmarks/bench_scan.py [--runs 5]

Needs a running Docker engine and tests/bases.py's base image (made here if
missing). Prints the median wall time of each tool per image and the ratio;
imagefix's time should not grow with the image (no export), dive's does.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from bases import BASE, ensure_bases  # noqa: E402
from common import build_cached, timed, tool  # noqa: E402

SIZES_MB = {"100mb": 100, "1gb": 1000}


def build(api, size_mb: int) -> str:
    """An app image with several layers: half in one big layer, the rest in 10 MB files."""
    big = size_mb // 2
    small = (size_mb - big) // 10
    return build_cached(api, f"imagefix-bench/app:{size_mb}mb", (
        f"FROM {BASE}\n"
        f"RUN dd if=/dev/urandom of=/big.bin bs=1000000 count={big}\n"
        f"RUN mkdir /data && for i in $(seq {small}); do "
        f"dd if=/dev/urandom of=/data/f$i bs=1000000 count=10 2>/dev/null; done\n"
        "USER spark\n"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark images")
    args = parser.parse_args()

    import docker

    api = docker.APIClient(version="auto", timeout=900)
    ensure_bases(api)
    imagefix, dive = tool("imagefix"), tool("dive")
    print(f"engine storage driver: {api.info()['Driver']}; runs per tool: {args.runs}")
    print(f"{'image':8} {'imagefix scan':>14} {'dive --ci':>10} {'ratio':>7}")
    rows = []
    tags = []
    for label, size_mb in SIZES_MB.items():
        tag = build(api, size_mb)
        tags.append(tag)
        ours = [timed([imagefix, "scan", tag]) for _ in range(args.runs)]
        theirs = [timed([dive, "--ci", "--source", "docker", tag]) for _ in range(args.runs)]
        ours_median, theirs_median = statistics.median(ours), statistics.median(theirs)
        rows.append((label, ours_median, theirs_median))
        print(f"{label:8} {ours_median:13.3f}s {theirs_median:9.2f}s {theirs_median / ours_median:6.1f}x")
    growth = rows[-1][1] / rows[0][1]
    print(f"imagefix 1 GB / 100 MB time: {growth:.2f}x (flat means no export); "
          f"dive: {rows[-1][2] / rows[0][2]:.2f}x")
    if not args.keep:
        for tag in tags:
            api.remove_image(tag, force=True)


if __name__ == "__main__":
    main()
