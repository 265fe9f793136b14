from ..model import Severity
from .base import rule
from .kata_subject import TIMEOUT_KEY, KataSubject


@rule("KIF301", "timeout-in-ignored-table", Severity.ERROR, "kata")
def check(subject: KataSubject):
    """Kata config: `create_container_timeout` in a table where Kata ignores it.

    Why: the Go runtime (kata-qemu-tdx) reads `create_container_timeout` only
    from `[runtime]`, runtime-rs only from `[agent.kata]`. The popular recipe
    puts it under `[factory]`, which only knows enable_template, template_path,
    vm_cache_number and vm_cache_endpoint: the key is silently ignored (drop-in
    files at least log "undecoded keys") and the 60 s default stays.

    Bad:   [factory]
           create_container_timeout = 120
    Good:  [runtime]
           create_container_timeout = 120
    Fix:   imagefix kata patch CONFIG --in-place (moves it, keeps every comment).
    """
    config = subject.config
    right = ".".join(config.timeout_table)
    for toml in config.files:
        for entry in toml.entries_named(TIMEOUT_KEY):
            if entry.table == config.timeout_table:
                continue
            where = ".".join(entry.table) or "the top level"
            yield subject.finding(
                "KIF301",
                f"{TIMEOUT_KEY} under [{where}] is ignored by Kata: the {config.runtime} runtime reads it "
                f"only from [{right}] ({config.runtime_reason}), so the default "
                f"{config.timeout[0]} s stays in force",
                f"move it to [{right}]: imagefix kata patch {config.main.path} --in-place",
                toml.path, entry.line + 1, table=where, expected_table=right,
            )
