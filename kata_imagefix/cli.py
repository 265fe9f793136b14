"""Click commands only: parse, call, render, exit code.

Exit codes: 0 nothing at or above --fail-on, 1 findings at or above it,
2 bad usage or input (one line on stderr; --debug shows the traceback).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from . import __version__
from .errors import ImagefixError

FAIL_ON = ("error", "warning", "info", "never")


class ImagefixGroup(click.Group):
    """Turns ImagefixError (and any crash) into one line on stderr and exit 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ImagefixError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"imagefix: error: {exc}", err=True)
            ctx.exit(2)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("imagefix: interrupted", err=True)
            ctx.exit(130)
        except Exception as exc:  # a bug: still one line, with the way to see more
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"imagefix: internal error: {type(exc).__name__}: {exc} "
                       "(run with --debug for the traceback)", err=True)
            ctx.exit(2)


@click.group(cls=ImagefixGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="imagefix")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Settings file (default: nearest .imagefix.toml or [tool.imagefix]).")
@click.pass_context
def main(ctx: click.Context, debug: bool, config_path: Path | None) -> None:
    """Get container images ready for Kata Containers (kata-qemu-tdx)."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    ctx.obj["config_path"] = config_path


def _config(ctx: click.Context) -> dict[str, Any]:
    from .settings import find_config, load_config

    if "config" not in ctx.obj:
        path = ctx.obj.get("config_path")
        if path is not None and not path.exists():
            raise ImagefixError(f"cannot read config {path}: no such file")
        ctx.obj["config"] = load_config(path or find_config())
    return ctx.obj["config"]


def _setting(ctx: click.Context, cli_value: Any, key: str, default: Any,
             convert: Callable[[Any], Any] = lambda v: v) -> Any:
    if cli_value not in (None, ()):
        return convert(cli_value)
    config = _config(ctx)
    if key in config:
        try:
            return convert(config[key])
        except (TypeError, ValueError) as exc:
            raise ImagefixError(f"config key {key!r}: {exc}") from None
    return convert(default) if default is not None else None


def _fail_on(value: str):
    from .model import Severity

    if value not in FAIL_ON:
        raise ImagefixError(f"fail-on must be one of {', '.join(FAIL_ON)}, not {value!r}")
    return None if value == "never" else Severity.parse(value)


def budget_options(func: Callable) -> Callable:
    """The budget model's settings, shared by every command that estimates."""
    options = [
        click.option("--guest-memory", type=int, metavar="MiB",
                     help="Guest memory (Kata default_memory). [default: 2048]"),
        click.option("--pull-rate", type=float, metavar="MB/s",
                     help="Guest pull + unpack rate. [default: 10]"),
        click.option("--create-timeout", type=int, metavar="S",
                     help="Kata create_container_timeout in force. [default: 60]"),
        click.option("--kubelet-timeout", type=int, metavar="S",
                     help="kubelet runtimeRequestTimeout in force. [default: 120]"),
        click.option("--memory-reserve", type=int, metavar="MiB",
                     help="Guest memory kept for kernel, agent and workload. [default: 512]"),
        click.option("--pull-overhead", type=float, metavar="S",
                     help="Fixed cost of a guest pull. [default: 5]"),
        click.option("--safety-factor", type=float, help="Margin on the estimate. [default: 1.5]"),
        click.option("--tmpfs-fraction", type=float,
                     help="Share of guest memory the image tmpfs may use. [default: 0.5]"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def budget_model(ctx: click.Context, kw: dict[str, Any]):
    from .budget import BudgetModel

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
    settings = {field: _setting(ctx, kw.pop(arg), key, getattr(defaults, field), convert)
                for field, (arg, key, convert) in values.items()}
    if settings["pull_rate_mb_s"] <= 0 or settings["guest_memory_mib"] <= 0:
        raise ImagefixError("pull rate and guest memory must be positive")
    if not 0 < settings["tmpfs_fraction"] <= 1:
        raise ImagefixError("tmpfs fraction must be between 0 and 1")
    return BudgetModel(**settings)


def selection_options(func: Callable) -> Callable:
    from .settings import PROFILES

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
    for option in reversed(options):
        func = option(func)
    return func


def rule_selection(ctx: click.Context, kw: dict[str, Any]):
    from .rules import REGISTRY
    from .scan import RuleSelection
    from .settings import id_list

    select = tuple(_setting(ctx, kw.pop("select"), "select", None, id_list) or ())
    ignore = tuple(_setting(ctx, kw.pop("ignore"), "ignore", None, id_list) or ())
    for rule_id in select + ignore:
        if not any(known.startswith(rule_id) for known in REGISTRY):
            raise ImagefixError(f"unknown rule id {rule_id!r}; `imagefix rules` lists them")
    profile = _setting(ctx, kw.pop("profile"), "profile", "kata-tdx")
    from .settings import PROFILES

    if profile not in PROFILES:
        raise ImagefixError(f"profile must be one of {', '.join(PROFILES)}, not {profile!r}")
    fail_on = _setting(ctx, kw.pop("fail_on"), "fail-on", "error", _fail_on)
    return RuleSelection(profile, select, ignore), fail_on


def exit_code(results: list, fail_on, errors: list) -> int:
    if errors:
        return 2
    if fail_on is not None and any(f.severity >= fail_on for r in results for f in r.findings):
        return 1
    return 0


def _read_refs(refs: tuple[str, ...], from_file: str | None) -> list[str]:
    items = list(refs)
    if from_file:
        try:
            handle = sys.stdin if from_file == "-" else open(from_file, encoding="utf-8")  # noqa: SIM115
            with handle:
                items += [line.strip() for line in handle
                          if line.strip() and not line.lstrip().startswith("#")]
        except OSError as exc:
            raise ImagefixError(f"cannot read {from_file}: {exc.strerror}") from None
    if not items:
        raise ImagefixError("no image given: name one or more references (or --from-file)")
    return items


def registry_flags(func: Callable) -> Callable:
    options = [
        click.option("--insecure-registry", "insecure", multiple=True, metavar="HOST[:PORT]",
                     help="Allow plain HTTP / no TLS check for this registry (loopback always may)."),
        click.option("--username", help="Registry user (with --password-stdin)."),
        click.option("--password-stdin", is_flag=True, help="Read the registry password from stdin."),
        click.option("--registry-timeout", type=click.FloatRange(0.1, 3600), metavar="S",
                     help="Give up on a silent registry after S seconds. [default: 30]"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@main.command()
@click.argument("refs", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["text", "json", "sarif"]), default="text",
              show_default=True)
@selection_options
@click.option("--max-layer-size", metavar="SIZE", help="Per-layer limit for KIF201. [default: 100MB]")
@click.option("--platform", metavar="OS/ARCH[/VARIANT]",
              help="Platform to pick from a multi-platform image. [default: this host's]")
@click.option("--all-platforms", is_flag=True, help="Scan every platform of a multi-platform image.")
@click.option("--exact", is_flag=True,
              help="Registry images: stream the layers to count unpacked sizes (else estimated).")
@registry_flags
@click.option("--jobs", type=click.IntRange(1, 64), help="Images scanned at once. [default: 4]")
@click.option("--from-file", metavar="FILE", help="Read references from FILE, one per line ('-': stdin).")
@budget_options
@click.pass_context
def scan(ctx: click.Context, refs: tuple[str, ...], fmt: str, **kw: Any) -> None:
    """Scan images for what breaks on Kata (named users, size against the guest budget).

    REF is NAME[:TAG] (local engine), docker-daemon:NAME[:TAG|@DIGEST],
    docker-archive:PATH[:NAME:TAG], oci:DIR[:TAG] or oci-archive:TAR[:TAG].
    """
    from .reference import parse_image_ref
    from .scan import DEFAULT_MAX_LAYER_SIZE, ScanResult, scan_image
    from .sizes import parse_size
    from .sources import open_images

    selection, fail_on = rule_selection(ctx, kw)
    registry = _registry_options(ctx, kw)
    if fmt == "text":
        from .output import progress

        progress.enabled = True
    model = budget_model(ctx, kw)
    max_layer = _setting(ctx, kw["max_layer_size"], "max-layer-size", DEFAULT_MAX_LAYER_SIZE, parse_size)
    jobs = _setting(ctx, kw["jobs"], "jobs", 4, int)
    items = _read_refs(refs, kw["from_file"])
    parsed = [parse_image_ref(item) for item in items]  # bad references stop before any work

    def one(ref) -> list[ScanResult] | ImagefixError:
        try:
            images = open_images(ref, platform=kw["platform"], registry=registry)
            return [scan_image(image, selection, model, max_layer) for image in images]
        except ImagefixError as exc:
            return exc

    if len(parsed) == 1 or jobs == 1:
        outcomes = [one(ref) for ref in parsed]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            outcomes = list(pool.map(one, parsed))

    results = [r for o in outcomes if not isinstance(o, ImagefixError) for r in o]
    errors = [(ref.original, str(o)) for ref, o in zip(parsed, outcomes, strict=True)
              if isinstance(o, ImagefixError)]
    for _, message in errors:
        click.echo(f"imagefix: error: {message}", err=True)
    _emit_results(results, fmt, fail_on, selection.profile, errors)
    ctx.exit(exit_code(results, fail_on, errors))


def _registry_options(ctx: click.Context, kw: dict[str, Any]):
    from .registry.auth import Credentials
    from .sources.registry import RegistryOptions

    credentials = None
    if kw.pop("password_stdin"):
        if not kw.get("username"):
            raise ImagefixError("--password-stdin needs --username")
        password = sys.stdin.readline().rstrip("\r\n")
        credentials = Credentials(kw["username"], password)
    elif kw.get("username"):
        raise ImagefixError("--username needs --password-stdin (passwords never go on the command line)")
    kw.pop("username", None)
    insecure = tuple(kw.pop("insecure")) or tuple(_setting(ctx, None, "insecure-registry", None, list) or ())
    timeout = _setting(ctx, kw.pop("registry_timeout"), "registry-timeout", 30.0, float)
    return RegistryOptions(insecure=insecure, credentials=credentials, timeout=timeout,
                           exact=kw.pop("exact"), all_platforms=kw.pop("all_platforms"),
                           platform=kw.get("platform"))


def _emit_results(results: list, fmt: str, fail_on, profile: str, errors: list,
                  *, key: str = "images", show_location: bool = False) -> None:
    if fmt == "json":
        from .output import json_out

        click.echo(json_out.render(results, fail_on, profile=profile, errors=errors, key=key), nl=False)
    elif fmt == "sarif":
        from .output import sarif

        click.echo(sarif.render(results), nl=False)
    elif fmt == "gnu":
        from .output import gnu

        click.echo(gnu.render(results), nl=False)
    else:
        from .output import text

        click.echo(text.render(results, fail_on, show_location=show_location), nl=False)


def _build_args(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ImagefixError(f"--build-arg takes NAME=VALUE, not {item!r}")
        out[name] = value
    return out


def _base_opener(resolve: bool):
    """Opens FROM images for --resolve-base (daemon first, as `scan` does), once per name."""
    if not resolve:
        return None
    from .sources import open_image

    cache: dict[str, Any] = {}

    def open_base(ref: str):
        if ref not in cache:
            cache[ref] = open_image(ref)
        return cache[ref]

    return open_base


def _load_dockerfile(path: str, build_args: dict[str, str]):
    from .dockerfile import parse_dockerfile
    from .fileio import read_input

    data = read_input(path, "Dockerfile")
    return parse_dockerfile(data, "<stdin>" if path == "-" else path, build_args)


def dockerfile_options(func: Callable) -> Callable:
    options = [
        click.option("--build-arg", "build_args", multiple=True, metavar="NAME=VALUE",
                     help="Override an ARG, as docker build does."),
        click.option("--target", metavar="STAGE", help="Check this stage instead of the last one."),
        click.option("--resolve-base", is_flag=True,
                     help="Look up the FROM image (local engine) for inherited users and their ids."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@main.command()
@click.argument("dockerfiles", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json", "sarif", "gnu"]), default="text",
              show_default=True)
@selection_options
@dockerfile_options
@click.pass_context
def lint(ctx: click.Context, dockerfiles: tuple[str, ...], fmt: str, build_args: tuple[str, ...],
         target: str | None, resolve_base: bool, **kw: Any) -> None:
    """Find USER problems in Dockerfiles ('-' reads stdin), at the line that causes them."""
    from .lint import lint as lint_one

    selection, fail_on = rule_selection(ctx, kw)
    args = _build_args(build_args)
    open_base = _base_opener(resolve_base)
    results, errors = [], []
    for path in dockerfiles:
        try:
            results.append(lint_one(_load_dockerfile(path, args), selection, target=target,
                                    open_base=open_base))
        except ImagefixError as exc:
            errors.append((path, str(exc)))
            click.echo(f"imagefix: error: {exc}", err=True)
    _emit_results(results, fmt, fail_on, selection.profile, errors, key="files", show_location=True)
    ctx.exit(exit_code(results, fail_on, errors))


@main.command()
@click.argument("dockerfiles", nargs=-1, required=True)
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False),
              help="Write the patched Dockerfile here (always written, changed or not).")
@click.option("--in-place", is_flag=True, help="Replace each Dockerfile atomically when it changes.")
@click.option("--user-mode", type=click.Choice(["numeric", "reset", "root"]), default="numeric",
              show_default=True,
              help='numeric: USER uid:gid (stays non-root); reset: USER "" (root); root: USER 0:0.')
@click.option("--check", is_flag=True, help="Change nothing; exit 1 if a file would change.")
@click.option("--diff", "show_diff", is_flag=True, help="Print a unified diff of each change.")
@dockerfile_options
@click.pass_context
def patch(ctx: click.Context, dockerfiles: tuple[str, ...], output: str | None, in_place: bool,
          user_mode: str, check: bool, show_diff: bool, build_args: tuple[str, ...], target: str | None,
          resolve_base: bool) -> None:
    """Write Dockerfiles whose USER works on kata-qemu-tdx; every other byte stays as it was."""
    from .fileio import write_atomic
    from .patch import patch as patch_one

    if output and in_place:
        raise ImagefixError("use either -o OUT or --in-place, not both")
    if output and len(dockerfiles) > 1:
        raise ImagefixError("-o OUT takes one Dockerfile; use --in-place for several")
    if in_place and "-" in dockerfiles:
        raise ImagefixError("--in-place cannot replace stdin")
    to_stdout = not (output or in_place or check or show_diff)
    if to_stdout and len(dockerfiles) > 1:
        raise ImagefixError("several Dockerfiles: use --in-place, --check or --diff")
    args = _build_args(build_args)
    open_base = _base_opener(resolve_base)
    failed = would_change = False
    report = (lambda text: click.echo(text, err=True)) if to_stdout or show_diff else click.echo
    for path in dockerfiles:
        try:
            dockerfile = _load_dockerfile(path, args)
            base = None
            if open_base is not None:
                root = dockerfile.chain(dockerfile.stage(target))[-1]
                base = open_base(root.base) if root.base.lower() != "scratch" else None
            outcome = patch_one(dockerfile, user_mode, target=target, base=base)
        except ImagefixError as exc:
            failed = True
            click.echo(f"imagefix: error: {exc}", err=True)
            continue
        would_change |= outcome.changed
        if show_diff and outcome.changed:
            click.echo(outcome.diff(), nl=False)
        if to_stdout:
            click.echo(outcome.text, nl=False)
        elif output and not check:
            write_atomic(output, outcome.text.encode("utf-8", "surrogateescape"))
        elif in_place and outcome.changed and not check:
            write_atomic(path, outcome.text.encode("utf-8", "surrogateescape"))
        verb = "would patch" if check else "patched"
        if outcome.changed:
            dest = f" -> {output}" if output and not check else ""
            report(f"{verb} {outcome.path}{dest}: {outcome.description}")
        else:
            report(f"unchanged {outcome.path}: its USER needs no change in {user_mode} mode")
    if failed:
        ctx.exit(2)
    ctx.exit(1 if check and would_change else 0)


def _estimates(refs: tuple[str, ...], model) -> list:
    """(ref, budget estimate) per image; an image that cannot be scanned stops the command."""
    from .sources import open_image

    out = []
    for ref in refs:
        image = open_image(ref)
        out.append((ref, model.estimate(image.unpacked_size)))
    return out


@main.group()
def kata() -> None:
    """Check and fix Kata runtime configuration (configuration-qemu-tdx.toml)."""


@kata.command("check")
@click.argument("config_file", metavar="CONFIG")
@click.option("--image", "images", multiple=True, metavar="REF",
              help="Images the config must serve (budget: timeout and default_memory).")
@click.option("--runtime", type=click.Choice(["go", "rs"]), help="Kata runtime [default: detected].")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "sarif", "gnu"]), default="text",
              show_default=True)
@selection_options
@budget_options
@click.pass_context
def kata_check(ctx: click.Context, config_file: str, images: tuple[str, ...], runtime: str | None,
               fmt: str, **kw: Any) -> None:
    """Find Kata config settings that are ignored, invalid, or too low for your images."""
    from .kata import load_config
    from .rules.kata_subject import KataSubject
    from .scan import ScanResult, run_rules

    selection, fail_on = rule_selection(ctx, kw)
    config = load_config(config_file, runtime)
    model = _config_model(ctx, kw, config)
    subject = KataSubject(config, _estimates(images, model))
    kept, suppressed = run_rules(subject, "kata", selection)
    result = ScanResult(config_file, kept, suppressed)
    dropins = f"; drop-ins: {', '.join(d.path for d in config.dropins)}" if config.dropins else ""
    result.notes.append(f"runtime: {config.runtime} ({config.runtime_reason}); "
                        f"effective create_container_timeout {config.timeout[0]} s, "
                        f"default_memory {config.memory[0]} MiB{dropins}")
    _emit_results([result], fmt, fail_on, selection.profile, [], key="files", show_location=True)
    ctx.exit(exit_code([result], fail_on, []))


def _config_model(ctx: click.Context, kw: dict[str, Any], config):
    """The budget model with the config's own timeout and memory, unless flags say otherwise."""
    from dataclasses import replace

    for key in ("guest_memory", "create_timeout"):
        kw.setdefault(key, None)
    explicit_memory, explicit_timeout = kw["guest_memory"], kw["create_timeout"]
    model = budget_model(ctx, kw)
    if config.main.data is None:
        return model
    return replace(model,
                   guest_memory_mib=explicit_memory or int(config.memory[0]),
                   create_timeout_s=explicit_timeout or int(config.timeout[0]))


def _auto_or_int(value: str | None, what: str) -> str | int | None:
    if value is None or value == "auto":
        return value
    if not value.isdigit() or int(value) <= 0:
        raise ImagefixError(f"{what} takes 'auto' or a positive whole number, not {value!r}")
    return int(value)


@kata.command("patch")
@click.argument("config_file", metavar="CONFIG")
@click.option("--create-container-timeout", "timeout", metavar="auto|SECONDS",
              help="Set it (auto: from the images' budget). Misplaced copies are always moved.")
@click.option("--default-memory", "memory", metavar="auto|MiB", help="Set [hypervisor.*] default_memory.")
@click.option("--image", "images", multiple=True, metavar="REF", help="Images for the auto values.")
@click.option("--runtime", type=click.Choice(["go", "rs"]), help="Kata runtime [default: detected].")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the patched config here.")
@click.option("--in-place", is_flag=True, help="Replace CONFIG atomically, keeping CONFIG.bak.")
@click.option("--drop-in", type=click.Path(dir_okay=False),
              help="Write only the overrides to this drop-in (e.g. config.d/50-imagefix.toml).")
@click.option("--diff", "show_diff", is_flag=True, help="Print a unified diff.")
@budget_options
@click.pass_context
def kata_patch(ctx: click.Context, config_file: str, timeout: str | None, memory: str | None,
               images: tuple[str, ...], runtime: str | None, output: str | None, in_place: bool,
               drop_in: str | None, show_diff: bool, **kw: Any) -> None:
    """Put create_container_timeout where Kata reads it and size it; every comment stays."""
    import difflib

    from .fileio import write_atomic
    from .kata import dropin_text, load_config, patch_config

    if sum(bool(x) for x in (output, in_place, drop_in)) > 1:
        raise ImagefixError("use one of -o OUT, --in-place, --drop-in FILE")
    want_timeout = _auto_or_int(timeout, "--create-container-timeout")
    want_memory = _auto_or_int(memory, "--default-memory")
    if "auto" in (want_timeout, want_memory) and not images:
        raise ImagefixError("auto needs the images: add --image REF (one or more)")
    config = load_config(config_file, runtime)
    if config.main.data is None:
        raise ImagefixError(f"{config.main.path}:{config.main.error_line}: not valid TOML: "
                            f"{config.main.error}; fix it by hand (imagefix will not guess which copy "
                            "you meant)")
    model = _config_model(ctx, kw, config)
    estimates = _estimates(images, model)
    why_timeout = why_memory = ""
    if estimates:
        slowest = max(estimates, key=lambda e: e[1].needed_timeout_seconds)
        biggest = max(estimates, key=lambda e: e[1].unpacked_bytes)
        why_timeout = (f"guest pull + unpack of {slowest[0]} needs ~"
                       f"{slowest[1].needed_timeout_seconds:.0f} s with margin")
        why_memory = f"{biggest[0]} unpacks into a tmpfs of {model.tmpfs_fraction:.0%} of guest memory"
        if want_timeout == "auto":
            needed = slowest[1].recommended_timeout_seconds
            want_timeout = needed if needed > config.timeout[0] else None
        if want_memory == "auto":
            needed = biggest[1].recommended_memory_mib
            want_memory = needed if needed > config.memory[0] else None
    if drop_in:
        if want_timeout is None and want_memory is None:
            raise ImagefixError("nothing to write to the drop-in: the values in force already suffice")
        text = dropin_text(config, timeout=want_timeout, memory=want_memory,
                           why_timeout=why_timeout or "set by imagefix",
                           why_memory=why_memory or "set by imagefix")
        write_atomic(drop_in, text.encode())
        click.echo(f"wrote {drop_in}" + (f": {TIMEOUT_NOTE}" if _misplaced(config) else ""))
        ctx.exit(0)
    text, changes = patch_config(config, timeout=want_timeout, memory=want_memory,
                                 why_timeout=why_timeout, why_memory=why_memory)
    original = "".join(config.main.lines)
    if show_diff and text != original:
        name = config_file.lstrip("/")
        click.echo("".join(difflib.unified_diff(original.splitlines(True), text.splitlines(True),
                                                f"a/{name}", f"b/{name}")), nl=False)
    report = (lambda t: click.echo(t, err=True)) if not (output or in_place) else click.echo
    if output:
        write_atomic(output, text.encode())
    elif in_place:
        if text != original:
            write_atomic(config_file, text.encode(), backup=True)
    elif not show_diff:
        click.echo(text, nl=False)
    for change in changes or ["unchanged: the config already does what was asked"]:
        report(change)


TIMEOUT_NOTE = "the misplaced create_container_timeout in the main file is still there (ignored by Kata)"


def _misplaced(config) -> bool:
    from .kata import TIMEOUT_KEY

    return any(e.table != config.timeout_table for e in config.main.entries_named(TIMEOUT_KEY))


@main.command()
@click.argument("ref")
@click.option("--runtime-class", default="kata-qemu-tdx", show_default=True)
@click.option("--fs-group", type=click.IntRange(0), help="Pod fsGroup for volumes.")
@click.option("--image-name", metavar="NAME",
              help="The image as manifests name it [default: REF without its transport].")
@click.option("--patch", "manifest", type=click.Path(dir_okay=False),
              help="Apply to every container running the image in this YAML (multi-document).")
@click.option("--kustomize", is_flag=True, help="With --patch: print strategic-merge patches instead.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write here instead of stdout.")
@budget_options
@click.pass_context
def k8s(ctx: click.Context, ref: str, runtime_class: str, fs_group: int | None, image_name: str | None,
        manifest: str | None, kustomize: bool, output: str | None, **kw: Any) -> None:
    """Print what a pod needs to run REF on Kata (YAML, a comment on every value)."""
    from . import __version__
    from .fileio import read_input, write_atomic
    from .k8s import kustomize_patches, patch_manifest, pod_needs, pod_yaml
    from .reference import parse_image_ref
    from .sources import open_image

    if kustomize and not manifest:
        raise ImagefixError("--kustomize needs --patch MANIFEST (the workloads to patch)")
    model = budget_model(ctx, kw)
    parsed = parse_image_ref(ref)
    manifest_text = None
    if manifest:
        manifest_text = read_input(manifest, "manifest").decode("utf-8", "replace")
    image = open_image(parsed)
    if image_name is None:
        if parsed.transport in ("", "docker", "docker-daemon"):
            image_name = parsed.target
        elif image.name and ":" in image.name:
            image_name = image.name
        else:
            raise ImagefixError(f"{ref}: say how manifests name this image with --image-name NAME")
    needs = pod_needs(image, model, image_name=image_name, runtime_class=runtime_class, fs_group=fs_group)
    if manifest_text is not None:
        if kustomize:
            text = kustomize_patches(manifest_text, needs)
        else:
            text, changed = patch_manifest(manifest_text, needs)
            for line in changed:
                click.echo(f"patched {line}", err=True)
    else:
        text = pod_yaml(needs, f"imagefix {__version__}: what a pod running {image_name} needs on "
                               f"{runtime_class}")
    if output:
        write_atomic(output, text.encode())
    else:
        click.echo(text, nl=False)


@main.command()
@click.argument("ref")
@click.option("--variant", type=click.Choice(["user", "multistage", "distroless"]), default="user",
              show_default=True)
@click.option("--user-mode", type=click.Choice(["numeric", "reset", "root"]), default="numeric",
              show_default=True,
              help='numeric: USER uid:gid (stays non-root); reset: USER "" (root); root: USER 0:0.')
@click.option("--runtime-base", metavar="REF",
              help="Runtime stage image (multistage; overrides distroless).")
@click.option("--keep", multiple=True, metavar="PATH",
              help="Path to copy into the runtime stage (repeatable).")
@click.option("--distroless", default="static", show_default=True,
              type=click.Choice(["static", "base", "base-nossl", "cc", "java17", "java21", "python3",
                                 "nodejs22"]))
@click.option("--template-dir", type=click.Path(file_okay=False, exists=True),
              help="Your own templates (same names as the shipped ones win).")
@click.option("--tag", "new_tag", metavar="NEWREF",
              help="Tag for the fixed image [default: <repo>:<tag>-kata].")
@click.option("--no-build", is_flag=True, help="Only write the rendered Dockerfile (needs -o DIR).")
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False),
              help="Folder for the Dockerfile.")
@click.option("--push", "do_push", is_flag=True, help="Push the new tag after it is verified.")
@click.option("--in-registry", is_flag=True,
              help="Registry images: new config + manifest reusing the layers; nothing pulled or built.")
@click.option("--force", is_flag=True, help="Replace the target tag if it exists.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@registry_flags
@click.pass_context
def fix(ctx: click.Context, ref: str, variant: str, user_mode: str, runtime_base: str | None,
        keep: tuple[str, ...], distroless: str, template_dir: str | None, new_tag: str | None, no_build: bool,
        out_dir: str | None, do_push: bool, in_registry: bool, force: bool, fmt: str, **kw: Any) -> None:
    """Turn REF into an image that runs on kata-qemu-tdx, and prove it."""
    import json as jsonlib
    from pathlib import Path

    from .fix import plan_fix
    from .reference import parse_image_ref

    kw.update(exact=False, all_platforms=False, platform=None)
    registry = _registry_options(ctx, kw)
    parsed = parse_image_ref(ref)
    if in_registry:
        if variant != "user":
            raise ImagefixError(f"--in-registry cannot make a {variant} image: that needs a real build "
                                "(drop --in-registry, or use --variant user)")
        if parsed.transport not in ("", "docker"):
            raise ImagefixError("--in-registry works on registry images: docker://REGISTRY/REPO:TAG")
        from .fix_registry import fix_in_registry

        done = fix_in_registry(parsed.target, new_tag, user_mode, registry, force=force)
        from .sources.registry import open_registry_images

        check = open_registry_images(done.target, done.target,
                                     registry.__class__(**{**registry.__dict__, "all_platforms": True}))
        problems = [f"{img.reference}: user {img.user!r}" for img, want in
                    zip(check, done.platforms, strict=False)
                    if img.user != ("" if want["user"] == '""' else want["user"])]
        if problems:
            raise ImagefixError(f"verification failed: {'; '.join(problems)}")
        summary = {"source": ref, "target": done.target, "digest": done.digest, "platforms": done.platforms,
                   "uploaded": done.uploads.by_kind}
        if fmt == "json":
            click.echo(jsonlib.dumps(summary, indent=2))
        else:
            for item in done.platforms:
                click.echo(f"{item['platform']}: {item['change']}")
            click.echo(f"pushed {done.target}@{done.digest} (config and manifests only; the "
                       f"{len(done.platforms[0]['layers'])} layers were reused, verified by a registry scan)")
        ctx.exit(0)

    from .sources import open_image

    image = open_image(parsed, registry=registry)
    plan = plan_fix(image, variant=variant, user_mode=user_mode, runtime_base=runtime_base, keep=keep,
                    distroless=distroless, template_dir=Path(template_dir) if template_dir else None)
    if no_build:
        if not out_dir:
            raise ImagefixError("--no-build writes the Dockerfile to a folder: add -o DIR")
        from .fileio import write_atomic

        Path(out_dir).mkdir(parents=True, exist_ok=True)
        write_atomic(Path(out_dir) / "Dockerfile", plan.dockerfile.encode())
        click.echo(f"wrote {Path(out_dir) / 'Dockerfile'}: {plan.change}")
        for note in plan.notes:
            click.echo(f"note: {note}")
        ctx.exit(0)
    if parsed.transport in ("docker-archive", "oci", "oci-archive"):
        raise ImagefixError(f"{ref}: load it into the engine first (docker load), or use --no-build -o DIR")

    from . import build
    from .fix import default_tag
    from .scan import RuleSelection, scan_image
    from .sources.daemon import api_client, open_daemon_image

    api = api_client()
    tag = new_tag or default_tag(image)
    from .reference import parse_docker_reference

    parse_docker_reference(tag)
    if build.tag_exists(api, tag) and not force:
        raise ImagefixError(f"{tag} exists already; --force replaces it (the source image is never touched)")
    if plan.runtime_ref and variant != "user":  # pin the runtime stage when the engine knows it
        try:
            pinned = api.inspect_image(plan.runtime_ref)["Id"]
            plan = plan_fix(image, variant=variant, user_mode=user_mode, runtime_base=runtime_base, keep=keep,
                            distroless=distroless, template_dir=Path(template_dir) if template_dir else None,
                            runtime_pin=pinned)
        except Exception:
            raise ImagefixError(f"runtime base {plan.runtime_ref} is not in the local engine: load or pull "
                                "it first (imagefix never pulls behind your back)") from None
    show = fmt == "text"
    image_id = build.build_image(api, plan, show_progress=show)
    try:
        checked = build.verify(api, image_id, plan)
        rescan = scan_image(open_daemon_image(image_id, image_id), RuleSelection(), _plain_model())
        if any(f.rule == "KIF101" for f in rescan.findings):
            checked.problems.append("the rebuilt image still runs as a named user (KIF101)")
        if not checked.ok:
            raise ImagefixError(f"verification failed: {'; '.join(checked.problems)}")
    except ImagefixError:
        _remove_quietly(api, image_id)
        raise
    build.apply_tag(api, image_id, tag)
    pushed = ""
    if do_push:
        auth = None
        if registry.credentials is not None:
            auth = {"username": registry.credentials.username, "password": registry.credentials.password}
        pushed = build.push(api, tag, auth_config=auth, show_progress=show)
    after = open_daemon_image(tag, tag)
    before_findings = scan_image(image, RuleSelection(), _plain_model()).findings
    rows = [("user", image.user or '"" (root)', after.user or '"" (root)'),
            ("unpacked size", image.unpacked_size, after.unpacked_size),
            ("layers", len(image.layers), len(after.layers)),
            ("findings", len(before_findings), len(rescan.findings))]
    if fmt == "json":
        click.echo(jsonlib.dumps({
            "source": ref, "tag": tag, "image_id": image_id, "pushed_digest": pushed or None,
            "variant": variant, "user_mode": user_mode, "change": plan.change, "dockerfile": plan.dockerfile,
            "verification": {"config_user": checked.config_user, "ran_id": checked.ran, "uid": checked.uid,
                             "gid": checked.gid},
            "before": {k.replace(" ", "_"): b for k, b, _ in rows},
            "after": {k.replace(" ", "_"): a for k, _, a in rows},
        }, indent=2))
    else:
        from .sizes import human_size

        click.echo(f"built {tag} ({image_id[:19]}): {plan.change}")
        how = (f"id in a container says {checked.uid}:{checked.gid}" if checked.ran
               else "config checked (no `id` in the image to run)")
        shown_user = checked.config_user or '""'
        click.echo(f"verified: config user {shown_user}; {how}; no KIF101")
        for name, before, after_value in rows:
            if name == "unpacked size":
                before, after_value = human_size(before), human_size(after_value)
            click.echo(f"  {name:14} {before!s:>12} -> {after_value}")
        for note in plan.notes:
            click.echo(f"note: {note}")
        if pushed:
            click.echo(f"pushed {tag}@{pushed}")


def _plain_model():
    from .budget import BudgetModel

    return BudgetModel()


def _remove_quietly(api: Any, image_id: str) -> None:
    import contextlib

    import docker

    with contextlib.suppress(docker.errors.APIError):
        api.remove_image(image_id, force=True, noprune=False)


@main.command()
@click.argument("rule_ids", nargs=-1)
def rules(rule_ids: tuple[str, ...]) -> None:
    """Explain the rules (all, or the ids given) and the budget model."""
    from . import budget
    from .rules import all_rules

    wanted = [r.upper() for r in rule_ids]
    chosen = [r for r in all_rules() if not wanted or any(r.id.startswith(w) for w in wanted)]
    if not chosen:
        raise ImagefixError(f"no rule matches {', '.join(rule_ids)}")
    for rule in chosen:
        click.echo(click.style(f"{rule.id}  {rule.name}", bold=True) + f"  [{rule.severity.label}]")
        click.echo("    " + rule.doc.replace("\n", "\n    ").replace("    \n", "\n") + "\n")
    if not wanted:
        click.echo(click.style("Budget model (KIF202-KIF204, kata, k8s)", bold=True))
        doc = budget.__doc__ or ""
        click.echo("    " + doc.strip().replace("\n", "\n    "))
        defaults = ", ".join(f"{k}={v}" for k, v in budget.BudgetModel().as_dict().items())
        click.echo(f"\n    defaults: {defaults}")


if __name__ == "__main__":  # pragma: no cover
    main()
