#!/usr/bin/env python3
"""A Python base image made offline from this machine's own interpreter (nothing can be pulled).

    python tests/python_base.py     # prints the tag; builds only when the engine lacks it

imagefix-test/python:3.11-<hash>   laid out as the official python:3.11-slim is: /usr/local/bin/python3,
                                    the standard library in /usr/local/lib/python3.11 (no tests, no
                                    tkinter/idle), pip in its site-packages (from ensurepip's bundled
                                    wheel), the shared libraries `ldd` names, the CA bundle, /etc/passwd
                                    with root and nobody, and the rest of glibc (libpthread, libnss_*...)
                                    as a distribution's base has it. No shell: the Dockerfile must not
                                    need one.

The tag is a hash of what goes in (paths, sizes, mtimes, modes, the image config), so a changed
interpreter or recipe makes a new tag, and an unchanged one is found in the engine without reading a byte.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

REPOSITORY = "imagefix-test/python"
SKIP = {"site-packages", "test", "idlelib", "tkinter", "turtledemo", "lib2to3", "ensurepip", "config-"}
CHANGES = ("ENV PATH=/usr/local/bin:/usr/bin", "ENV LANG=C.UTF-8", 'CMD ["python3"]')
PASSWD = (b"root:x:0:0:root:/root:/usr/sbin/nologin\n"
          b"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
GROUP = b"root:x:0:\nnogroup:x:65534:\n"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
LIBDIR = "usr/lib/x86_64-linux-gnu"
# the rest of glibc, which every distribution's base has and wheels' own libraries may name
GLIBC = ("libpthread.so.0", "libdl.so.2", "librt.so.1", "libutil.so.1", "libresolv.so.2", "libanl.so.1",
         "libnss_files.so.2", "libnss_dns.so.2", "libgcc_s.so.1")


def _version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def _stdlib_files() -> dict[str, str]:
    """Image path -> host path of the standard library, byte-compiled files of the plain level only."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    inside = f"usr/local/lib/python{_version()}"
    out: dict[str, str] = {}
    for dirpath, dirnames, names in os.walk(stdlib):
        rel = Path(dirpath).relative_to(stdlib)
        if rel == Path("."):
            dirnames[:] = [d for d in dirnames if d not in SKIP and not d.startswith("config-")]
        dirnames[:] = [d for d in dirnames if d not in ("tests", "idle_test")]
        for name in names:
            if name.endswith(".pyc") and (".opt-" in name or sys.implementation.cache_tag not in name):
                continue
            if name.startswith("_tkinter") or name.endswith((".exe", ".a")):
                continue
            out[f"{inside}/{rel / name}".replace("/./", "/")] = os.path.join(dirpath, name)
    return out


def _libraries(binaries: list[str]) -> dict[str, str]:
    run = subprocess.run(["ldd", *binaries], capture_output=True, text=True)
    found = set(re.findall(r"=> (/\S+)", run.stdout))
    out = {f"{LIBDIR}/{os.path.basename(path)}": os.path.realpath(path) for path in found}
    loader = re.search(r"^\s*(/lib64/ld-linux\S+)", run.stdout, re.M)
    if loader:
        out[loader.group(1).lstrip("/")] = os.path.realpath(loader.group(1))
    return out


def _plan() -> tuple[dict[str, str], dict[str, bytes], dict[str, str]]:
    """(files from the host, files made here, symlinks): the whole rootfs."""
    version = _version()
    interpreter = os.path.realpath(os.path.join(sys.base_prefix, "bin", f"python{version}"))
    files = _stdlib_files()
    files[f"usr/local/bin/python{version}"] = interpreter
    dynload = [path for key, path in files.items() if key.endswith(".so")]
    glibc = [path for name in GLIBC if os.path.exists(path := f"/{LIBDIR}/{name}")]
    files.update(_libraries([interpreter, *dynload, *glibc]))
    files.update({path.lstrip("/"): os.path.realpath(path) for path in glibc})
    files["etc/ssl/certs/ca-certificates.crt"] = CA_BUNDLE
    made = {"etc/passwd": PASSWD, "etc/group": GROUP}
    (pip,) = (Path(sysconfig.get_paths()["stdlib"]) / "ensurepip" / "_bundled").glob("pip-*.whl")
    with zipfile.ZipFile(pip) as wheel:
        for name in wheel.namelist():
            if not name.endswith("/"):
                made[f"usr/local/lib/python{version}/site-packages/{name}"] = wheel.read(name)
    links = {"usr/local/bin/python3": f"python{version}", "usr/local/bin/python": f"python{version}",
             "bin": "usr/bin", "lib": "usr/lib", "sbin": "usr/sbin"}
    return files, made, links


def _tag(files: dict[str, str], made: dict[str, bytes], links: dict[str, str]) -> str:
    digest = hashlib.sha256(repr(CHANGES).encode())
    for name in sorted(files):
        stat = os.stat(files[name])
        digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_mode}\n".encode())
    for name in sorted(made):
        digest.update(name.encode() + b"\0" + hashlib.sha256(made[name]).digest())
    digest.update(repr(sorted(links.items())).encode())
    return f"{REPOSITORY}:{_version()}-{digest.hexdigest()[:12]}"


def _rootfs(files: dict[str, str], made: dict[str, bytes], links: dict[str, str]) -> bytes:
    out = io.BytesIO()
    entries = sorted({*files, *made, *links})
    folders = sorted({str(parent) for name in entries for parent in Path(name).parents if str(parent) != "."}
                     | {"tmp", "root", "usr/bin", "usr/sbin", "etc"})
    with tarfile.open(fileobj=out, mode="w") as tar:
        for folder in folders:
            info = tarfile.TarInfo(folder)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if folder == "tmp" else 0o700 if folder == "root" else 0o755
            tar.addfile(info)
        for name in entries:
            info = tarfile.TarInfo(name)
            if name in links:
                info.type, info.linkname = tarfile.SYMTYPE, links[name]
                tar.addfile(info)
                continue
            if name in made:
                data, mode = made[name], 0o644
            else:
                with open(files[name], "rb") as handle:
                    data = handle.read()
                runs = os.access(files[name], os.X_OK) and not name.endswith((".py", ".pyc"))
                mode = 0o755 if runs else 0o644
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def ensure_python_base(api) -> str:
    """The tag of the base made from this interpreter, imported into the engine if it is not there yet."""
    import docker

    files, made, links = _plan()
    tag = _tag(files, made, links)
    try:
        api.inspect_image(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    repository, version = tag.rsplit(":", 1)
    api.import_image_from_data(_rootfs(files, made, links), repository=repository, tag=version,
                               changes=list(CHANGES))
    api.inspect_image(tag)
    return tag


if __name__ == "__main__":
    import docker

    print(ensure_python_base(docker.APIClient(version="auto", timeout=300)))
