#!/usr/bin/env python3
"""`imagefix k8s check` over a fleet against sequential `skopeo inspect --config` of its images.

    .venv/bin/python benchmarks/bench_k8s.py [--runs 3] [--workloads 500] [--images 200]

Starts its own registry on loopback, pushes `--images` small distinct images
(every third with a named user, so its /etc/passwd must be read; the rest
numeric), writes `--workloads` Deployments in one multi-document manifest that
use them, and times: one `imagefix k8s check` of the manifest (each distinct
image read once, --jobs 8, empty layer cache each run) against `skopeo inspect
--config` of every distinct image, one after another (what a script would do).
Peak memory is the imagefix child's maxrss. Targets: >= 5x faster, < 150 MB.
"""

from __future__ import annotations

import argparse
import os
import resource
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
sys.path.insert(0, str(ROOT))

from common import tool  # noqa: E402
from registries import push_spec, spark_like, start_registry  # noqa: E402

from kata_imagefix.registry.client import RegistryClient  # noqa: E402

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-{index}
  namespace: team-{team}
spec:
  selector: {{matchLabels: {{app: app-{index}}}}}
  template:
    metadata:
      labels: {{app: app-{index}}}
    spec:
      runtimeClassName: kata-qemu-tdx
      containers:
      - name: app
        image: {image}
"""


def run(cmd: list[str], env: dict) -> tuple[float, float]:
    """(seconds, peak RSS MB of this child)."""
    probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
             "sys.exit(0 if r.returncode in (0, 1) else 1)")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{cmd[0]} failed: {done.stderr[-400:]}")
    return seconds, int(done.stdout.split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workloads", type=int, default=500)
    parser.add_argument("--images", type=int, default=200)
    args = parser.parse_args()
    imagefix, skopeo = tool("imagefix"), tool("skopeo")
    with tempfile.TemporaryDirectory(prefix="imagefix-bench-k8s-") as work_dir:
        work = Path(work_dir)
        registry = start_registry(work / "registry")
        try:
            client = RegistryClient(registry.host)
            refs = []
            for index in range(args.images):
                repository = f"fleet/app-{index:03d}"
                push_spec(client, work, repository, "1", spark_like("spark" if index % 3 == 0 else "185:185"))
                refs.append(f"{registry.host}/{repository}:1")
            manifest = work / "fleet.yaml"
            manifest.write_text("---\n".join(DEPLOYMENT.format(index=i, team=i % 7, image=refs[i % len(refs)])
                                             for i in range(args.workloads)))
            ours, peaks, theirs = [], [], []
            for run_index in range(args.runs):
                env = {**os.environ, "IMAGEFIX_CACHE_DIR": str(work / f"cache-{run_index}")}
                command = [imagefix, "k8s", "check", "--jobs", "8", "--format", "json", str(manifest)]
                seconds, peak = run(command, env)
                ours.append(seconds)
                peaks.append(peak)
                start = time.perf_counter()
                for ref in refs:
                    subprocess.run([skopeo, "inspect", "--config", "--tls-verify=false", f"docker://{ref}"],
                                   check=True, capture_output=True)
                theirs.append(time.perf_counter() - start)
        finally:
            registry.stop()
    o, t = statistics.median(ours), statistics.median(theirs)
    print(f"{args.workloads} workloads, {args.images} distinct images (a third with named users), "
          f"median of {args.runs}")
    print(f"imagefix k8s check: {o:.2f} s, peak {max(peaks):.0f} MB   "
          f"{args.images} x skopeo inspect --config: {t:.2f} s   ratio {t / o:.1f}x (target >= 5x, < 150 MB)")


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
    main()
