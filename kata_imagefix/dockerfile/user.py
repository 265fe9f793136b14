"""The USER a Dockerfile stage runs as, and its uid/gid from what the Dockerfile creates (and the base).

Shared by lint (which judges it) and patch (which rewrites it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ImagefixError
from ..image.model import Image
from ..users import Resolution, UserSpec, resolve_user
from .account_files import UNKNOWN, Account, Files, ImageFiles, NoFiles, family_of_reference
from .account_tools import Table, replay
from .parse import Dockerfile, Stage, UserSetting

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




BASE_HINT = ("the user comes from the base image: check it with --resolve-base (or imagefix scan "
             "of the base), then write its ids as USER uid:gid")
FIXED_ID_HINT = "create the user with a fixed id (useradd -u UID NAME) and write USER UID:GID"


def stage_files(dockerfile: Dockerfile, stage: Stage, base: Image | None,
                open_base: BaseOpener | None = None, depth: int = 0) -> Table:
    """The stage's /etc/passwd and /etc/group as its build leaves them: its chain's account steps
    replayed over the base's files (`base`, when it was read), or over another stage's files where
    a COPY --from brings them."""
    root = dockerfile.chain(stage)[-1]
    if root.base.lower() == "scratch":
        below: Files = NoFiles("FROM scratch (no /etc/passwd)")
    elif base is not None:
        below = ImageFiles(base, f"the base image {root.base}")
    else:
        below = Files(f"the base image {root.base}")
    accounts = dockerfile.accounts_for(stage)
    families = accounts.families
    hint = family_of_reference(root.base) or (next(iter(families)) if len(families) == 1 else None)

    def copied(source: str) -> Files:
        other = dockerfile.find_stage(source, len(dockerfile.stages))
        if other is not None and other.index != stage.index and depth < 8:
            other_base = open_base_image(dockerfile, other, open_base) if open_base else None
            table = stage_files(dockerfile, other, other_base, open_base, depth + 1)
            table.what = f"stage {other.name or other.index} ({table.what})"
            return table
        if other is None and open_base is not None and source.lower() != "scratch":
            return ImageFiles(open_base(source), f"the image {source}")
        return Files(f"the image {source}")

    return replay(accounts.steps, below, hint, copied)


def resolve_in_dockerfile(spec: UserSpec, table: Table) -> Resolution:
    """uid/gid as the build leaves them: the Dockerfile's own account steps over the base's files."""
    read = table.known and not isinstance(table.below, NoFiles)  # a base (or a copied stage) was read
    source = f"the Dockerfile and {table.what}" if read else "the Dockerfile"
    if spec.problem:
        return Resolution(None, None, source, spec.problem)
    uid, account = spec.uid, None
    name = spec.user_name
    if name is not None:
        found = table.user(name)
        if found is UNKNOWN:
            return Resolution(None, None, source, f"nothing in the Dockerfile creates {name!r}, so it comes "
                              f"from {table.what}, which was not checked", hint=BASE_HINT)
        if found is None:
            return Resolution(None, None, source, f"no user {name!r}: nothing in the Dockerfile creates it "
                              f"and {table.what} has none")
        assert isinstance(found, Account)
        account, uid = found, found.uid
        if uid is None:
            return Resolution(None, None, source, found.uid_why or f"{name!r} has no fixed uid",
                              hint=FIXED_ID_HINT.replace("NAME", name))
    if spec.group is not None:
        gid, why = (spec.gid, None) if spec.gid is not None else table.group_gid(spec.group)
        if gid is None:
            unchecked = not table.known and table.group(spec.group) is UNKNOWN
            return Resolution(uid, None, source, why or f"no gid for group {spec.group!r}",
                              hint=BASE_HINT if unchecked else None)
        return Resolution(uid, gid, source)
    if account is None and uid is not None:
        by_uid = table.user_by_uid(uid)
        if by_uid is UNKNOWN:
            return Resolution(uid, None, source, f"the primary group of uid {uid} is in {table.what}'s "
                              "/etc/passwd (not checked: --resolve-base)", hint=BASE_HINT)
        if by_uid is None:  # containerd: no passwd entry for the uid means gid 0
            return Resolution(uid, 0, source)
        assert isinstance(by_uid, Account)
        account = by_uid
    assert account is not None
    if account.gid is None:
        hint = ("read the base with --resolve-base, or give the group a fixed gid" if not table.known else
                "give the group a fixed gid (groupadd -g GID NAME, then useradd -g NAME)")
        return Resolution(uid, None, source, account.gid_why or "the user's group gets its gid at build time",
                          hint=f"{hint} and write USER UID:GID")
    return Resolution(uid, account.gid, source, gid_from_passwd=True)


def _unknown_user(setting: UserSetting) -> str:
    """Why a USER made of variables without a value has no known user here."""
    names = sorted(set(setting.unresolved))
    args = [n for n in names if n in setting.declared_args]
    if args:
        return (f"USER {setting.raw} uses {', '.join(names)} with no value: give --build-arg "
                f"{args[0]}=... (the build would otherwise run as whatever it expands to)")
    global_only = [n for n in names if n in setting.global_only]
    if global_only:
        return (f"USER {setting.raw} uses {', '.join(global_only)}, a global ARG (declared before FROM) "
                "that this stage does not redeclare, so it has no value here unless the base image's ENV "
                f"sets it: write ARG {global_only[0]} in the stage, or check the base with --resolve-base")
    via = "; ".join(f"{used} is set from {', '.join('$' + r for r in roots)}"
                    for used, roots in setting.through.items())
    return (f"USER {setting.raw} uses {', '.join(names)}, which the Dockerfile never sets"
            + (f" ({via})" if via else "")
            + ": the base image's ENV decides (--resolve-base reads it)")


def effective_user(dockerfile: Dockerfile, stage: Stage, base: Image | None,
                   open_base: BaseOpener | None = None) -> EffectiveUser | None:
    root = dockerfile.chain(stage)[-1]
    if base is not None and root.base not in dockerfile.base_envs:
        dockerfile = dockerfile.with_base_env(root.base, base.env)  # BuildKit expands over Config.Env
        stage = dockerfile.stages[stage.index]
    setting = dockerfile.user_setting(stage)

    def table() -> Table:
        return stage_files(dockerfile, stage, base, open_base)

    if setting is not None:
        spec = UserSpec.parse(setting.value)
        where = "the final stage" if stage is dockerfile.stages[-1] else f"stage {stage.name or stage.index}"
        unknown = _unknown_user(setting) if setting.unresolved else None
        return EffectiveUser(
            spec, setting.instruction.line, where,
            lambda: resolve_in_dockerfile(spec, table()),
            in_target_stage=setting.stage == stage.index, written=setting.raw, unknown=unknown,
        )
    if base is None:
        return None
    spec = UserSpec.parse(base.user)
    return EffectiveUser(
        spec, root.from_instruction.line, f"the base image {root.base} (inherited)",
        lambda: _inherited(spec, table(), base),
        in_target_stage=False,
    )


def _inherited(spec: UserSpec, table: Table, base: Image) -> Resolution:
    """The base image's own USER: its files, as the Dockerfile's steps leave them."""
    if not table.users and not table.groups:
        return resolve_user(spec, base.read_file, "the base image's /etc/passwd and /etc/group")
    return resolve_in_dockerfile(spec, table)


def open_base_image(dockerfile: Dockerfile, stage: Stage, open_base: BaseOpener | None) -> Image | None:
    """The image the stage chain starts FROM (None for scratch or no opener); errors at file:line."""
    root = dockerfile.chain(stage)[-1]
    if open_base is None or root.base.lower() == "scratch":
        return None
    try:
        return open_base(root.base)
    except ImagefixError as exc:
        raise ImagefixError(f"{dockerfile.path}:{root.from_instruction.line}: base image: {exc}") from None


