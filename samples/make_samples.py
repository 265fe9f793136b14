#!/usr/bin/env python3
"""Write the offline sample images in samples/ (OCI image layouts), byte for byte reproducible.

    python samples/make_samples.py          # rewrites samples/spark and samples/mysql

spark  (oci:samples/spark:3.5.3)  like apache/spark:3.5.3: USER spark (uid/gid 185 in its
       own /etc/passwd and /etc/group), four layers, one of them 150 MB unpacked.
mysql  (oci:samples/mysql:8.4)    like mysql:8.4: no USER, about 600 MB unpacked - the
       size that failed at create_container_timeout = 60 s and passed at 120 s.

The big files are zeros, so each layer gzips to almost nothing and the
repository stays small. The writer functions here are also used by the tests.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

MTIME = 1_700_000_000
CHUNK = 1 << 20
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"


@dataclass
class Entry:
    """One tar member: a file (data or `zeros` bytes), a dir, a symlink or a whiteout."""

    path: str
    data: bytes = b""
    zeros: int = 0
    kind: str = "file"  # file, dir, symlink, hardlink, chardev
    target: str = ""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0


@dataclass
class LayerSpec:
    entries: list[Entry]
    created_by: str = ""


@dataclass
class ImageSpec:
    layers: list[LayerSpec]
    config: dict = field(default_factory=dict)  # the `config` section: User, Env, Cmd, ...
    empty_history: list[tuple[int, str]] = field(default_factory=list)  # (after layer i, text)
    architecture: str = "amd64"
    os: str = "linux"


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def write_layer_tar(entries: Iterable[Entry], out) -> None:
    """A layer tar into the binary stream `out` (deterministic headers)."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.path)
            info.mtime, info.uid, info.gid, info.mode = MTIME, entry.uid, entry.gid, entry.mode
            if entry.kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, entry.mode | 0o111
                tar.addfile(info)
            elif entry.kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, entry.target
                tar.addfile(info)
            elif entry.kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, entry.target
                tar.addfile(info)
            elif entry.kind == "chardev":
                info.type = tarfile.CHRTYPE
                tar.addfile(info)
            elif entry.zeros:
                info.size = entry.zeros
                tar.addfile(info, io.BufferedReader(_Zeros(entry.zeros), CHUNK))
            else:
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))


class _HashingWriter(io.RawIOBase):
    def __init__(self, target) -> None:
        self.target, self.sha, self.size = target, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        self.sha.update(data)
        self.size += len(data)
        self.target.write(data)
        return len(data)


def _write_blob(blobs: Path, writer, *, temp_name: str = "tmp") -> tuple[str, int]:
    """Stream a blob to blobs/sha256/<digest>; returns (digest, size)."""
    temp = blobs / temp_name
    with open(temp, "wb") as handle:
        hashing = _HashingWriter(handle)
        writer(hashing)
    digest = hashing.sha.hexdigest()
    os.replace(temp, blobs / digest)
    return f"sha256:{digest}", hashing.size


def _layer_blob(blobs: Path, layer: LayerSpec, compress: bool) -> tuple[dict, str]:
    diff_sha = hashlib.sha256()

    def write(out) -> None:
        class _Diff(io.RawIOBase):
            def writable(self) -> bool:
                return True

            def write(self, data) -> int:  # type: ignore[override]
                diff_sha.update(data)
                return sink.write(data)

        if compress:
            with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9, mtime=0) as sink:
                write_layer_tar(layer.entries, _Diff())
        else:
            sink = out
            write_layer_tar(layer.entries, _Diff())

    digest, size = _write_blob(blobs, write)
    descriptor = {"mediaType": OCI_LAYER_GZIP if compress else OCI_LAYER_TAR,
                  "digest": digest, "size": size}
    return descriptor, f"sha256:{diff_sha.hexdigest()}"


def _json_blob(blobs: Path, doc: dict) -> tuple[str, int, bytes]:
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    digest, size = _write_blob(blobs, lambda out: out.write(raw))
    return digest, size, raw


def image_config(spec: ImageSpec, diff_ids: list[str]) -> dict:
    history = []
    empty = dict(spec.empty_history)
    for index, layer in enumerate(spec.layers):
        history.append({"created": "2023-11-14T22:13:20Z", "created_by": layer.created_by})
        if index in empty:
            history.append({"created": "2023-11-14T22:13:20Z", "created_by": empty[index],
                            "empty_layer": True})
    return {
        "architecture": spec.architecture, "os": spec.os, "created": "2023-11-14T22:13:20Z",
        "config": spec.config, "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }


def write_oci_layout(root: Path, images: dict[str, ImageSpec], *, compress: bool = True) -> dict:
    """An OCI image layout at `root`, one manifest per tag. Returns {tag: manifest descriptor}."""
    if root.exists():
        shutil.rmtree(root)
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    out = {}
    for tag, spec in images.items():
        layer_descs, diff_ids = [], []
        for layer in spec.layers:
            descriptor, diff_id = _layer_blob(blobs, layer, compress)
            layer_descs.append(descriptor)
            diff_ids.append(diff_id)
        config_digest, config_size, _ = _json_blob(blobs, image_config(spec, diff_ids))
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
                    "layers": layer_descs}
        digest, size, _ = _json_blob(blobs, manifest)
        descriptor = {"mediaType": OCI_MANIFEST, "digest": digest, "size": size,
                      "annotations": {"org.opencontainers.image.ref.name": tag},
                      "platform": {"architecture": spec.architecture, "os": spec.os}}
        index["manifests"].append(descriptor)
        out[tag] = descriptor
    (root / "index.json").write_text(json.dumps(index, indent=2) + "\n")
    return out


def write_docker_archive(path: Path, images: dict[str, ImageSpec]) -> None:
    """What `docker save` (Engine 20.10) writes: manifest.json, <config>.json, <id>/layer.tar."""
    work = path.with_suffix(".build")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    manifest = []
    for tag, spec in images.items():
        layer_paths, diff_ids = [], []
        for layer in spec.layers:
            temp = work / "layer.tmp"
            with open(temp, "wb") as handle:
                write_layer_tar(layer.entries, handle)
            digest = hashlib.sha256(temp.read_bytes()).hexdigest()
            (work / digest).mkdir(exist_ok=True)
            os.replace(temp, work / digest / "layer.tar")
            layer_paths.append(f"{digest}/layer.tar")
            diff_ids.append(f"sha256:{digest}")
        raw = json.dumps(image_config(spec, diff_ids), sort_keys=True).encode()
        config_name = hashlib.sha256(raw).hexdigest() + ".json"
        (work / config_name).write_bytes(raw)
        manifest.append({"Config": config_name, "RepoTags": [tag], "Layers": layer_paths})
    (work / "manifest.json").write_text(json.dumps(manifest))
    with tarfile.open(path, "w") as tar:
        for item in sorted(work.iterdir()):
            tar.add(item, arcname=item.name)
    shutil.rmtree(work)


def base_layer(users: str, groups: str) -> LayerSpec:
    return LayerSpec([
        Entry("bin", kind="dir"), Entry("etc", kind="dir"), Entry("tmp", kind="dir", mode=0o1777),
        Entry("etc/passwd", users.encode()), Entry("etc/group", groups.encode()),
        Entry("etc/os-release", b'PRETTY_NAME="imagefix sample base"\n'),
        Entry("bin/sh", b"#!/bin/sh\n# placeholder: sample images are scanned, not run\n", mode=0o755),
    ], "/bin/sh -c #(nop) ADD file:sample-rootfs in / ")


SPARK_PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
                "spark:x:185:185:Spark user:/opt/spark:/bin/sh\n")
SPARK_GROUP = "root:x:0:\nspark:x:185:\n"


def spark_sample() -> ImageSpec:
    return ImageSpec(
        layers=[
            base_layer(SPARK_PASSWD, SPARK_GROUP),
            LayerSpec([Entry("opt", kind="dir"), Entry("opt/spark", kind="dir", uid=185, gid=185),
                       Entry("opt/spark/jars", kind="dir", uid=185, gid=185),
                       Entry("opt/spark/jars/sample-assembly.jar", zeros=150 * 10**6, uid=185, gid=185)],
                      "/bin/sh -c #(nop) COPY dir:spark-3.5.3-bin in /opt/spark/jars "),
            LayerSpec([Entry("opt/spark/python", kind="dir"),
                       Entry("opt/spark/python/pyspark.zip", zeros=12 * 10**6)],
                      "/bin/sh -c #(nop) COPY dir:python in /opt/spark/python "),
            LayerSpec([Entry("opt/entrypoint.sh", b"#!/bin/sh\nexec \"$@\"\n", mode=0o755)],
                      "/bin/sh -c #(nop) COPY file:entrypoint.sh in /opt/ "),
        ],
        config={"User": "spark", "Entrypoint": ["/opt/entrypoint.sh"],
                "WorkingDir": "/opt/spark/work-dir",
                "Env": ["SPARK_HOME=/opt/spark", "PATH=/usr/local/sbin:/usr/local/bin:/usr/bin:/bin"]},
        empty_history=[(3, "/bin/sh -c #(nop)  USER spark")],
    )


def mysql_sample() -> ImageSpec:
    passwd = "root:x:0:0:root:/root:/bin/sh\nmysql:x:999:999::/var/lib/mysql:/bin/false\n"
    return ImageSpec(
        layers=[
            base_layer(passwd, "root:x:0:\nmysql:x:999:\n"),
            LayerSpec([Entry("usr", kind="dir"), Entry("usr/sbin", kind="dir"),
                       Entry("usr/sbin/mysqld", zeros=90 * 10**6, mode=0o755)],
                      "/bin/sh -c microdnf install -y mysql-community-server-minimal"),
            LayerSpec([Entry("usr/lib64", kind="dir"), Entry("usr/lib64/mysql", kind="dir"),
                       Entry("usr/lib64/mysql/libmysqlclient.so", zeros=60 * 10**6),
                       Entry("usr/lib64/mysql/plugin.so", zeros=30 * 10**6)],
                      "/bin/sh -c microdnf install -y mysql-community-client mysql-shell"),
            LayerSpec([Entry("usr/share", kind="dir"), Entry("usr/share/mysql-shell", kind="dir"),
                       Entry("usr/share/mysql-shell/bundle.bin", zeros=420 * 10**6)],
                      "/bin/sh -c microdnf install -y mysql-shell-bundles"),
            LayerSpec([Entry("usr/local", kind="dir"), Entry("usr/local/bin", kind="dir"),
                       Entry("usr/local/bin/docker-entrypoint.sh", b"#!/bin/sh\nexec \"$@\"\n", mode=0o755)],
                      "/bin/sh -c #(nop) COPY file:docker-entrypoint.sh in /usr/local/bin/ "),
        ],
        config={"Entrypoint": ["docker-entrypoint.sh"], "Cmd": ["mysqld"], "ExposedPorts": {"3306/tcp": {}}},
    )


def main() -> None:
    here = Path(__file__).resolve().parent
    write_oci_layout(here / "spark", {"3.5.3": spark_sample()})
    write_oci_layout(here / "mysql", {"8.4": mysql_sample()})
    print("wrote", here / "spark", "and", here / "mysql")


if __name__ == "__main__":
    main()
