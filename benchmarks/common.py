"""What the benchmarks share: finding the tools, timing a command, building a cached image."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import time


def tool(name: str) -> str:
    found = shutil.which(name, path=os.path.dirname(sys.executable)) or shutil.which(name)
    if not found:
        sys.exit(f"{name} not found: install the bench extra (pip install -e '.[bench]')")
    return found


def timed(cmd: list[str], ok=(0, 1), timeout: int = 1800, env: dict | None = None) -> float:
    """Wall seconds of one run; a failing tool stops the benchmark with its last words."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, timeout=timeout, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok:
        sys.exit(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.decode()[-400:]}")
    return elapsed


def build_cached(api, tag: str, dockerfile: str) -> str:
    """Build `dockerfile` as `tag` (no network) unless the engine has it already."""
    try:
        api.inspect_image(tag)
        return tag
    except Exception:
        pass
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile.encode()))
    context.seek(0)
    for event in api.build(fileobj=context, custom_context=True, tag=tag, rm=True, network_mode="none",
                           decode=True):
        if "error" in event:
            sys.exit(f"build failed: {event['error']}")
    return tag


def push_local(api, local: str, repository: str, tag: str) -> str:
    """Tag a local image into a registry repository and push it; returns REPOSITORY:TAG."""
    api.tag(local, repository, tag)
    for event in api.push(repository, tag, stream=True, decode=True):
        if "error" in event:
            sys.exit(f"push failed: {event['error']}")
    return f"{repository}:{tag}"
