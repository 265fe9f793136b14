from collections.abc import Iterator

from .base import Target, rule
from .finding import Draft, Severity
from .kata_subject import KataSubject


@rule("KIF305", "two-hypervisor-tables", Severity.ERROR, Target.KATA, profiles={"generic": None})
def check(subject: KataSubject) -> Iterator[Draft]:
    """Kata config: the merged files (main file + drop-ins) have more than one `[hypervisor.<name>]` table.

    Why: the Go runtime keeps the hypervisor tables in a map and uses the one
    it meets first - in Go's random map order - so the sandbox may start with
    the wrong hypervisor and values. It happens when a drop-in written for one
    configuration (`[hypervisor.qemu] default_memory = ...`) sits in a
    `config.d/` that another configuration (clh, fc) reads too. runtime-rs
    picks by `[runtime] hypervisor_name` and is not affected.

    Fix:   move the drop-in to a config.d of its own (kata-deploy's per-shim
           folders), or name the configuration's own hypervisor in it.
    """
    config = subject.config
    names = config.hypervisors()
    if config.runtime != "go" or len(names) < 2 or not config.loads:
        return
    own = next((n for n in names if config.main.value(("hypervisor", n)) is not None), names[0])
    for toml in config.dropins:
        for name in names:
            line = toml.headers.get(("hypervisor", name))
            if name != own and toml.value(("hypervisor", name)) is not None:
                yield subject.finding(
                    f"[hypervisor.{name}] from this drop-in makes {len(names)} hypervisor tables "
                    f"({', '.join(names)}) with the main file's [hypervisor.{own}]: the Go runtime takes one "
                    "in random order",
                    f"this config.d is read by {config.main.path}: keep the {name} settings in a config.d of "
                    f"their own, or write them under [hypervisor.{own}]",
                    toml.path, line + 1 if line is not None else None, hypervisors=names)
    for name in names:  # the main file itself holds more than one (kata patch refuses to write it)
        line = config.main.headers.get(("hypervisor", name))
        if name != own and config.main.value(("hypervisor", name)) is not None:
            yield subject.finding(
                f"[hypervisor.{name}] makes {len(names)} hypervisor tables ({', '.join(names)}) with "
                f"[hypervisor.{own}] in the same file: the Go runtime takes one in random order",
                f"remove [hypervisor.{name}], or move its settings under [hypervisor.{own}]",
                config.main.path, line + 1 if line is not None else None, hypervisors=names)
