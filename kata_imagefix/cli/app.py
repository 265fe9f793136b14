"""The `imagefix` command group and its error handling (one line, exit 2, --debug for more).

Exit codes: 0 nothing at or above --fail-on, 1 findings at or above it,
2 bad usage or input (one line on stderr; --debug shows the traceback).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .. import __version__
from ..errors import ImagefixError
from ..output.untrusted import for_terminal


def option_name(param: click.Parameter | None) -> str:
    """--long-name of an option (its first name otherwise)."""
    if param is None:
        return "value"
    return next((opt for opt in param.opts if opt.startswith("--")), param.opts[0] if param.opts else "value")


def _color_first(args: list[str]) -> list[str]:
    """`--color X` anywhere before `--` moves to the front: `imagefix scan REF --color never` works."""
    moved: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        if arg.startswith("--color="):
            moved.append(arg)
        elif arg == "--color" and i + 1 < len(args):
            moved += args[i : i + 2]
            i += 1
        else:
            rest.append(arg)
        i += 1
    return moved + rest


def colour_choice(flag: str, environ) -> bool | None:
    """--color, else FORCE_COLOR (force-color.org; it wins over NO_COLOR, as in Node.js), else
    NO_COLOR (no-color.org), else None: colour only a terminal."""
    if flag != "auto":
        return flag == "always"
    if environ.get("FORCE_COLOR"):
        return True
    if environ.get("NO_COLOR"):
        return False
    return None


# name -> ("module:attr" under kata_imagefix.cli, the first paragraph of its help). A command's module
# is imported only when that command runs (or its --help is asked): a registry scan does not pay for
# the Dockerfile parser, the Kata config editor or `fix`. tests/test_cli_lazy.py keeps this table
# equal to the commands themselves.
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "fix": ("fix_cmd:fix", "Turn REF into an image that runs on kata-qemu-tdx, and prove it."),
    "k8s": ("k8s_cmds:k8s", "Kubernetes: audit workloads for Kata (check), or print what one image's pod "
                            "needs (pod)."),
    "kata": ("kata_cmds:kata", "Check and fix Kata runtime configuration (configuration-qemu-tdx.toml)."),
    "lint": ("dockerfile_cmds:lint", "Find USER problems in Dockerfiles ('-' reads stdin), at the line that "
                                     "causes them."),
    "merge": ("merge_cmd:merge", "Combine JSON results (of scan, lint, kata check or k8s check shards) into "
                                 "one report."),
    "patch": ("dockerfile_cmds:patch", "Write Dockerfiles whose USER works on kata-qemu-tdx; every other "
                                       "byte stays as it was."),
    "report": ("report_cmd:report", "Size report before push: layers, base vs app, baseline diff, waste, "
                                    "Kata budget; gates exit 1."),
    "rules": ("scan_cmds:rules", "Explain the rules (all, or the ids given) and the budget model."),
    "scan": ("scan_cmds:scan", "Scan images for what breaks on Kata (named users, size against the guest "
                               "budget)."),
    "webhook": ("webhook_cmd:webhook", "Kubernetes admission webhook: fix Kata pods as `k8s fix` does "
                                       "(/mutate), or judge them (/validate)."),
}


class LazyGroup(click.Group):
    """A group whose commands (LAZY_COMMANDS) are imported when first resolved, not at start-up.

    The command modules still register themselves with `@main.command()` as they are imported;
    `--help` lists the commands from the table, so it imports none of them."""

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]] | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(self.lazy))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            self._load(cmd_name)
        return self.commands.get(cmd_name)

    def _load(self, name: str) -> None:
        module_name, attr = self.lazy[name][0].split(":")
        # __import__, not importlib.import_module: the import then shows in `python -X importtime`
        command = getattr(__import__(f"{__package__}.{module_name}", fromlist=[attr]), attr)
        if name not in self.commands:  # a command built without `@main.command()`
            self.add_command(command, name)

    def load_all(self) -> None:
        """Every command imported (what walks every flag, e.g. the config's key check, needs)."""
        for name in self.lazy:
            self.get_command(click.Context(self), name)

    def resolve_command(self, ctx: click.Context, args: list[str]
                        ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand as exc:  # "Did you mean": every name, not the loaded ones
            raise click.exceptions.NoSuchCommand(exc.command_name, possibilities=self.list_commands(ctx),
                                                 ctx=ctx) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, with a command not loaded yet shown from its table entry (same short help)."""
        names = self.list_commands(ctx)
        commands = [(name, self.commands.get(name) or click.Command(name, help=self.lazy[name][1]))
                    for name in names]
        commands = [(name, command) for name, command in commands if not command.hidden]
        if not commands:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in commands)
        with formatter.section("Commands"):
            formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in commands])


class ImagefixGroup(LazyGroup):
    """Turns ImagefixError (and any crash) into one line on stderr and exit 2."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.parent is None:
            args = _color_first(list(args))
            ctx.meta["imagefix.help"] = bool({"-h", "--help"} & set(args[: args.index("--")] if "--" in args
                                                                   else args))
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            try:
                return super().invoke(ctx)
            finally:
                _flush_stdout()  # a full disk or /dev/full shows here, not as a silent exit at shutdown
        except ImagefixError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"imagefix: error: {for_terminal(exc)}", err=True)
            ctx.exit(2)
        except click.BadParameter as exc:
            if not getattr(exc, "one_line", False):  # click's own: its usage message
                raise
            click.echo(f"imagefix: error: {option_name(exc.param)}: {for_terminal(exc.message)}", err=True)
            ctx.exit(2)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("imagefix: interrupted", err=True)
            ctx.exit(130)
        except BrokenPipeError:  # `imagefix rules | head`: the reader left; nothing to say
            import os
            import sys

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(141)
        except OSError as exc:
            if not _output_full(exc):
                return self._crash(ctx, exc)
            import os
            import sys

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # what is buffered goes nowhere
            click.echo(f"imagefix: error: cannot write the output: {exc.strerror}", err=True)
            ctx.exit(2)
        except Exception as exc:
            self._crash(ctx, exc)

    @staticmethod
    def _crash(ctx: click.Context, exc: Exception) -> None:
        """A bug: still one line, with the way to see more."""
        if ctx.obj and ctx.obj.get("debug"):
            raise exc
        click.echo(f"imagefix: internal error: {type(exc).__name__}: {for_terminal(exc)} "
                   "(run with --debug for the traceback)", err=True)
        ctx.exit(2)


_FULL = {"ENOSPC", "EDQUOT", "EFBIG", "EIO"}


def _output_full(exc: OSError) -> bool:
    """A write that failed for want of room (a full disk, a quota, /dev/full): the output was cut."""
    import errno

    return errno.errorcode.get(exc.errno or 0, "") in _FULL


def _flush_stdout() -> None:
    """Flush what is still buffered now, and leave nothing for the interpreter's exit (where a failure
    would be a silent exit 120); a full output then is the one-line error above."""
    import os
    import sys

    try:
        sys.stdout.flush()
    except OSError as exc:
        if isinstance(exc, BrokenPipeError) or not _output_full(exc):
            raise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    import platform

    click.echo(f"imagefix {__version__}")
    click.echo(f"Python {platform.python_version()} ({platform.python_implementation()})")
    import os

    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        import docker
        from docker.utils import kwargs_from_env

        engine = docker.APIClient(version="auto", timeout=3, **kwargs_from_env()).version()
        click.echo(f"Docker engine {engine.get('Version', '?')}, API {engine.get('ApiVersion', '?')} "
                   f"at {host}")
    except Exception:  # no engine here: say so, the rest still helps a bug report
        click.echo(f"Docker engine: none answers at {host}")
    ctx.exit(0)


@click.group(cls=ImagefixGroup, lazy=LAZY_COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_show_version,
              help="Show imagefix's, Python's and the Docker engine API's versions (for bug reports).")
@click.option("--color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True,
              help="Colour in text output (before or after the command); auto honours FORCE_COLOR and "
                   "NO_COLOR and colours only a terminal.")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Settings file (default: nearest .imagefix.toml or [tool.imagefix]).")
@click.pass_context
def main(ctx: click.Context, color: str, debug: bool, config_path: Path | None) -> None:
    """Get container images ready for Kata Containers (kata-qemu-tdx).

    \b
    Example:
      imagefix scan spark:3.5.3
    """
    import os

    from ..output.progress import notes_on_stderr

    notes_on_stderr()
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    ctx.obj["config_path"] = config_path
    from .options import config_defaults, config_values

    if not ctx.resilient_parsing and not ctx.meta.get("imagefix.help"):  # help reads no config
        try:
            ctx.default_map = config_defaults(ctx)  # every long flag can be set in .imagefix.toml
        except ImagefixError:  # a key or value that only a command not imported yet knows: ask them all
            if not isinstance(ctx.command, LazyGroup):
                raise
            ctx.command.load_all()
            ctx.obj.pop("config", None)
            ctx.default_map = config_defaults(ctx)
    from_file = config_values(ctx) if "config" in ctx.obj else {}
    if ctx.get_parameter_source("color") is click.core.ParameterSource.DEFAULT and "color" in from_file:
        color = str(from_file["color"])
        if color not in ("auto", "always", "never"):
            raise ImagefixError(f"config {ctx.obj.get('config_file')}: color must be auto, always or never")
    ctx.color = colour_choice(color, os.environ)
