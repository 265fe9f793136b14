"""What a RUN, COPY or ADD adds to a stage's account steps (`RUN useradd ...`, a heredoc written to
/etc/passwd, `COPY --from` of the account files): the script the instruction runs, fed to accounts.py."""

from __future__ import annotations

import re

from .accounts import Accounts, collect_copy, collect_file, collect_run
from .instructions import Instruction
from .lexer import expand


def collect_accounts(instruction: Instruction, variables: dict[str, str | None], escape: str,
                     accounts: Accounts) -> None:
    """The account steps of one RUN, COPY or ADD, its variables expanded as the build expands them."""
    keyword = instruction.keyword
    if keyword == "RUN":
        script = expand(_run_script(instruction), variables, escape)[0]
        collect_run(script, accounts)
    elif instruction.heredocs:
        target = instruction.value.split()[-1] if instruction.value.split() else ""
        if target in ("/etc/passwd", "/etc/group"):
            collect_file(target, "".join(instruction.heredocs), accounts)
    elif keyword == "COPY" and "--from" in instruction.value.lower():
        collect_copy(expand(instruction.value, variables, escape)[0], accounts)


def _exec_form(value: str) -> str:
    """`RUN ["useradd", "-u", "1000", "app"]` as the shell line it amounts to (the value otherwise)."""
    if not value.startswith("["):
        return value
    import json
    import shlex

    try:
        words = json.loads(value)
    except ValueError:
        return value  # not JSON: Docker runs it with the shell
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        return value
    return shlex.join(words)


_HEREDOC_MARKER = re.compile(r"""(?<!\S)\d*<<-?(["']?)[^"'\s]+\1(?!\S)""")
_SHELLS = ("sh", "bash", "ash", "dash", "zsh", "ksh")


def _run_script(instruction: Instruction) -> str:
    """The shell script a RUN runs: its command line, and the heredoc bodies the shell executes
    (`RUN <<EOF`, `RUN bash <<EOF`); a body fed to another program (`python3 <<EOF`) is data."""
    if not instruction.heredocs:
        return _exec_form(instruction.value)
    head = _HEREDOC_MARKER.sub(" ", instruction.value).strip()
    program = head.split()[0].rsplit("/", 1)[-1] if head.split() else ""
    if program and program not in _SHELLS:
        data = "\n".join(instruction.heredocs)  # e.g. `cat <<EOF >> /etc/passwd`: lines, not commands
        return f"{head}\n{data}" if "/etc/passwd" in head or "/etc/group" in head else head
    if program:
        head = ""  # `bash <<EOF`: the body is the script
    return "\n".join([head, *instruction.heredocs])
