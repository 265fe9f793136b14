"""Lint a Dockerfile: the effective USER of its final (or --target) stage, through the user rules."""

from __future__ import annotations

from ..rules import UserSubject
from ..rules.result import ScanResult
from ..scan import RuleSelection, run_rules
from .parse import Dockerfile
from .user import BaseOpener, EffectiveUser, effective_user, open_base_image


class LintResult(ScanResult):  # a msgspec Struct, as ScanResult is
    dockerfile: Dockerfile | None = None
    user: EffectiveUser | None = None


def lint(dockerfile: Dockerfile, selection: RuleSelection, *, target: str | None = None,
         open_base: BaseOpener | None = None) -> LintResult:
    stage = dockerfile.stage(target)
    root = dockerfile.chain(stage)[-1]
    result = LintResult(dockerfile.path, dockerfile=dockerfile)
    if dockerfile.windows:
        result.notes.append(f"skipped: a Windows image ({dockerfile.windows}) is not a Kata workload")
        return result
    base = open_base_image(dockerfile, stage, open_base)
    user = effective_user(dockerfile, stage, base, open_base)
    result.user = user
    if user is None:
        if root.base.lower() != "scratch":
            result.notes.append(f"USER comes from the base image {root.base}: --resolve-base checks it")
        return result
    subject = UserSubject(user.spec, user.resolver, where=user.where, file=dockerfile.path, line=user.line,
                          unknown=user.unknown, written=user.written or None)
    ignored = dockerfile.global_ignores | dockerfile.ignores.get(user.line, set())
    kept, suppressed = run_rules(subject, "user", selection, extra_ignored=ignored)
    result.findings = kept
    result.suppressed = suppressed
    return result
