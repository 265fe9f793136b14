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
Also `imagefix k8s fix --check` of the same manifest (it audits, edits what it
must - here the named-user third - and audits the edited documents again),
target <= 1.5x `k8s check`: a fix costs the audit plus the edits.

Twice: against Debian's docker-registry, and against the same repositories
served read-only by nginx (a static mirror, when nginx is installed: `apt-get
install nginx-light`). Why both: on a small machine the registry shares the
cores with the clients, and docker-registry spends ~2 ms of CPU on each blob
GET (a 4 MiB read buffer per blob served: distribution's
registry/storage/filereader.go); the floor line times `curl --parallel` fetching just what skopeo fetches
(every manifest and config) from it - no client gets below that there. The
static mirror costs next to nothing per request, as a registry on its own
machines costs the client, so that run measures the clients.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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
sys.path.insert(0, str(ROOT))

from common import tool  # noqa: E402
from registries import free_port, push_spec, spark_like, start_registry  # noqa: E402

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
    """(seconds, peak RSS MB) of the command, both taken by a small parent around it alone."""
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
             "r = subprocess.run(sys.argv[1:], capture_output=True); t = time.perf_counter() - t; "
             "print(t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
             "sys.exit(0 if r.returncode in (0, 1) else 1)")
    done = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True, env=env)
    if done.returncode:
        sys.exit(f"{cmd[0]} failed: {done.stderr[-400:]}")
    seconds, peak = done.stdout.split()[-2:]
    return float(seconds), int(peak) / 1024


NGINX_CONF = """\
{user}worker_processes 2;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 512; }}
http {{
  access_log off;
  client_body_temp_path {work}/nginx-body;
  server {{
    listen {host};
    root {root};
    add_header Docker-Distribution-API-Version registry/2.0 always;
    location = /v2/ {{ default_type application/json; return 200 '{{}}'; }}
    location ~ ^/v2/.+/manifests/ {{ types {{}} default_type {manifest_type}; }}
    location ~ ^/v2/.+/blobs/ {{ types {{}} default_type application/octet-stream; }}
  }}
}}
"""


class StaticMirror:
    """The repositories' manifests and blobs as files under /v2/..., served by nginx on loopback."""

    def __init__(self, work: Path, client: RegistryClient, repositories: list[str]) -> None:
        root = work / "mirror"
        manifest_type = ""
        for repository in repositories:
            raw = client.manifest_bytes(repository, "1").raw
            manifest = json.loads(raw)
            manifest_type = manifest["mediaType"]
            (root / "v2" / repository / "manifests").mkdir(parents=True)
            (root / "v2" / repository / "blobs").mkdir()
            (root / "v2" / repository / "manifests" / "1").write_bytes(raw)
            for descriptor in [manifest["config"], *manifest["layers"]]:
                (root / "v2" / repository / "blobs" / descriptor["digest"]).write_bytes(
                    client.blob(repository, descriptor["digest"]))
        self.host = f"127.0.0.1:{free_port()}"
        conf = work / "nginx.conf"
        conf.write_text(NGINX_CONF.format(user="user root;\n" if os.geteuid() == 0 else "", work=work,
                                          host=self.host, root=root, manifest_type=manifest_type))
        nginx = shutil.which("nginx") or "nginx"
        self.process = subprocess.Popen([nginx, "-e", str(work / "nginx-error.log"), "-p", str(work),
                                         "-c", str(conf)], stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                client_check = RegistryClient(self.host)
                client_check.manifest_bytes(repositories[0], "1")
                return
            except Exception:
                time.sleep(0.05)
        self.stop()
        sys.exit(f"nginx did not serve the mirror: {(work / 'nginx-error.log').read_text()[-400:]}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def fleet_manifest(path: Path, host: str, repositories: list[str], workloads: int) -> Path:
    path.write_text("---\n".join(DEPLOYMENT.format(index=i, team=i % 7,
                                                   image=f"{host}/{repositories[i % len(repositories)]}:1")
                                 for i in range(workloads)))
    return path


def compare(work: Path, label: str, host: str, repositories: list[str], args) -> dict:
    """Medians of imagefix k8s check and of the sequential skopeo calls against one registry."""
    imagefix, skopeo = tool("imagefix"), tool("skopeo")
    manifest = fleet_manifest(work / f"fleet-{label}.yaml", host, repositories, args.workloads)
    ours, peaks, theirs, fixes = [], [], [], []
    for run_index in range(args.runs):
        env = {**os.environ, "IMAGEFIX_CACHE_DIR": str(work / f"cache-{label}-{run_index}")}
        seconds, peak = run([imagefix, "k8s", "check", "--jobs", "8", "--format", "json", str(manifest)], env)
        ours.append(seconds)
        peaks.append(peak)
        env = {**os.environ, "IMAGEFIX_CACHE_DIR": str(work / f"cache-fix-{label}-{run_index}")}
        fixes.append(run([imagefix, "k8s", "fix", "--jobs", "8", "--check", str(manifest)], env)[0])
        start = time.perf_counter()
        for repository in repositories:
            subprocess.run([skopeo, "inspect", "--config", "--tls-verify=false", f"docker://{host}/{repository}:1"],
                           check=True, capture_output=True)
        theirs.append(time.perf_counter() - start)
    return {"ours": statistics.median(ours), "peak": max(peaks), "theirs": statistics.median(theirs),
            "fix": statistics.median(fixes)}


def curl_floor(work: Path, client: RegistryClient, repositories: list[str], runs: int) -> float | None:
    """`curl --parallel` (8 at a time) fetching every manifest and config skopeo fetches: a client
    that costs nothing, so what the registry alone takes."""
    curl = shutil.which("curl")
    if curl is None:
        return None
    lines = []
    for repository in repositories:
        manifest = json.loads(client.manifest_bytes(repository, "1").raw)
        for path in ("manifests/1", f"blobs/{manifest['config']['digest']}"):
            lines += [f'url = "http://{client.host}/v2/{repository}/{path}"', 'output = "/dev/null"']
    config = work / "curl.conf"
    config.write_text("\n".join(lines) + "\n")
    accept = ("Accept: application/vnd.oci.image.manifest.v1+json, "
              "application/vnd.docker.distribution.manifest.v2+json")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([curl, "-s", "--fail", "--parallel", "--parallel-max", "8", "-H", accept,
                        "-K", str(config)], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workloads", type=int, default=500)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    figures: dict = {"workloads": args.workloads, "images": args.images, "runs": args.runs}
    with tempfile.TemporaryDirectory(prefix="imagefix-bench-k8s-") as work_dir:
        work = Path(work_dir)
        registry = start_registry(work / "registry")
        mirror = None
        try:
            client = RegistryClient(registry.host)
            repositories = []
            for index in range(args.images):
                repository = f"fleet/app-{index:03d}"
                push_spec(client, work, repository, "1", spark_like("spark" if index % 3 == 0 else "185:185"))
                repositories.append(repository)
            figures["docker-registry"] = compare(work, "registry", registry.host, repositories, args)
            figures["docker-registry"]["curl_floor"] = curl_floor(work, client, repositories, args.runs)
            if shutil.which("nginx"):
                mirror = StaticMirror(work, client, repositories)
                figures["static-mirror"] = compare(work, "mirror", mirror.host, repositories, args)
        finally:
            if mirror is not None:
                mirror.stop()
            registry.stop()
    print(f"{args.workloads} workloads, {args.images} distinct images (a third with named users), "
          f"median of {args.runs}; targets >= 5x, < 150 MB")
    for label in ("docker-registry", "static-mirror"):
        row = figures.get(label)
        if row is None:
            print(f"{label}: skipped (nginx is not installed: apt-get install nginx-light)")
            continue
        floor = row.get("curl_floor")
        extra = (f"   floor: curl --parallel, manifests+configs only: {floor:.2f} s = at most "
                 f"{row['theirs'] / floor:.1f}x for any client" if floor else "")
        print(f"{label}: imagefix k8s check {row['ours']:.2f} s, peak {row['peak']:.0f} MB   "
              f"{args.images} x skopeo inspect --config {row['theirs']:.2f} s   "
              f"ratio {row['theirs'] / row['ours']:.1f}x{extra}")
        print(f"{label}: imagefix k8s fix --check {row['fix']:.2f} s = "
              f"{row['fix'] / row['ours']:.2f}x k8s check (target <= 1.5x)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
    main()
