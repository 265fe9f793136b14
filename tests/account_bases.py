"""Test base images with the real account tools of this machine (nothing can be pulled).

    imagefix-test/accounts:debian   shadow's useradd/usermod/groupadd/groupmod/userdel/groupdel and
                                    Debian's adduser/addgroup (Perl), os-release ID=debian
    imagefix-test/accounts:rhel     the same shadow tools, os-release ID=rhel, `adduser` a link to
                                    useradd and GROUP=100 in /etc/default/useradd, as on RHEL/UBI

Both are the busybox test base plus the host's binaries (gpasswd too, which adduser calls), the
shared libraries `ldd` names for them, the host's /etc/login.defs, and a chfn that does nothing
(the real one needs PAM). Built only when the host has the tools (Debian's `passwd` and
`adduser` packages); the tests that need them skip otherwise. busybox's own adduser is not
here: Debian builds busybox without it.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tarfile

from bases import BASE

DEBIAN = "imagefix-test/accounts:debian"
RHEL = "imagefix-test/accounts:rhel"
SHADOW_TOOLS = ("useradd", "usermod", "groupadd", "groupmod", "userdel", "groupdel")
PERL_DIRS = ("/usr/lib/x86_64-linux-gnu/perl-base", "/usr/share/perl5/Debian")


def missing_tools() -> str | None:
    """Why the images cannot be built here, or None."""
    for tool in (*SHADOW_TOOLS, "adduser"):
        if not os.path.exists(f"/usr/sbin/{tool}"):
            return f"/usr/sbin/{tool} is not installed (Debian's passwd and adduser packages)"
    if not shutil.which("ldd") or not os.path.exists("/usr/bin/perl"):
        return "ldd or perl is missing"
    return None


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _libraries(binaries: list[str]) -> set[str]:
    out = subprocess.run(["ldd", *binaries], capture_output=True, text=True, check=True).stdout
    return set(re.findall(r"(/\S+\.so[\w.]*)", out))


def _context(family: str) -> bytes:
    binaries = [f"/usr/sbin/{t}" for t in SHADOW_TOOLS] + ["/usr/bin/perl", "/usr/bin/gpasswd"]
    files: dict[str, tuple[bytes, int]] = {}
    for path in sorted(set(binaries) | _libraries(binaries)):
        with open(os.path.realpath(path), "rb") as handle:
            files[path] = (handle.read(), 0o755)
    if family == "debian":
        files["/usr/sbin/adduser"] = (_read("/usr/sbin/adduser"), 0o755)
        files["/etc/adduser.conf"] = (_read("/etc/adduser.conf"), 0o644)
        # adduser asks chfn for the GECOS of a normal user; the real chfn needs PAM, which is not here.
        # The GECOS has nothing to do with ids: a chfn that does nothing.
        files["/usr/bin/chfn"] = (b"#!/bin/sh\nexit 0\n", 0o755)
        for folder in PERL_DIRS:
            for dirpath, _, names in os.walk(folder):
                for name in names:
                    path = os.path.join(dirpath, name)
                    if os.path.isfile(path):
                        files[path] = (_read(path), 0o644)
        release = b'ID=debian\nVERSION_ID="12"\n'
        defaults = _read("/etc/default/useradd")
    else:
        release = b'ID="rhel"\nID_LIKE="fedora"\nVERSION_ID="9.4"\n'
        defaults = b"GROUP=100\nHOME=/home\nINACTIVE=-1\nEXPIRE=\nSHELL=/bin/sh\nCREATE_MAIL_SPOOL=no\n"
    files["/etc/login.defs"] = (_read("/etc/login.defs"), 0o644)
    files["/etc/default/useradd"] = (defaults, 0o644)
    files["/etc/os-release"] = (release, 0o644)
    links = {"/usr/sbin/addgroup": "adduser"} if family == "debian" else {"/usr/sbin/adduser": "useradd"}
    dockerfile = (f"FROM {BASE}\nCOPY root/ /\n"
                  "RUN mkdir -p /home /var/mail /etc/skel /run && echo 'users:x:100:' >> /etc/group\n"
                  "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin\n")
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        def add(name: str, data: bytes, mode: int) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))

        add("Dockerfile", dockerfile.encode(), 0o644)
        for path, (data, mode) in files.items():
            add("root" + path, data, mode)
        for path, target in links.items():
            info = tarfile.TarInfo("root" + path)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return out.getvalue()


def ensure_account_bases(api) -> None:
    import docker

    for tag, family in ((DEBIAN, "debian"), (RHEL, "rhel")):
        try:
            api.inspect_image(tag)
            continue
        except docker.errors.ImageNotFound:
            pass
        events = list(api.build(fileobj=io.BytesIO(_context(family)), custom_context=True, tag=tag, rm=True,
                                forcerm=True, network_mode="none", decode=True))
        errors = [e["error"] for e in events if "error" in e]
        if errors:
            raise AssertionError(f"{tag} failed to build: {errors[-1]}")
