"""Patch a Dockerfile's effective USER, changing no byte outside the instruction it rewrites."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from ..errors import ImagefixError
from ..image.model import Image
from ..users import USER_MODES, UserKind, UserSpec
from .instructions import Instruction
from .parse import Dockerfile
from .user import effective_user

_WHY = "kata-qemu-tdx cannot look up user names on the host under guest pull"
# A numeric user has no name to look up: what is lost is its primary group (KIF102).
_WHY_GROUP = ("under guest pull kata-qemu-tdx cannot read the image's /etc/passwd on the host, so a uid "
              "without a group gets gid 0")


@dataclass
class PatchOutcome:
    path: str
    original: str
    text: str
    description: str | None  # what changed, None when nothing did
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.text != self.original

    def diff(self) -> str:
        return "".join(difflib.unified_diff(
            self.original.splitlines(keepends=True), self.text.splitlines(keepends=True),
            fromfile=f"a/{self.path.lstrip('/')}", tofile=f"b/{self.path.lstrip('/')}",
        ))


def _new_value(dockerfile: Dockerfile, mode: str, user) -> tuple[str, str] | None:
    """(USER value, comment) for this mode, or None when the user needs no change."""
    spec = user.spec
    where = f"{dockerfile.path}:{user.line}"
    if user.unknown:
        return None  # the base image decides (KIF106): nothing known to rewrite
    if spec.kind is UserKind.INVALID:
        raise ImagefixError(f"{where}: cannot write a numeric USER for {spec.raw!r}: containerd does not "
                            f"accept it ({spec.problem}); write USER uid:gid by hand")
    if spec.kind is UserKind.NAMED and spec.user_name == "root" and spec.group_name is None:
        gid = spec.gid if spec.gid is not None else 0
        return f"0:{gid}", f"USER {user.label} -> 0:{gid} ({_WHY})"
    if mode == "numeric":
        if spec.kind is UserKind.NUMERIC_NO_GROUP:
            resolution = user.resolver()
            if resolution.gid is None or not resolution.gid_from_passwd or resolution.gid == 0:
                return None  # gid 0 with or without guest pull, or not known here: nothing to write
            return resolution.numeric, f"USER {user.label} -> {resolution.numeric} ({_WHY_GROUP})"
        if spec.kind is not UserKind.NAMED:
            return None
        resolution = user.resolver()
        if not resolution.ok:
            raise ImagefixError(
                f"{where}: cannot write a numeric USER for {spec.raw!r}: "
                f"{resolution.problem}; fix the Dockerfile or use --user-mode reset|root"
            )
        return resolution.numeric, f"USER {user.label} -> {resolution.numeric} ({_WHY})"
    if spec.kind is not UserKind.NAMED:
        return None
    if mode == "reset":
        return '""', f'USER {user.label} -> USER "": the container runs as ROOT ({_WHY})'
    return "0:0", f"USER {user.label} -> 0:0: the container runs as root ({_WHY})"


def _keyword_as_written(dockerfile: Dockerfile, instruction: Instruction, keyword: str) -> tuple[str, str]:
    """Indentation and the keyword in the file's own casing (from the given instruction)."""
    line = dockerfile.lines[instruction.start]
    indent = line[: len(line) - len(line.lstrip(" \t"))]
    written = line.lstrip(" \t")[: len(instruction.keyword)]
    if written.upper() != instruction.keyword:
        return indent, keyword
    if written.islower():
        return indent, keyword.lower()
    return indent, keyword


def patch(dockerfile: Dockerfile, mode: str = "numeric", *, target: str | None = None,
          base: Image | None = None, open_base=None) -> PatchOutcome:
    """`open_base` opens the images other stages start from (COPY --from of /etc/passwd)."""
    if mode not in USER_MODES:
        raise ImagefixError(f"unknown user mode {mode!r}: use {', '.join(USER_MODES)}")
    original = "".join(dockerfile.lines)
    prefix = "\ufeff" if dockerfile.bom else ""
    unchanged = PatchOutcome(dockerfile.path, prefix + original, prefix + original, None)
    if dockerfile.windows:
        return unchanged  # not a Kata workload
    stage = dockerfile.stage(target)
    user = effective_user(dockerfile, stage, base, open_base)
    if user is None:
        return unchanged
    rule = "KIF102" if user.spec.kind is UserKind.NUMERIC_NO_GROUP else "KIF101"
    if rule in dockerfile.global_ignores | dockerfile.ignores.get(user.line, set()):
        return unchanged  # the author silenced it with a pragma: leave it as it is
    change = _new_value(dockerfile, mode, user)
    if change is None:
        return unchanged
    value, comment = change
    lines = list(dockerfile.lines)
    nl = dockerfile.newline
    if user.in_target_stage:
        setting = dockerfile.user_setting(stage)
        assert setting is not None
        instruction = setting.instruction
        indent, keyword = _keyword_as_written(dockerfile, instruction, "USER")
        last = lines[instruction.end]
        ending = last[len(last.rstrip("\r\n")):]
        lines[instruction.start : instruction.end + 1] = [
            f"{indent}# imagefix: {comment}{nl}", f"{indent}{keyword} {value}{ending}"]
        where = f"line {instruction.line}"
    else:
        _, keyword = _keyword_as_written(dockerfile, stage.from_instruction, "USER")
        last = stage.last_line
        at_eof = not lines[last].endswith(("\n", "\r"))
        if at_eof:
            lines[last] += nl
        inserted = [f"# imagefix: {comment}{nl}", f"{keyword} {value}{'' if at_eof else nl}"]
        lines[last + 1 : last + 1] = inserted
        where = f"appended after line {last + 1}"
    text = prefix + "".join(lines)
    return PatchOutcome(dockerfile.path, prefix + original, text,
                        f"{comment.removesuffix(f' ({_WHY})').removesuffix(f' ({_WHY_GROUP})')} ({where})",
                        _pod_notes(value))


def _pod_notes(value: str) -> list[str]:
    """What the written USER does not carry to a Kubernetes pod under guest pull."""
    spec = UserSpec.parse(value)
    if spec.kind is not UserKind.NUMERIC or (spec.uid, spec.gid) == (0, 0):
        return []
    from ..users.identity import WHY_EXPLICIT

    return [f"on Kubernetes under guest pull the pod must also set runAsUser: {spec.uid}, runAsGroup: "
            f"{spec.gid} and the user's /etc/group groups in supplementalGroups ({WHY_EXPLICIT}); after the "
            "build `imagefix k8s pod IMAGE` prints them"]


def patch_file(path: str, mode: str, *, target: str | None = None, build_args: dict[str, str] | None = None,
               open_base=None) -> PatchOutcome:
    """Read a Dockerfile ('-' is stdin), open its base when asked, and patch it (nothing written)."""
    from ..fileio import read_input
    from .parse import parse_dockerfile
    from .user import open_base_image

    dockerfile = parse_dockerfile(read_input(path, "Dockerfile"), "<stdin>" if path == "-" else path,
                                  build_args or {})
    base = open_base_image(dockerfile, dockerfile.stage(target), open_base)
    return patch(dockerfile, mode, target=target, base=base, open_base=open_base)


def check_destination(paths: tuple[str, ...], *, output: str | None, in_place: bool, to_stdout: bool) -> None:
    """The one-line refusals for where patched Dockerfiles cannot go."""
    if output and in_place:
        raise ImagefixError("use either -o OUT or --in-place, not both")
    if output and len(paths) > 1:
        raise ImagefixError("-o OUT takes one Dockerfile; use --in-place for several")
    if in_place and "-" in paths:
        raise ImagefixError("--in-place cannot replace stdin")
    if to_stdout and len(paths) > 1:
        raise ImagefixError("several Dockerfiles: use --in-place, --check or --diff")
