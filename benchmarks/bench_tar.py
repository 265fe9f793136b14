#!/usr/bin/env python3
"""The hand-written tar reader (image/tarstream.py) against the standard library on the same layers.

    .venv/bin/python benchmarks/bench_tar.py [--runs 5] [--files 25000] [--mb 200]

Two layers are written once (deterministic): a gzip layer like a registry blob,
and the same tar uncompressed like a docker-save / OCI-layout member. Each is
walked - every member's name, type and size, file data skipped - the work a
size report and a passwd lookup do. The library side is `tarfile` over
`isal.igzip` (the fastest gzip the standard interfaces offer here), in stream
mode for gzip ("r|") and random access for the plain tar. Peak memory is the
child's maxrss. tarstream stays only while it is clearly faster.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

OURS = """
import sys, time, resource
from kata_imagefix.image.tarstream import walk
start = time.perf_counter()
count = total = 0
with open(sys.argv[1], "rb") as raw:
    for member in walk(raw, seekable=sys.argv[2] == "plain"):
        count += 1
        total += member.size
print(time.perf_counter() - start, count, total, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

THEIRS = """
import sys, time, tarfile, resource
from isal import igzip
start = time.perf_counter()
count = total = 0
if sys.argv[2] == "plain":
    with tarfile.open(sys.argv[1], "r:") as tar:
        for member in tar:
            count += 1
            total += member.size
else:
    with igzip.open(sys.argv[1], "rb") as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
        for member in tar:
            count += 1
            total += member.size
print(time.perf_counter() - start, count, total, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def write_layers(folder: Path, files: int, megabytes: int) -> tuple[Path, Path]:
    rng = random.Random(20261128)
    plain = folder / "layer.tar"
    sizes = [rng.randint(0, 2 * megabytes * 10**6 // files) for _ in range(files)]
    with tarfile.open(plain, "w", format=tarfile.PAX_FORMAT) as tar:
        for index, size in enumerate(sizes):
            info = tarfile.TarInfo(f"usr/share/app/{index // 500:03d}/file-{index:06d}.dat")
            info.size = size
            # half random, half zeros: compresses about 2:1, like real layers
            tar.addfile(info, io.BytesIO(rng.randbytes(size // 2) + bytes(size - size // 2)))
    compressed = folder / "layer.tar.gz"
    from isal import igzip

    with open(plain, "rb") as source, igzip.open(compressed, "wb", compresslevel=1) as target:
        while chunk := source.read(1 << 20):
            target.write(chunk)
    return plain, compressed


def run(code: str, path: Path, kind: str) -> tuple[float, int, int, int]:
    out = subprocess.run([sys.executable, "-c", code, str(path), kind], capture_output=True, text=True,
                         check=True).stdout.split()
    return float(out[0]), int(out[1]), int(out[2]), int(out[3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--files", type=int, default=25_000)
    parser.add_argument("--mb", type=int, default=200, help="about this many MB of file data")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imagefix-bench-tar-") as work:
        plain, compressed = write_layers(Path(work), args.files, args.mb)
        print(f"layer: {args.files} files, {plain.stat().st_size / 1e6:.0f} MB tar, "
              f"{compressed.stat().st_size / 1e6:.0f} MB gzip; median of {args.runs} runs, interleaved")
        for kind, path in (("gzip", compressed), ("plain", plain)):
            ours, theirs = [], []
            for _ in range(args.runs):
                ours.append(run(OURS, path, kind))
                theirs.append(run(THEIRS, path, kind))
            assert ours[0][1:3] == theirs[0][1:3], (ours[0], theirs[0])  # the same members, the same bytes
            o, t = statistics.median(r[0] for r in ours), statistics.median(r[0] for r in theirs)
            om, tm = max(r[3] for r in ours) / 1024, max(r[3] for r in theirs) / 1024
            print(f"{kind:5}  tarstream {o:.3f} s / {om:.0f} MB   tarfile+isal {t:.3f} s / {tm:.0f} MB   "
                  f"ratio {t / o:.2f}x")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    main()
