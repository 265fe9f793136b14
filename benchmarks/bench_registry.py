#!/usr/bin/env python3
"""Registry scans against `skopeo inspect` and against `docker pull` + a daemon scan.

    .venv/bin/python benchmarks/bench_registry.py [--runs 10] [--before TREE]

Starts its own registry on loopback (Debian's docker-registry), pushes a 1 GB
image from the engine, and prints medians and ratios:
  1. one `imagefix scan docker://...` (exact layer sizes from the blobs' trailers) vs one
     `skopeo inspect --config` (manifest + config, no sizes)       (target: within 5x), and the
     stack's floor (stack_floor.py: the same requests from CPython + click + http.client, no checks)
  2. 50 references in one imagefix call vs 50 skopeo calls          (target: >= 3x faster)
  3. registry scan vs `docker pull` + daemon scan                   (target: >= 20x faster)
  4. requests per numeric/root image (at most one small range request per layer more than manifest +
     config, all at once), whether the sizes are exact, and bytes read to resolve a named user.
imagefix is installed the way the README installs it (`pip install .`, not
editable) into a scratch venv, so start-up is what users get. `--before TREE`
installs another checkout (an older commit) the same way and times it in the
same runs as this tree for 1. and 2., alternating, so both see the same load.
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
sys.path.insert(0, str(ROOT))

from bench_scan import build  # noqa: E402
from common import push_local, timed  # noqa: E402
from registries import start_registry  # noqa: E402

ENV = dict(os.environ)


def installed_imagefix(work: Path, tree: Path = ROOT, name: str = "venv") -> list[str]:
    """A normal (non-editable) install of `tree` in a scratch venv."""
    venv = work / name
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin/pip"), "install", "-q", str(tree)], check=True, capture_output=True)
    return [str(venv / "bin/imagefix")]


def interleaved_medians(commands: list[list[str]], runs: int) -> list[float]:
    """Median seconds of each command, run in turn (a, b, a, b, ...) so a load change hits both."""
    times: list[list[float]] = [[] for _ in commands]
    for _ in range(runs):
        for index, cmd in enumerate(commands):
            times[index].append(timed(cmd, env=ENV))
    return [statistics.median(each) for each in times]


def median_seconds(cmd: list[str], runs: int, cold_cache_in: Path | None = None) -> float:
    """With `cold_cache_in`, every run starts with an empty layer cache of its own there."""
    def env(index: int) -> dict:
        if cold_cache_in is None:
            return ENV
        return {**ENV, "IMAGEFIX_CACHE_DIR": str(cold_cache_in / f"cache-{index}")}

    return statistics.median(timed(cmd, env=env(index)) for index in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--pull-runs", type=int, default=3)
    parser.add_argument("--before", type=Path, metavar="TREE",
                        help="another checkout of imagefix, timed beside this one for 1. and 2.")
    args = parser.parse_args()

    import docker

    from kata_imagefix.registry.client import RegistryClient

    try:
        api = docker.APIClient(version="auto", timeout=1800)
    except docker.errors.DockerException as exc:
        sys.exit(f"bench_registry needs a running Docker engine (it pushes a 1 GB image from it): {exc}")
    work = Path(tempfile.mkdtemp(prefix="imagefix-bench-registry-"))
    imagefix = installed_imagefix(work)
    before = installed_imagefix(work, args.before, "venv-before") if args.before else None
    registry = start_registry(work)
    try:
        local = build(api, 1000)
        repo = f"{registry.host}/bench/app"
        push_local(api, local, repo, "1gb")
        ref = f"{repo}:1gb"
        client = RegistryClient(registry.host)
        raw = client.manifest_bytes("bench/app", "1gb").raw
        manifest, numeric = json.loads(raw), json.loads(raw)
        # a numeric-user twin: same layers, config with USER 185:185
        config = json.loads(client.blob("bench/app", manifest["config"]["digest"]))
        config["config"]["User"] = "185:185"
        config_raw = json.dumps(config).encode()
        numeric["config"] = {**numeric["config"], "digest": client.push_blob("bench/app", config_raw),
                             "size": len(config_raw)}
        client.put_manifest("bench/app", "numeric", json.dumps(numeric).encode(), numeric["mediaType"])
        tags = [f"t{i}" for i in range(50)]
        for tag in tags:
            client.put_manifest("bench/app", tag, json.dumps(numeric).encode(), numeric["mediaType"])

        print(f"1 GB image ({sum(layer['size'] for layer in manifest['layers']) / 1e6:.0f} MB compressed) "
              f"in a registry on {registry.host}; medians")
        skopeo_cmd = ["skopeo", "inspect", "--config", "--tls-verify=false", f"docker://{repo}:numeric"]
        scans = [[*tree, "scan", f"docker://{repo}:numeric"] for tree in (imagefix, before) if tree]
        floor_cmd = [str(Path(imagefix[0]).with_name("python")), str(HERE / "stack_floor.py"),
                     registry.host, "bench/app", "numeric"]
        ours, skopeo, floor, *then = interleaved_medians([scans[0], skopeo_cmd, floor_cmd, *scans[1:]],
                                                         args.runs)
        print(f"1. one scan:      imagefix {ours:.3f} s   skopeo inspect --config {skopeo:.3f} s   "
              f"ratio {ours / skopeo:.2f}x (target <= 5x)"
              + (f"   [--before tree: {then[0]:.3f} s, {then[0] / skopeo:.2f}x]" if then else ""))
        print(f"   floor (stack_floor.py: CPython, click, http.client, the same requests, no checks): "
              f"{floor:.3f} s = {floor / skopeo:.2f}x skopeo; imagefix's own code {ours - floor:.3f} s")
        refs = [f"docker://{repo}:{tag}" for tag in tags]
        fleet = [[*tree, "scan", "--jobs", "8", *refs] for tree in (imagefix, before) if tree]
        many, *then = interleaved_medians(fleet, max(3, args.runs // 3))
        start = time.perf_counter()
        for item in refs:
            subprocess.run(["skopeo", "inspect", "--tls-verify=false", item], capture_output=True, check=True)
        sequential = time.perf_counter() - start
        print(f"2. 50 references: imagefix {many:.3f} s   50 x skopeo {sequential:.3f} s   "
              f"imagefix {sequential / many:.1f}x faster (target >= 3x)"
              + (f"   [--before tree: {then[0]:.3f} s, {sequential / then[0]:.1f}x]" if then else ""))
        for tag, label in (("numeric", "numeric user"), ("1gb", "named user, passwd in the bottom layer")):
            pulls = []
            for _ in range(args.pull_runs):
                _forget_layers(api, [local, f"{repo}:1gb", f"{repo}:numeric"])
                start = time.perf_counter()
                for event in api.pull(repo, tag, stream=True, decode=True):
                    if "error" in event:
                        sys.exit(f"docker pull failed: {event['error']}")
                subprocess.run([*imagefix, "scan", f"docker-daemon:{repo}:{tag}"], capture_output=True,
                               env=ENV)
                pulls.append(time.perf_counter() - start)
            pull_median = statistics.median(pulls)
            remote = median_seconds([*imagefix, "scan", f"docker://{repo}:{tag}"], args.runs,
                                    cold_cache_in=work / f"caches-{tag}")
            print(f"3. pull + scan ({label}): {pull_median:.2f} s   registry scan {remote:.3f} s   "
                  f"{pull_median / remote:.0f}x faster (target >= 20x)")
        doc = json.loads(subprocess.run([*imagefix, "scan", "--format", "json", f"docker://{repo}:numeric"],
                                        capture_output=True, env=ENV).stdout)
        named = json.loads(subprocess.run([*imagefix, "scan", "--format", "json", f"docker://{ref}"],
                                          capture_output=True,
                                          env={**ENV, "IMAGEFIX_CACHE_DIR": str(work / "cold")}).stdout)
        transfer = doc["images"][0]["transfer"]
        named_transfer = named["images"][0]["transfer"]
        layer_sizes = [layer["size"] for layer in manifest["layers"]]
        image = doc["images"][0]
        ranges = transfer["by_kind"].get("blob-range", 0)
        exact = sum(not layer["size_estimated"] for layer in image["layers"])
        print(f"   sizes: {'exact' if not image['size_estimated'] else 'ESTIMATED'} for "
              f"{exact} of {len(layer_sizes)} layers, "
              f"{ranges} range request(s) for {len(layer_sizes)} layers (target <= 1 per layer); "
              f"{image['unpacked_bytes'] / 1e6:.1f} MB unpacked (tar lengths)")
        print(f"4. numeric user:  {transfer['by_kind']} ({transfer['bytes']} bytes); named user "
              f"(passwd in layer 0 of {len(layer_sizes)}): {named_transfer['bytes'] / 1e6:.1f} MB read of "
              f"{sum(layer_sizes) / 1e6:.1f} MB (layers above the passwd layer, plus it)")
        _forget_layers(api, [local, ref, f"{repo}:numeric"])
    finally:
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)


def _forget_layers(api, names: list[str]) -> None:
    """Delete the images (every tag) that hold the benchmark's layers, so a pull really downloads."""
    ids = {api.inspect_image(name)["Id"] for name in names if _image_exists(api, name)}
    for image_id in ids:
        api.remove_image(image_id, force=True)
    for image in api.images():
        if any(t.startswith("imagefix-bench/") or "/bench/app:" in t for t in image.get("RepoTags") or []):
            api.remove_image(image["Id"], force=True)


def _image_exists(api, ref: str) -> bool:
    try:
        api.inspect_image(ref)
        return True
    except Exception:
        return False


if __name__ == "__main__":
    main()
