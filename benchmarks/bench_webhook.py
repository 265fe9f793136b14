#!/usr/bin/env python3
"""`imagefix webhook serve`: admission latency and throughput on loopback, warm and cold cache.

    .venv/bin/python benchmarks/bench_webhook.py [--count 5000] [--clients 8] [--stalled 200]

Starts its own registry on loopback with a named-user (`spark`) and a numeric
(`185:185`) image, a webhook server process (real TLS), then:

- cold: the first /mutate of a pod running each image (the registry read,
  the account files read from the layers);
- warm: `--count` /mutate reviews from `--clients` threads, each with a
  kept-alive HTTPS connection, alternating the two images: p50/p99 latency
  and admissions per second - once as a ReplicaSet's pods arrive (identical
  but for the uid: the answers memo serves all but the first), once as
  distinct pods (each judged); the server's RSS before and after;
- stalled: `--stalled` reviews naming an image on a registry that accepts
  connections and never answers: the slowest answer, against the deadline.

Targets (issue #25): p99 <= 20 ms warm, >= 500 admissions/s on 2 cores warm,
a cold named-user image within 2 s, RSS flat, every stalled answer within
the deadline. The client threads share the cores with the server: on a small
machine they are part of what is measured.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "samples"))
sys.path.insert(0, str(ROOT))

from registries import FaultServer, make_certificate, push_spec, spark_like, start_registry  # noqa: E402

from kata_imagefix.registry.client import RegistryClient  # noqa: E402

DEADLINE = 2.0


def review(image: str, name: str = "") -> bytes:
    """A pod as a ReplicaSet sends it (no name yet: generateName), or, with `name`, a pod of its own."""
    metadata = {"name": name} if name else {"generateName": "bench-"}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {**metadata, "namespace": "bench"},
           "spec": {"runtimeClassName": "kata-qemu-tdx", "containers": [{"name": "c", "image": image}]}}
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": str(uuid.uuid4()), "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"}, "namespace": "bench",
        "operation": "CREATE", "object": pod, "dryRun": False}}).encode()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def start_server(folder: Path) -> tuple[subprocess.Popen, int, ssl.SSLContext]:
    cert, key = make_certificate(folder)
    env = {**os.environ, "IMAGEFIX_CACHE_DIR": str(folder / "cache")}
    process = subprocess.Popen([sys.executable, "-m", "kata_imagefix", "webhook", "serve", "--tls-cert-file",
                                str(cert), "--tls-private-key-file", str(key), "--listen", "127.0.0.1:0",
                                "--deadline-seconds", str(DEADLINE), "--registry-timeout", "30"],
                               stderr=subprocess.PIPE, text=True, env=env)
    line = process.stderr.readline()
    return process, int(line.rsplit(":", 1)[1]), ssl.create_default_context(cafile=str(cert))


def post(connection: http.client.HTTPSConnection, body: bytes) -> float:
    started = time.perf_counter()
    connection.request("POST", "/mutate", body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    data = response.read()
    elapsed = time.perf_counter() - started
    assert response.status == 200 and json.loads(data)["response"]["allowed"] is True
    return elapsed


def run(port: int, context: ssl.SSLContext, bodies: list[bytes], clients: int) -> tuple[list[float], float]:
    latencies: list[float] = []
    lock = threading.Lock()
    chunks = [bodies[i::clients] for i in range(clients)]

    def client(chunk: list[bytes]) -> None:
        connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=60)
        mine = [post(connection, body) for body in chunk]
        connection.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(chunk,)) for chunk in chunks]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, time.perf_counter() - started


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--stalled", type=int, default=200)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-webhook-"))
    registry = start_registry(work / "registry")
    stalled = FaultServer(b"", b"", hang=True)
    process = None
    try:
        client = RegistryClient(registry.host)
        images = {}
        for kind, user in (("named", "spark"), ("numeric", "185:185")):
            push_spec(client, work, f"bench/{kind}", "1", spark_like(user))
            images[kind] = f"{registry.host}/bench/{kind}:1"
        process, port, context = start_server(work / "server")
        for kind, image in images.items():
            connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=60)
            print(f"cold {kind:8s} {post(connection, review(image)) * 1000:8.1f} ms")
            connection.close()
        rss_before = rss_kib(process.pid)
        bodies = [review(images["named" if i % 2 else "numeric"]) for i in range(args.count)]
        latencies, seconds = run(port, context, bodies, args.clients)
        rss_after = rss_kib(process.pid)
        p50, p99 = statistics.median(latencies) * 1000, percentile(latencies, 0.99) * 1000
        print(f"warm     {len(latencies)} replica pods, {args.clients} clients: p50 {p50:.1f} ms, "
              f"p99 {p99:.1f} ms, {len(latencies) / seconds:.0f} admissions/s")
        distinct = [review(images["named" if i % 2 else "numeric"], f"pod-{i}") for i in range(args.count)]
        latencies, seconds = run(port, context, distinct, args.clients)
        p50, p99 = statistics.median(latencies) * 1000, percentile(latencies, 0.99) * 1000
        print(f"warm     {len(latencies)} distinct pods, {args.clients} clients: p50 {p50:.1f} ms, "
              f"p99 {p99:.1f} ms, {len(latencies) / seconds:.0f} admissions/s (each judged)")
        rss_after = rss_kib(process.pid)
        print(f"rss      {rss_before / 1024:.1f} MiB before, {rss_after / 1024:.1f} MiB after")
        slow = [review(f"{stalled.host}/bench/stalled:{i % 5}") for i in range(args.stalled)]
        latencies, seconds = run(port, context, slow, args.clients)
        print(f"stalled  {len(latencies)} admissions: slowest {max(latencies):.2f} s "
              f"(deadline {DEADLINE:.1f} s), {len(latencies) / seconds:.0f} admissions/s")
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=10)
        stalled.stop_event.set()
        stalled.stop()
        registry.stop()


if __name__ == "__main__":
    main()
