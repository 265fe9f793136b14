"""Lint a Dockerfile: the effective USER of its final (or --target) stage, through the user rules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .dockerfile import Accounts, Dockerfile, Stage
from .errors import ImagefixError
from .model import Image
from .rules import UserSubject
from .scan import RuleSelection, ScanResult, run_rules
from .users import Resolution, UserSpec, parse_colon_file, resolve_user

BaseOpener = Callable[[str], Image]


@dataclass
class EffectiveUser:
    spec: UserSpec
    line: int  # 1-based: the USER instruction, or the FROM line for an inherited base user
    where: str
    resolver: Callable[[], Resolution]
    in_target_stage: bool  # the USER instruction sits in the stage that runs
    from_base: bool = False
    written: str = ""  # as the Dockerfile spells it, before ARG/ENV expansion

    @property
    def label(self) -> str:
        """`spark`, or `${APP_USER} (www)` when expansion changed it."""
        if self.written and self.written != self.spec.raw:
            return f"{self.written} ({self.spec.raw})"
        return self.spec.raw


@dataclass
class LintResult(ScanResult):
    dockerfile: Dockerfile | None = None
    user: EffectiveUser | None = None


def _group_id(ref: str | None, accounts: Accounts, base_groups: dict[str, list[str]]) -> int | None:
    if ref is None:
        return None
    if ref.isdigit():
        return int(ref)
    if ref in accounts.groups:
        return accounts.groups[ref]
    fields = base_groups.get(ref)
    return int(fields[2]) if fields and fields[2].isdigit() else None


def resolve_in_dockerfile(spec: UserSpec, accounts: Accounts, base: Image | None,
                          unresolved_vars: list[str]) -> Resolution:
    """uid/gid from the Dockerfile's own useradd/groupadd/adduser, then the base image's files."""
    source = "the Dockerfile" + (" and the base image" if base is not None else "")
    if unresolved_vars:
        names = ", ".join(sorted(set(unresolved_vars)))
        return Resolution(None, None, source,
                          f"USER uses {names} with no value (give --build-arg {unresolved_vars[0]}=...)")
    base_read = base.read_file if base is not None else (lambda _p: None)
    base_groups = parse_colon_file(base_read("/etc/group"))
    uid: int | None = None
    group_ref: str | None = None
    if spec.user.isdigit():
        uid = int(spec.user)
        group_ref = next((g for u, g in accounts.users.values() if u == uid), None)
    elif spec.user in accounts.users:
        uid, group_ref = accounts.users[spec.user]
        if uid is None:
            return Resolution(None, None, source,
                              f"the Dockerfile creates {spec.user!r} without a fixed uid (add -u/--uid)")
        if group_ref is None and spec.user in accounts.groups:
            group_ref = spec.user
    elif base is not None:
        return resolve_user(spec, base.read_file, "the base image's /etc/passwd and /etc/group")
    else:
        return Resolution(None, None, source,
                          f"no useradd/adduser in the Dockerfile gives {spec.user!r} a uid, and the base "
                          "image was not checked (--resolve-base)")
    if spec.group is not None:
        gid = _group_id(spec.group, accounts, base_groups)
        if gid is None:
            return Resolution(uid, None, source, f"no gid for group {spec.group!r} in the Dockerfile"
                              + ("" if base is not None else " (--resolve-base checks the base image)"))
        return Resolution(uid, gid, source)
    gid = _group_id(group_ref, accounts, base_groups)
    if gid is None and group_ref is None and base is not None:
        fallback = resolve_user(UserSpec(str(uid), str(uid), None), base.read_file)
        gid = fallback.gid
    if gid is None:
        why = (f"group {group_ref!r} gets its gid at build time (groupadd -g/--gid)" if group_ref
               else "the user's group gets its gid at build time (give useradd -g/--gid, or groupadd -g)")
        return Resolution(uid, None, source, why)
    return Resolution(uid, gid, source)


def effective_user(dockerfile: Dockerfile, stage: Stage, base: Image | None) -> EffectiveUser | None:
    setting = dockerfile.effective_user(stage)
    accounts = dockerfile.accounts_for(stage)
    if setting is not None:
        spec = UserSpec.parse(setting.value)
        where = "the final stage" if stage is dockerfile.stages[-1] else f"stage {stage.name or stage.index}"
        return EffectiveUser(
            spec, setting.instruction.line, where,
            lambda: resolve_in_dockerfile(spec, accounts, base, setting.unresolved),
            in_target_stage=setting.stage == stage.index, written=setting.raw,
        )
    if base is None:
        return None
    root = dockerfile.chain(stage)[-1]
    spec = UserSpec.parse(base.user)
    return EffectiveUser(
        spec, root.from_instruction.line, f"the base image {root.base} (inherited)",
        lambda: resolve_user(spec, base.read_file, "the base image's /etc/passwd and /etc/group"),
        in_target_stage=False, from_base=True,
    )


def lint(dockerfile: Dockerfile, selection: RuleSelection, *, target: str | None = None,
         open_base: BaseOpener | None = None) -> LintResult:
    stage = dockerfile.stage(target)
    root = dockerfile.chain(stage)[-1]
    result = LintResult(dockerfile.path, dockerfile=dockerfile)
    base: Image | None = None
    if open_base is not None and root.base.lower() != "scratch":
        try:
            base = open_base(root.base)
        except ImagefixError as exc:
            where = f"{dockerfile.path}:{root.from_instruction.line}"
            raise ImagefixError(f"{where}: base image: {exc}") from None
    user = effective_user(dockerfile, stage, base)
    result.user = user
    if user is None:
        if root.base.lower() != "scratch":
            result.notes.append(f"USER comes from the base image {root.base}: --resolve-base checks it")
        return result
    subject = UserSubject(user.spec, user.resolver, where=user.where, file=dockerfile.path, line=user.line)
    ignored = dockerfile.global_ignores | dockerfile.ignores.get(user.line, set())
    kept, suppressed = run_rules(subject, "user", selection, extra_ignored=ignored)
    result.findings = kept
    result.suppressed = suppressed
    return result
