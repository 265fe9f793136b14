"""Image references and transports.

Docker references follow distribution/reference's grammar; transports use
skopeo's words (`docker://`, `docker-daemon:`, `docker-archive:`, `oci:`,
`oci-archive:`). A bare reference means "the daemon if it has it, else the
registry".
"""

from __future__ import annotations

import re

import msgspec

from ..errors import ImagefixError

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[_.]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"^(?P<name>(?:(?P<domain>{_DOMAIN})/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$"
)
_NAME_MAX = 255

DOCKER_HUB = "docker.io"


class Transport(msgspec.Struct, frozen=True):
    """What a transport word says about where an image is: the one table commands ask, instead of
    comparing transport strings."""

    word: str  # "" for a bare reference
    named: bool  # the target is an image name, as manifests and registries spell it
    remote: bool  # it may be (or is) read from a registry: fix --in-registry can rewrite it
    buildable: bool  # the engine can build FROM it (it has the image, or pulls it)
    file: bool  # a file or folder on this machine


TRANSPORTS: dict[str, Transport] = {t.word: t for t in (
    Transport("", named=True, remote=True, buildable=True, file=False),
    Transport("docker", named=True, remote=True, buildable=True, file=False),
    Transport("docker-daemon", named=True, remote=False, buildable=True, file=False),
    Transport("docker-archive", named=False, remote=False, buildable=False, file=True),
    Transport("oci", named=False, remote=False, buildable=False, file=True),
    Transport("oci-archive", named=False, remote=False, buildable=False, file=True),
)}
_TRANSPORT_WORD = re.compile(r"^(?P<word>[A-Za-z][A-Za-z0-9+.-]*):(?P<slashes>//)?(?P<rest>.*)$", re.S)


class DockerReference(msgspec.Struct, frozen=True):
    """A parsed Docker reference, normalised the way the Docker CLI does."""

    domain: str
    path: str
    tag: str | None
    digest: str | None

    @property
    def repository(self) -> str:
        return f"{self.domain}/{self.path}"

    @property
    def familiar(self) -> str:
        """`spark:3.5.3` rather than `docker.io/library/spark:3.5.3`."""
        name = self.repository
        if self.domain == DOCKER_HUB:
            name = self.path.removeprefix("library/")
        if self.tag:
            name += f":{self.tag}"
        if self.digest:
            name += f"@{self.digest}"
        return name

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_docker_reference(text: str) -> DockerReference:
    """Validate against Docker's grammar; a missing tag (and digest) means `latest`."""
    if not text or any(ch.isspace() for ch in text):
        raise ImagefixError(f"invalid reference {text!r}: empty or contains white space")
    match = _REFERENCE.match(text)
    if not match:
        hint = " (repository names must be lowercase)" if text.lower() != text else ""
        raise ImagefixError(f"invalid reference {text!r}: not a valid Docker reference{hint}")
    name = match.group("name")
    if len(name) > _NAME_MAX:
        raise ImagefixError(f"invalid reference {text!r}: name longer than {_NAME_MAX} characters")
    domain = match.group("domain")
    path = name
    # The first component is a registry only if it looks like a host (Docker's rule).
    if domain and ("." in domain or ":" in domain or domain == "localhost" or domain != domain.lower()):
        path = name[len(domain) + 1 :]
    else:
        domain = DOCKER_HUB
    if domain == "index.docker.io":  # Docker's legacy name for the Hub (reference.ParseNormalizedNamed)
        domain = DOCKER_HUB
    if domain == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    tag = match.group("tag")
    digest = match.group("digest")
    if tag is None and digest is None:
        tag = "latest"
    return DockerReference(domain=domain, path=path, tag=tag, digest=digest)


def is_docker_reference(text: str) -> bool:
    try:
        parse_docker_reference(text)
    except ImagefixError:
        return False
    return True


class ImageRef(msgspec.Struct, frozen=True):
    """What the user asked for: a transport and what follows it."""

    transport: str  # one of TRANSPORTS, or "" for a bare reference
    target: str  # reference text or path, without the transport word
    original: str

    @property
    def display(self) -> str:
        return self.original

    @property
    def kind(self) -> Transport:
        return TRANSPORTS[self.transport]


def parse_image_ref(text: str) -> ImageRef:
    """Split `transport:rest`; anything that is not a transport must be a Docker reference."""
    match = _TRANSPORT_WORD.match(text)
    if match:
        word = match.group("word")
        rest = match.group("rest")
        if word == "docker" and match.group("slashes"):
            parse_docker_reference(rest)
            return ImageRef("docker", rest, text)
        if word in TRANSPORTS and word not in ("", "docker") and not match.group("slashes"):
            if not rest:
                raise ImagefixError(f"invalid reference {text!r}: nothing after '{word}:'")
            if word == "docker-daemon":
                parse_docker_reference(rest)
            return ImageRef(word, rest, text)
        if match.group("slashes") or (not is_docker_reference(text) and _looks_like_path(rest)):
            known = ", ".join(f"{t}://" if t == "docker" else f"{t}:" for t in TRANSPORTS if t)
            raise ImagefixError(f"unknown transport {word!r} in {text!r}: use one of {known}")
    parse_docker_reference(text)
    return ImageRef("", text, text)


def _looks_like_path(rest: str) -> bool:
    """After `word:`, a path means a transport; a tag or `port/repo` means a mistyped reference."""
    if rest.startswith(("/", ".", "~")):
        return True
    return "/" in rest and not re.match(r"^\d+/", rest)


def split_path_and_suffix(target: str, *, parts: int) -> tuple[str, str | None]:
    """`path:name:tag` (parts=2) or `dir:tag` (parts=1), as skopeo splits them.

    The path itself may contain colons only when no suffix follows; we try the
    longest existing path first, so `./a:b/dir` still works.
    """
    import os

    if os.path.exists(target):
        return target, None
    pieces = target.split(":")
    for cut in range(len(pieces) - 1, 0, -1):
        path = ":".join(pieces[:cut])
        suffix = ":".join(pieces[cut:])
        if os.path.exists(path) and suffix.count(":") <= parts - 1:
            return path, suffix
    # Nothing exists: take the first colon-free part as the path for the error message.
    if len(pieces) > 1 and len(pieces) - 1 <= parts:
        return pieces[0], ":".join(pieces[1:])
    return target, None
