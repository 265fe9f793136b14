"""The least any registry scan on imagefix's stack costs: CPython, click and http.client/ssl loaded, the
same requests a numeric-user scan sends (TLS probe, manifest, config, one range request per layer at
once) and nothing else - no checks, no output. bench_registry.py times it beside `imagefix scan`.

    python benchmarks/stack_floor.py HOST REPOSITORY TAG
"""

from __future__ import annotations

import hashlib
import http.client
import json
import ssl
import sys
import threading

import click  # noqa: F401  (loaded as imagefix loads it: the floor includes its import)

MANIFESTS = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"


def get(host: str, path: str, headers: dict[str, str]) -> bytes:
    conn = http.client.HTTPConnection(host, timeout=30)
    try:
        conn.request("GET", path, headers=headers)
        return conn.getresponse().read()
    finally:
        conn.close()


def main() -> None:
    host, repository, tag = sys.argv[1:4]
    try:  # imagefix asks a loopback registry whether it speaks TLS first; so does this
        probe = http.client.HTTPSConnection(host, timeout=30, context=ssl._create_unverified_context())
        probe.connect()
        probe.close()
    except (ssl.SSLError, ConnectionResetError):
        pass
    raw = get(host, f"/v2/{repository}/manifests/{tag}", {"Accept": MANIFESTS})
    hashlib.sha256(raw).hexdigest()
    manifest = json.loads(raw)
    tails: dict[str, bytes] = {}

    def tail(digest: str) -> None:
        tails[digest] = get(host, f"/v2/{repository}/blobs/{digest}", {"Range": "bytes=-4096"})[-4:]

    threads = [threading.Thread(target=tail, args=(layer["digest"],)) for layer in manifest["layers"]]
    for thread in threads:
        thread.start()
    config = json.loads(get(host, f"/v2/{repository}/blobs/{manifest['config']['digest']}", {}))
    for thread in threads:
        thread.join()
    print(config["config"].get("User"), sum(int.from_bytes(t, "little") for t in tails.values()))


if __name__ == "__main__":
    main()
