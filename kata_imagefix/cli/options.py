"""Options and settings shared by the commands: config file, budget model, rule selection, output."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import click

from ..errors import ImagefixError
from .option_errors import OptionValueError

if TYPE_CHECKING:
    from ..usecases.budgets import KataBudget

FAIL_ON = ("error", "warning", "info", "never")


class _Parsed(click.ParamType):
    """A click type that converts with one of our parsers; what it refuses is an OptionValueError."""

    def __init__(self, name: str, parse: Callable[[Any], Any]) -> None:
        self.name = name
        self._parse = parse

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return self._parse(value)
        except (ImagefixError, TypeError, ValueError) as exc:
            raise OptionValueError(str(exc), ctx=ctx, param=param) from None


def _size(value: Any) -> int:
    from ..sizes import parse_size

    return parse_size(value)


def _growth(value: Any) -> str:
    from ..sizes import parse_growth

    parse_growth(str(value))
    return str(value).strip()


def _auto_or_positive(value: Any) -> str | int:
    text = str(value)
    if text == "auto":
        return text
    if not text.isdigit() or int(text) <= 0:
        raise ImagefixError(f"takes 'auto' or a positive whole number, not {text!r}")
    return int(text)


def _number(kind: type, low: float, *, low_open: bool = False, high: float | None = None):
    """A parser for a whole or decimal number at or above `low` (above it when `low_open`), at most `high`."""

    def parse(value: Any) -> Any:
        text = str(value).strip()
        try:
            number = kind(text)
        except ValueError:
            raise ImagefixError(f"takes a {'whole ' if kind is int else ''}number, not {text!r}") from None
        if number != number or (low_open and number <= low) or number < low or (high is not None and
                                                                                number > high):
            what = "must be positive" if low_open and low == 0 else f"must be at least {low:g}"
            what += f" and at most {high:g}" if high is not None else ""
            raise ImagefixError(f"{what}, not {text}")
        return number

    return parse


POSITIVE_INT = _Parsed("integer", _number(int, 0, low_open=True))
NON_NEGATIVE_INT = _Parsed("integer", _number(int, 0))
POSITIVE_FLOAT = _Parsed("float", _number(float, 0, low_open=True))
NON_NEGATIVE_FLOAT = _Parsed("float", _number(float, 0))
FRACTION = _Parsed("fraction", _number(float, 0, low_open=True, high=1))
SIZE = _Parsed("size", _size)  # 100MB, 512MiB, 4096: bytes
GROWTH = _Parsed("growth", _growth)  # 50MB or 10% (checked, kept as written)
AUTO_OR_INT = _Parsed("auto|int", _auto_or_positive)


def config_values(ctx: click.Context) -> dict[str, Any]:
    from ..settings import KNOWN_KEYS, find_config, load_settings

    if "config" not in ctx.obj:
        path = ctx.obj.get("config_path")
        if path is not None and not path.exists():
            raise ImagefixError(f"cannot read config {path}: no such file")
        path = path or find_config()
        ctx.obj["config_file"] = path
        known = set(KNOWN_KEYS) | set(long_flags(ctx.find_root().command)) | {"color"}
        ctx.obj["config"] = load_settings(path, known)
    return ctx.obj["config"]


def _long_name(param: click.Parameter) -> str | None:
    if not isinstance(param, click.Option):
        return None
    return next((opt[2:] for opt in param.opts if opt.startswith("--")), None)


def long_flags(group: click.Command) -> dict[str, list[tuple[tuple[str, ...], click.Option]]]:
    """Every long flag below `group`: name -> [(command path, option)] (help excluded)."""
    out: dict[str, list[tuple[tuple[str, ...], click.Option]]] = {}

    def walk(command: click.Command, path: tuple[str, ...]) -> None:
        if isinstance(command, click.Group):
            for sub_name, sub in command.commands.items():
                walk(sub, (*path, sub_name))
            return
        for param in command.params:
            name = _long_name(param)
            if name and name != "help":
                out.setdefault(name, []).append((path, param))  # type: ignore[arg-type]

    walk(group, ())
    return out


def config_defaults(ctx: click.Context) -> dict[str, Any]:
    """The config as click's default_map: each key becomes the default of that flag on every command
    that has it (`budget = "800MB"` for report, `files = 20`, ...); flags on the command line win."""
    config = config_values(ctx)
    where = ctx.obj.get("config_file")
    defaults: dict[str, Any] = {}
    for name, uses in long_flags(ctx.command).items():
        if name not in config:
            continue
        problem = None
        taken = 0
        for path, option in uses:  # a value some commands refuse (format = "sarif") sets the others
            value = config[name]
            if option.multiple and isinstance(value, str):
                value = [value]
            try:
                option.type_cast_value(ctx, value)
            except click.BadParameter as exc:
                problem = exc.message
                continue
            taken += 1
            node = defaults
            for part in path:
                node = node.setdefault(part, {})
            node[option.name] = value
        if not taken and problem:
            raise ImagefixError(f"config {where}: {name}: {problem}")
    return defaults


def setting(ctx: click.Context, cli_value: Any, key: str, default: Any,
             convert: Callable[[Any], Any] = lambda v: v) -> Any:
    if cli_value not in (None, ()):
        return convert(cli_value)
    config = config_values(ctx)
    if key in config:
        try:
            return convert(config[key])
        except (TypeError, ValueError) as exc:
            raise ImagefixError(f"config key {key!r}: {exc}") from None
    return convert(default) if default is not None else None


def parse_fail_on(value: str):
    from ..rules.finding import Severity

    if value not in FAIL_ON:
        raise ImagefixError(f"fail-on must be one of {', '.join(FAIL_ON)}, not {value!r}")
    return None if value == "never" else Severity.parse(value)


def stacked(options: list[Callable], func: Callable) -> Callable:
    """Apply click options so that --help lists them in the order given."""
    for option in reversed(options):
        func = option(func)
    return func


def budget_options(func: Callable) -> Callable:
    """The budget model's settings, shared by every command that estimates; defaults from BudgetModel."""
    from ..model.budget import BudgetModel

    d = BudgetModel()
    options = [
        click.option("--guest-memory", type=POSITIVE_INT, metavar="MiB",
                     help=f"Guest memory (Kata default_memory). [default: {d.guest_memory_mib}]"),
        click.option("--pull-rate", type=POSITIVE_FLOAT, metavar="MB/s",
                     help=f"Guest pull + unpack rate. [default: {d.pull_rate_mb_s:g}]"),
        click.option("--create-timeout", type=POSITIVE_INT, metavar="S",
                     help=f"Kata create_container_timeout in force. [default: {d.create_timeout_s}]"),
        click.option("--kubelet-timeout", type=POSITIVE_INT, metavar="S",
                     help=f"kubelet runtimeRequestTimeout in force. [default: {d.kubelet_timeout_s}]"),
        click.option("--memory-reserve", type=NON_NEGATIVE_INT, metavar="MiB",
                     help=f"Guest memory kept for kernel, agent and workload. "
                          f"[default: {d.memory_reserve_mib}]"),
        click.option("--pull-overhead", type=NON_NEGATIVE_FLOAT, metavar="S",
                     help=f"Fixed cost of a guest pull. [default: {d.overhead_s:g}]"),
        click.option("--safety-factor", type=POSITIVE_FLOAT,
                     help=f"Margin on the estimate. [default: {d.safety_factor:g}]"),
        click.option("--tmpfs-fraction", type=FRACTION,
                     help=f"Share of guest memory the image tmpfs may use. [default: {d.tmpfs_fraction:g}]"),
    ]
    return stacked(options, func)


def budget_model(ctx: click.Context, kw: dict[str, Any]):
    from ..model.budget import BudgetModel

    defaults = BudgetModel()
    values = {
        "guest_memory_mib": ("guest_memory", "guest-memory", int),
        "pull_rate_mb_s": ("pull_rate", "pull-rate", float),
        "create_timeout_s": ("create_timeout", "create-timeout", int),
        "kubelet_timeout_s": ("kubelet_timeout", "kubelet-timeout", int),
        "memory_reserve_mib": ("memory_reserve", "memory-reserve", int),
        "overhead_s": ("pull_overhead", "pull-overhead", float),
        "safety_factor": ("safety_factor", "safety-factor", float),
        "tmpfs_fraction": ("tmpfs_fraction", "tmpfs-fraction", float),
    }
    given = {field: kw.get(arg) for field, (arg, _, _) in values.items()}
    settings = {field: setting(ctx, kw.pop(arg), key, getattr(defaults, field), convert)
                for field, (arg, key, convert) in values.items()}
    if settings["pull_rate_mb_s"] <= 0 or settings["guest_memory_mib"] <= 0:
        raise ImagefixError("pull rate and guest memory must be positive")
    if not 0 < settings["tmpfs_fraction"] <= 1:
        raise ImagefixError("tmpfs fraction must be between 0 and 1")
    config = config_values(ctx)
    stated = tuple(f for f, (_, key, _) in values.items() if given[f] not in (None, ()) or key in config)
    return BudgetModel(**settings, stated=stated)


def selection_options(func: Callable) -> Callable:
    from ..settings import PROFILES

    options = [
        click.option("--profile", type=click.Choice(PROFILES),
                     help="kata-tdx: guest pull (default); kata: host pull; generic: sizes only."),
        click.option("--fail-on", type=click.Choice(FAIL_ON),
                     help="Exit 1 on findings at or above this severity. [default: error]"),
        click.option("--select", multiple=True, metavar="IDS",
                     help="Only these rules (ids or prefixes, comma-separated)."),
        click.option("--ignore", multiple=True, metavar="IDS",
                     help="Leave these rules out (ids or prefixes)."),
    ]
    return stacked(options, func)


def rule_selection(ctx: click.Context, kw: dict[str, Any]):
    from ..rules import catalogue
    from ..scan import RuleSelection
    from ..settings import id_list

    select = tuple(setting(ctx, kw.pop("select"), "select", None, id_list) or ())
    ignore = tuple(setting(ctx, kw.pop("ignore"), "ignore", None, id_list) or ())
    for rule_id in select + ignore:
        if not any(known.startswith(rule_id) for known in catalogue()):
            raise ImagefixError(f"unknown rule id {rule_id!r}; `imagefix rules` lists them")
    profile = setting(ctx, kw.pop("profile"), "profile", "kata-tdx")
    from ..settings import PROFILES

    if profile not in PROFILES:
        raise ImagefixError(f"profile must be one of {', '.join(PROFILES)}, not {profile!r}")
    fail_on = setting(ctx, kw.pop("fail_on"), "fail-on", "error", parse_fail_on)
    return RuleSelection(profile, select, ignore), fail_on


def fails(result: Any, fail_on: Any) -> bool:
    """A result has a finding at or above --fail-on."""
    return fail_on is not None and any(f.severity >= fail_on for f in result.findings)


def exit_code(results: Iterable[Any], fail_on: Any, errors: list) -> int:
    """2 for an input error, else 1 if any result fails, else 0 (every command's rule)."""
    if errors:
        return 2
    return 1 if any(fails(r, fail_on) for r in results) else 0


def registry_flags(func: Callable | None = None, *, max_platforms: str | None = None) -> Callable:
    """The registry flags; `--max-platforms` only where a command reads every platform of an index
    (`max_platforms` says when, for its help: "With --all-platforms")."""
    if func is None:
        return lambda f: registry_flags(f, max_platforms=max_platforms)
    options = [
        click.option("--insecure-registry", "insecure", multiple=True, metavar="HOST[:PORT]",
                     help="Allow plain HTTP / no TLS check for this registry (loopback always may)."),
        click.option("--username", help="Registry user (with --password-stdin)."),
        click.option("--password-stdin", is_flag=True, help="Read the registry password from stdin."),
        click.option("--registry-timeout", type=click.FloatRange(0.1, 3600), metavar="S",
                     help="Give up on a silent registry after S seconds. [default: 30]"),
        click.option("--stall-seconds", type=click.FloatRange(0.1, 3600), metavar="S",
                     help="Give up on a blob when under 64 KiB arrive in S seconds. [default: 30]"),
        click.option("--deadline-seconds", type=click.FloatRange(1, 86400), metavar="S",
                     help="Give up on a blob after S seconds plus its size at 1 MB/s. [default: 60]"),
    ]
    if max_platforms:
        options.append(click.option("--max-platforms", type=click.IntRange(1, 10000), metavar="N",
                                    help=f"{max_platforms}, consider at most N entries of an index. "
                                         "[default: 64]"))
    return stacked(options, func)


def registry_options(ctx: click.Context, kw: dict[str, Any]):
    from ..registry.options import RegistryOptions

    credentials = None
    if kw.pop("password_stdin"):
        from ..registry.auth import Credentials

        if not kw.get("username"):
            raise ImagefixError("--password-stdin needs --username")
        password = sys.stdin.readline().rstrip("\r\n")
        credentials = Credentials(kw["username"], password)
    elif kw.get("username"):
        raise ImagefixError("--username needs --password-stdin (passwords never go on the command line)")
    kw.pop("username", None)
    insecure = tuple(kw.pop("insecure")) or tuple(setting(ctx, None, "insecure-registry", None, list) or ())
    timeout = setting(ctx, kw.pop("registry_timeout"), "registry-timeout", 30.0, float)
    return RegistryOptions(insecure=insecure, credentials=credentials, timeout=timeout,
                           exact=kw.pop("exact"), all_platforms=kw.pop("all_platforms"),
                           platform=kw.get("platform"),
                           stall_seconds=setting(ctx, kw.pop("stall_seconds"), "stall-seconds", 30.0, float),
                           deadline_seconds=setting(ctx, kw.pop("deadline_seconds"), "deadline-seconds", 60.0,
                                                    float),
                           max_platforms=setting(ctx, kw.pop("max_platforms", None), "max-platforms", 64,
                                                 int))


def user_mode_option(func: Callable) -> Callable:
    """`--user-mode` from users.USER_MODES."""
    from ..users import USER_MODES

    return click.option("--user-mode", type=click.Choice(list(USER_MODES)), default="numeric",
                        show_default=True,
                        help="; ".join(f"{name}: {what}" for name, what in USER_MODES.items()))(func)


def format_option(func: Callable) -> Callable:
    """`--format` with every findings format of output.FINDING_FORMATS."""
    from ..output import FINDING_FORMATS

    return click.option("--format", "fmt", type=click.Choice(list(FINDING_FORMATS)), default="text",
                        show_default=True,
                        help="; ".join(f"{f.name}: {f.what}" for f in FINDING_FORMATS.values()))(func)


def emit_results(results: list, fmt: str, fail_on, profile: str, errors: list,
                 *, key: str = "images", show_location: bool = False) -> None:
    from ..output import FINDING_FORMATS, RenderOptions

    options = RenderOptions(fail_on, profile, errors, key, show_location)
    click.echo(FINDING_FORMATS[fmt].render(results, options), nl=False)


def exact_option(func: Callable) -> Callable:
    """`--exact`: registry images streamed and counted, as `scan --exact`."""
    return click.option("--exact", is_flag=True,
                        help="Registry images: stream every layer and count its files (else sizes come from "
                             "each blob's gzip trailer / zstd header, or are estimated and marked).")(func)


def kata_budget(ctx: click.Context, kw: dict[str, Any]) -> KataBudget:
    """The flags' budget model, and the Kata values the command line gave (they win over a config's)."""
    from ..usecases.budgets import KataBudget

    memory, timeout = kw.get("guest_memory"), kw.get("create_timeout")
    return KataBudget(budget_model(ctx, kw), memory, timeout)


def force_option(func: Callable) -> Callable:
    """`--force`: the write policy's override for a read-only file or one with other hard links."""
    return click.option("--force", is_flag=True,
                        help="Write even a read-only file or one with other hard links.")(func)


def output_option(what: str) -> Callable[[Callable], Callable]:
    """`-o/--output FILE|-` of a command that produces a document ('-' is stdout), and `--force`."""

    def decorate(func: Callable) -> Callable:
        return stacked([click.option("-o", "--output", "output", metavar="FILE|-",
                                     help=f"Write {what} to FILE ('-': stdout) instead of stdout."),
                        force_option], func)

    return decorate


def edit_options(what: str) -> Callable[[Callable], Callable]:
    """The write policy's flags of an editing command (writing.EditPolicy): `-o FILE|-`, `--in-place`,
    `--no-backup`, `--check`, `--diff`, `--force`; `edit_policy(kw)` takes them back out."""

    def decorate(func: Callable) -> Callable:
        options = [
            click.option("-o", "--output", "output", metavar="FILE|-",
                         help=f"Write the {what} to FILE ('-': stdout), changed or not."),
            click.option("--in-place", is_flag=True,
                         help=f"Replace each {what} that changes, atomically and through symlinks, keeping "
                              "the old one as a numbered backup (NAME.bak, NAME.bak.1, ...)."),
            click.option("--no-backup", is_flag=True,
                         help="With --in-place: keep no backup (the file is under version control)."),
            click.option("--check", is_flag=True, help="Change nothing; exit 1 if anything would change."),
            click.option("--diff", "show_diff", is_flag=True,
                         help="Print a unified diff of each change (alone: write nothing)."),
            force_option,
        ]
        return stacked(options, func)

    return decorate


def edit_policy(kw: dict[str, Any]):
    """The EditPolicy of the flags `edit_options` added (popped from the command's keywords)."""
    from ..writing import EditPolicy

    return EditPolicy(output=kw.pop("output"), in_place=kw.pop("in_place"), check=kw.pop("check"),
                      diff=kw.pop("show_diff"), force=kw.pop("force"), backup=not kw.pop("no_backup"))
