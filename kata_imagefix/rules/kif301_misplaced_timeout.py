from collections.abc import Iterator

from .base import Target, rule
from .finding import Draft, Severity
from .kata_subject import TIMEOUT_KEY, KataSubject


def _fatal(runtime: str, table: tuple[str, ...], in_dropin: bool) -> bool:
    from ..kata.config import fatal_table  # the Kata config reader only where a config is checked

    return fatal_table(runtime, table, in_dropin)


@rule("KIF301", "timeout-in-ignored-table", Severity.ERROR, Target.KATA,
      profiles={"generic": None})
def check(subject: KataSubject) -> Iterator[Draft]:
    """Kata config: `create_container_timeout` in a table where the runtime ignores it or refuses the file.

    Why: the Go runtime (kata-qemu-tdx) reads `create_container_timeout` only
    from `[runtime]`, runtime-rs only from `[agent.kata]`. The popular recipe
    puts it under `[factory]`: the Go runtime drops the unknown key silently
    (a drop-in at least logs "undecoded keys"), so another value stays in
    force. In some tables the key is fatal: runtime-rs's
    `[hypervisor.<hv>.factory]` and `[agent.kata.mem_agent]` reject unknown
    keys, and a Go drop-in with it under `[agent.kata]` fails to apply - the
    runtime then refuses to load the configuration at all.

    Bad:   [factory]
           create_container_timeout = 120
    Good:  [runtime]
           create_container_timeout = 120
    Fix:   imagefix kata patch CONFIG --in-place (moves it, keeps its value and every comment).
    """
    config = subject.config
    right = ".".join(config.timeout_table)
    value_now = config.timeout[0]
    for toml in config.files:
        in_dropin = toml is not config.main
        for entry in toml.entries_named(TIMEOUT_KEY):
            if entry.table == config.timeout_table:
                continue
            where = ".".join(entry.table) or "the top level"
            fatal = _fatal(config.runtime, entry.table, in_dropin)
            if fatal:
                effect = "the runtime refuses to load this configuration (the table rejects unknown keys)"
            elif config.loads:
                effect = f"ignored, so {value_now} s is in force"
            else:
                effect = "ignored"
            if in_dropin:
                fix = (f"move it to [{right}] in the drop-in: `imagefix kata patch {config.main.path} "
                       f"--drop-in {toml.path}`")
            elif config.kata_deploy and fatal:
                fix = (f"remove it from the file (a drop-in cannot): `imagefix kata patch {config.main.path} "
                       "--in-place` - kata-deploy replaces this file on upgrade, so keep the value itself "
                       f"in a drop-in (`--drop-in {config.dropin_dir}/90-imagefix.toml`)")
            elif config.kata_deploy and config.loads and value_now >= (toml.value(entry.path) or 0):
                fix = (f"the {value_now} s in force already covers it; the line itself changes nothing - "
                       "delete it by hand if you like (kata-deploy replaces this file on upgrade)")
            elif config.kata_deploy:
                fix = (f"set it where Kata reads it, in a drop-in (kata-deploy manages this file): "
                       f"`imagefix kata patch {config.main.path} {config.patch_mode}`")
            else:
                fix = f"move it to [{right}]: `imagefix kata patch {config.main.path} --in-place`"
            yield subject.finding(
                f"{TIMEOUT_KEY} under [{where}]: the {config.runtime} runtime reads it only from [{right}] "
                f"({config.runtime_reason}); here it is {effect}",
                fix, toml.path, entry.line + 1, table=where, expected_table=right,
            )
