#!/usr/bin/env python3
"""imagefix lint against hadolint on the same 1000 Dockerfiles, one call each.

    .venv/bin/pip install -e '.[bench]' && .venv/bin/python benchmarks/bench_lint.py [--runs 5] [--chain 40]

The Dockerfiles are generated (deterministic seed) from realistic pieces:
multi-stage builds, ARG-driven users, useradd lines, long RUN chains.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
from pathlib import Path

from common import timed, tool

BASES = ["debian:12-slim", "ubuntu:24.04", "alpine:3.20", "eclipse-temurin:17-jre", "python:3.12-slim",
         "node:22-bookworm", "golang:1.23", "registry.example.com/team/base:2.1"]
USERS = ["spark", "app", "nobody", "1000", "1000:1000", "root", "${APP_USER}", "www-data", "185:185"]
RUNS = [
    "RUN apt-get update && apt-get install -y --no-install-recommends curl ca-certificates \\\n"
    "    && rm -rf /var/lib/apt/lists/*",
    "RUN set -eux; \\\n    mkdir -p /opt/app; \\\n    chown -R 1000:1000 /opt/app",
    "RUN pip install --no-cache-dir -r requirements.txt",
    "RUN groupadd --system --gid=${APP_UID} app && useradd --system --uid=${APP_UID} --gid=app app",
    "RUN addgroup -S -g 1000 app && adduser -S -u 1000 -G app app",
    "RUN go build -trimpath -ldflags='-s -w' -o /out/server ./cmd/server",
    "RUN npm ci && npm run build",
]


def run_line(rng: random.Random, chain: int) -> str:
    """One RUN of `chain` commands joined by && (long RUN chains are where lint time goes)."""
    if chain <= 1:
        return rng.choice(RUNS)
    bodies = [rng.choice(RUNS).removeprefix("RUN ") for _ in range(chain)]
    return "RUN " + " \\\n    && ".join(bodies)


def dockerfile(rng: random.Random, chain: int = 1) -> str:
    lines = ["# syntax=docker/dockerfile:1", f"ARG BASE={rng.choice(BASES)}", "ARG APP_UID=1000"]
    for stage in range(rng.randint(1, 3)):
        lines.append(f"FROM ${{BASE}} AS stage{stage}")
        lines += ["ARG APP_UID", "ARG APP_USER=app", "WORKDIR /opt/app", "COPY . ."]
        lines += [run_line(rng, chain) for _ in range(rng.randint(2, 6))]
        lines.append("ENV PATH=/opt/app/bin:$PATH")
        if rng.random() < 0.8:
            lines.append(f"USER {rng.choice(USERS)}")
    lines += ['EXPOSE 8080', 'ENTRYPOINT ["/opt/app/bin/start"]']
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--chain", type=int, default=1,
                        help="commands per RUN (e.g. 40 for the long RUN chains of real images)")
    args = parser.parse_args()
    imagefix, hadolint = tool("imagefix"), tool("hadolint")
    rng = random.Random(20261126)
    work = Path(tempfile.mkdtemp(prefix="imagefix-bench-lint-"))
    try:
        paths = []
        for index in range(args.files):
            path = work / f"Dockerfile.{index:04d}"
            path.write_text(dockerfile(rng, args.chain))
            paths.append(str(path))
        ours = [timed([imagefix, "lint", "--format", "json", *paths]) for _ in range(args.runs)]
        theirs = [timed([hadolint, "--no-fail", "--format", "json", *paths]) for _ in range(args.runs)]
    finally:
        shutil.rmtree(work)
    ours_m, theirs_m = statistics.median(ours), statistics.median(theirs)
    print(f"{args.files} Dockerfiles, {args.chain} command(s) per RUN, median of {args.runs} runs")
    print(f"imagefix lint: {ours_m:.3f} s   hadolint: {theirs_m:.3f} s   ratio: {theirs_m / ours_m:.1f}x")


if __name__ == "__main__":
    main()
