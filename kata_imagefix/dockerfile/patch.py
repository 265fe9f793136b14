"""Patch a Dockerfile's effective USER, changing no byte outside the instruction it rewrites."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from ..errors import ImagefixError
from ..image.model import Image
from ..users import USER_MODES, UserKind, UserSpec
from ..users.modes import choose_user
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
    """(USER value, comment) for this mode, or None when the user needs no change (users.modes decides)."""
    if user.unknown:
        return None  # the base image decides (KIF106): nothing known to rewrite
    try:
        choice = choose_user(user.spec, mode, user.resolver)
    except ImagefixError as exc:
        hint = "" if user.spec.kind is UserKind.INVALID else \
            "; fix the Dockerfile or use --user-mode reset|root"
        raise ImagefixError(f"{dockerfile.path}:{user.line}: {exc}{hint}") from None
    if choice.kept:
        return None
    if choice.by_mode and choice.value == '""':
        return '""', f'USER {user.label} -> USER "": the container runs as ROOT ({_WHY})'
    if choice.by_mode:
        return choice.value, f"USER {user.label} -> {choice.value}: the container runs as root ({_WHY})"
    why = _WHY_GROUP if choice.lost_group else _WHY
    return choice.value, f"USER {user.label} -> {choice.value} ({why})"


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
        final = lines[instruction.end]
        ending = final[len(final.rstrip("\r\n")):]
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
    from .parse import MAX_BYTES, parse_dockerfile
    from .user import open_base_image

    dockerfile = parse_dockerfile(read_input(path, "Dockerfile", MAX_BYTES),
                                  "<stdin>" if path == "-" else path, build_args or {})
    base = open_base_image(dockerfile, dockerfile.stage(target), open_base)
    return patch(dockerfile, mode, target=target, base=base, open_base=open_base)

