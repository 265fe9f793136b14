"""Shared by the hostile tests: run imagefix as a user would (a child process, its time and peak RSS
measured), and write an OCI layout around a layer made byte by byte (bombs, cut streams, odd headers)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

MAX_RSS_MB = 200


def run_child(*args: str, timeout: float, stdin: str | None = None
              ) -> tuple[subprocess.CompletedProcess, float, float]:
    """(result, seconds, peak RSS of this child in MB): each call in its own wrapper process so the
    peak is this command's alone."""
    probe = ("import resource, subprocess, sys; "
             "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
             "sys.stdout.write(r.stdout); sys.stderr.write(r.stderr); "
             "print('\\nRSS', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
             "sys.exit(r.returncode)")
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "kata_imagefix", *args],
                            capture_output=True, text=True, timeout=timeout, input=stdin)
    seconds = time.monotonic() - start
    lines = result.stderr.rstrip().splitlines()
    rss_mb = int(lines[-1].split()[1]) / 1024
    result.stderr = "\n".join(lines[:-1]).strip()
    return result, seconds, rss_mb


def one_line_error(result: subprocess.CompletedProcess) -> bool:
    return (result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
            and "Traceback" not in result.stderr and "internal error" not in result.stderr)


def _compressor(kind: str | None):
    if kind == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=1).compressobj()
    if kind == "xz":
        import lzma

        return lzma.LZMACompressor(preset=1)
    if kind == "bzip2":
        import bz2

        return bz2.BZ2Compressor(9)
    if kind == "gzip":
        import zlib

        return zlib.compressobj(6, wbits=31)
    return None


class _Sink:
    """Takes the tar as it is written: hashes it (the diff_id) and compresses it into the blob."""

    def __init__(self, out: BinaryIO, kind: str | None) -> None:
        self.out, self.comp, self.diff = out, _compressor(kind), hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.diff.update(data)
        self.out.write(self.comp.compress(data) if self.comp else data)
        return len(data)

    def close(self) -> None:
        if self.comp:
            self.out.write(self.comp.flush())


def layout_around(root: Path, write_tar: Callable[[BinaryIO], None], *, compression: str | None = None,
                  keep: float = 1.0, config: dict | None = None,
                  raw_config: Callable[[str], bytes] | None = None) -> str:
    """An OCI layout at `root` whose one layer is what `write_tar` writes (compressed, then cut to the
    `keep` fraction) and whose image config is `raw_config(diff_id)` when given, byte for byte;
    returns the scan reference."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    temp = root / "layer.tmp"
    with open(temp, "wb") as out:
        sink = _Sink(out, compression)
        write_tar(sink)  # type: ignore[arg-type]
        sink.close()
    if keep < 1.0:
        with open(temp, "r+b") as out:
            out.truncate(int(temp.stat().st_size * keep))
    digest = hashlib.sha256()
    with open(temp, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar" + (f"+{compression}" if compression
                                                                         else ""),
             "digest": f"sha256:{digest.hexdigest()}", "size": temp.stat().st_size}
    temp.rename(blobs / digest.hexdigest())

    def blob(doc: dict | bytes) -> dict:
        raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        name = hashlib.sha256(raw).hexdigest()
        (blobs / name).write_bytes(raw)
        return {"digest": f"sha256:{name}", "size": len(raw)}

    diff_id = f"sha256:{sink.diff.hexdigest()}"
    image = blob(raw_config(diff_id) if raw_config else
                 {"architecture": "amd64", "os": "linux", "config": config or {"User": "spark"},
                  "rootfs": {"type": "layers", "diff_ids": [diff_id]}})
    manifest = blob({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                     "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **image},
                     "layers": [layer]})
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest,
         "annotations": {"org.opencontainers.image.ref.name": "1"}}]}))
    return f"oci:{root}:1"
