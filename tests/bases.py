#!/usr/bin/env python3
"""Build the test base images locally from Debian's busybox-static (nothing can be pulled).

    python tests/bases.py     # idempotent: rebuilds only what is missing

imagefix-test/busybox:base   busybox applets, /etc/passwd with root, spark (185),
                             nobody (65534) and app (10001); /etc/group to match.
"""

from __future__ import annotations

import io
import shutil
import sys
import tarfile

BASE = "imagefix-test/busybox:base"
APPLETS = ("sh", "id", "ls", "cat", "true", "echo", "rm", "mkdir", "dd", "touch", "cp", "sleep",
           "chown", "head", "env", "printf", "sync", "whoami", "ln")  # Debian's build has no adduser
PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "spark:x:185:185:Spark user:/opt/spark:/bin/sh\n"
          "app:x:10001:10001:app:/app:/bin/sh\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
GROUP = "root:x:0:\nspark:x:185:\napp:x:10001:\nnogroup:x:65534:\n"


def busybox_path() -> str:
    path = shutil.which("busybox") or "/bin/busybox"
    return path


def rootfs_tar() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        def add_dir(name: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)

        def add_file(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))

        for folder in ("bin", "etc", "root", "opt", "app", "var"):
            add_dir(folder)
        add_dir("tmp", 0o1777)
        with open(busybox_path(), "rb") as handle:
            add_file("bin/busybox", handle.read(), 0o755)
        for applet in APPLETS:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
        add_file("etc/passwd", PASSWD.encode())
        add_file("etc/group", GROUP.encode())
    return out.getvalue()


def ensure_bases(api) -> None:
    import docker

    try:
        api.inspect_image(BASE)
        return
    except docker.errors.ImageNotFound:
        pass
    repository, tag = BASE.rsplit(":", 1)
    api.import_image_from_data(rootfs_tar(), repository=repository, tag=tag,
                               changes=['CMD ["/bin/sh"]', "ENV PATH=/bin"])
    api.inspect_image(BASE)


if __name__ == "__main__":
    import docker

    client = docker.APIClient(version="auto")
    ensure_bases(client)
    print(f"[ci] test base image ready: {BASE}")
    sys.exit(0)
