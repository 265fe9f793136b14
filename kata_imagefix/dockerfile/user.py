"""The USER a Dockerfile stage runs as, and its uid/gid from what the Dockerfile creates (and the base).

Shared by lint (which judges it) and patch (which rewrites it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ImagefixError
from ..image.model import Image
from ..users import Resolution, UserSpec, find_entry, id_field, resolve_user
from .parse import Accounts, Dockerfile, Stage, UserSetting

BaseOpener = Callable[[str], Image]


@dataclass
class EffectiveUser:
    spec: UserSpec
    line: int  # 1-based: the USER instruction, or the FROM line for an inherited base user
    where: str
    resolver: Callable[[], Resolution]
    in_target_stage: bool  # the USER instruction sits in the stage that runs
    written: str = ""  # as the Dockerfile spells it, before ARG/ENV expansion
    unknown: str | None = None  # why the user cannot be known here (variables without a value)

    @property
    def label(self) -> str:
        """`spark`, or `${APP_USER} (www)` when expansion changed it."""
        if self.written and self.written != self.spec.raw:
            return f"{self.written} ({self.spec.raw})"
        return self.spec.raw




def _group_id(ref: str | None, accounts: Accounts, base_groups: bytes | None) -> int | None:
    if ref is None:
        return None
    spec = UserSpec.parse(f":{ref}")
    if spec.gid is not None:
        return spec.gid
    if ref in accounts.groups:
        return accounts.groups[ref]
    fields = find_entry(base_groups, name=ref)
    return id_field(fields[2]) if fields else None


BASE_HINT = ("the user comes from the base image: check it with --resolve-base (or imagefix scan "
             "of the base), then write its ids as USER uid:gid")


def resolve_in_dockerfile(spec: UserSpec, accounts: Accounts, base: Image | None) -> Resolution:
    """uid/gid from the Dockerfile's own useradd/groupadd/adduser, then the base image's files."""
    source = "the Dockerfile" + (" and the base image" if base is not None else "")
    if spec.problem:
        return Resolution(None, None, source, spec.problem)
    base_read = base.read_file if base is not None else (lambda _p: None)
    base_groups = base_read("/etc/group") if spec.group_name else None
    uid, group_ref = spec.uid, None
    name = spec.user_name
    users = {"root": (0, "0"), **accounts.users}  # root is uid 0 by definition
    if name is None and uid is not None:
        group_ref = next((g for u, g in accounts.users.values() if u == uid), None)
    elif name in users:
        uid, group_ref = users[name]
        if uid is None:
            return Resolution(None, None, source,
                              f"the Dockerfile creates {name!r} without a fixed uid (add -u/--uid)",
                              hint=f"create the user with a fixed id (useradd -u UID {name}) and write "
                                   "USER UID:GID")
        if group_ref is None and name in accounts.groups:
            group_ref = name
    elif name is not None and base is not None:
        return resolve_user(spec, base.read_file, "the base image's /etc/passwd and /etc/group")
    elif name is not None:
        return Resolution(None, None, source,
                          f"nothing in the Dockerfile creates {name!r}, so it comes from the base "
                          "image, which was not checked", hint=BASE_HINT)
    if spec.group is not None:
        gid = spec.gid if spec.gid is not None else _group_id(spec.group_name, accounts, base_groups)
        if gid is None:
            return Resolution(uid, None, source, f"no gid for group {spec.group!r} in the Dockerfile"
                              + ("" if base is not None else " (--resolve-base checks the base image)"),
                              hint=None if base is not None else BASE_HINT)
        return Resolution(uid, gid, source)
    gid = _group_id(group_ref, accounts, base_groups)
    if gid is not None:
        return Resolution(uid, gid, source, gid_from_passwd=True)
    if group_ref is None and base is not None:
        return resolve_user(UserSpec.parse(str(uid)), base.read_file,
                            "the base image's /etc/passwd and /etc/group")
    if group_ref is not None:
        return Resolution(uid, None, source,
                          f"group {group_ref!r} gets its gid at build time (groupadd -g/--gid)")
    if any(u == uid for u, _ in accounts.users.values()):
        return Resolution(uid, None, source, "the user's group gets its gid at build time "
                          "(give useradd -g/--gid, or groupadd -g)")
    return Resolution(uid, None, source, "the base image's /etc/passwd decides the primary group "
                      "(not checked: --resolve-base)", hint=BASE_HINT)


def _unknown_user(setting: UserSetting) -> str:
    """Why a USER made of variables without a value has no known user here."""
    names = sorted(set(setting.unresolved))
    args = [n for n in names if n in setting.declared_args]
    if args:
        return (f"USER {setting.raw} uses {', '.join(names)} with no value: give --build-arg "
                f"{args[0]}=... (the build would otherwise run as whatever it expands to)")
    return (f"USER {setting.raw} uses {', '.join(names)}, which the Dockerfile never sets: the base "
            "image's ENV decides (--resolve-base reads it)")


def effective_user(dockerfile: Dockerfile, stage: Stage, base: Image | None) -> EffectiveUser | None:
    setting = dockerfile.user_setting(stage)
    accounts = dockerfile.accounts_for(stage)
    if setting is not None:
        value, unresolved = setting.value, setting.unresolved
        if unresolved and base is not None:
            value, unresolved = setting.expand_over(base.env)
        spec = UserSpec.parse(value)
        where = "the final stage" if stage is dockerfile.stages[-1] else f"stage {stage.name or stage.index}"
        unknown = _unknown_user(setting) if unresolved else None
        return EffectiveUser(
            spec, setting.instruction.line, where,
            lambda: resolve_in_dockerfile(spec, accounts, base),
            in_target_stage=setting.stage == stage.index, written=setting.raw, unknown=unknown,
        )
    if base is None:
        return None
    root = dockerfile.chain(stage)[-1]
    spec = UserSpec.parse(base.user)
    return EffectiveUser(
        spec, root.from_instruction.line, f"the base image {root.base} (inherited)",
        lambda: resolve_user(spec, base.read_file, "the base image's /etc/passwd and /etc/group"),
        in_target_stage=False,
    )


def open_base_image(dockerfile: Dockerfile, stage: Stage, open_base: BaseOpener | None) -> Image | None:
    """The image the stage chain starts FROM (None for scratch or no opener); errors at file:line."""
    root = dockerfile.chain(stage)[-1]
    if open_base is None or root.base.lower() == "scratch":
        return None
    try:
        return open_base(root.base)
    except ImagefixError as exc:
        raise ImagefixError(f"{dockerfile.path}:{root.from_instruction.line}: base image: {exc}") from None


