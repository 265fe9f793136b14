"""Start-up: the command group imports a command's module only when that command runs (cli/app.py's
LAZY_COMMANDS), and what a registry scan does not need stays unimported - checked in a fresh
interpreter, since this test process has imported everything already."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from kata_imagefix.cli.app import LAZY_COMMANDS, LazyGroup, main

# what a registry scan never needs: the Dockerfile parser, fix, the Kata config reader, k8s, the
# pod identity model, the engine's SDK, YAML, the HTML report and the table renderer
NOT_FOR_A_REGISTRY_SCAN = (
    "kata_imagefix.cli.dockerfile_cmds", "kata_imagefix.cli.fix_cmd", "kata_imagefix.cli.k8s_cmds",
    "kata_imagefix.cli.kata_cmds", "kata_imagefix.cli.report_cmd", "kata_imagefix.cli.webhook_cmd",
    "kata_imagefix.cli.merge_cmd", "kata_imagefix.dockerfile", "kata_imagefix.fix", "kata_imagefix.k8s",
    "kata_imagefix.kata.config", "kata_imagefix.users.identity", "docker", "yaml", "jinja2", "rich",
)


def imported_by(*args: str) -> tuple[int, str, set[str]]:
    """`imagefix ARGS` in a fresh interpreter: exit code, stdout, and every module it imported."""
    code = ("import json, sys\nfrom kata_imagefix.cli import main\n"
            "try:\n    main(sys.argv[1:], prog_name='imagefix')\n"
            "except SystemExit as exc:\n    code = exc.code or 0\n"
            "sys.stdout.flush()\nprint(json.dumps([code, sorted(sys.modules)]), file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    exit_code, modules = json.loads(done.stderr.strip().splitlines()[-1])
    return exit_code, done.stdout, set(modules)


def loaded(modules: set[str], names: tuple[str, ...]) -> set[str]:
    return {m for m in modules for name in names if m == name or m.startswith(name + ".")}


def test_the_lazy_table_is_the_commands_themselves():
    main.load_all()
    assert set(main.commands) == set(LAZY_COMMANDS)
    for name, (spec, summary) in LAZY_COMMANDS.items():
        module, attr = spec.split(":")
        command = getattr(__import__(f"kata_imagefix.cli.{module}", fromlist=[attr]), attr)
        assert main.commands[name] is command, name
        assert (command.help or "").split("\n\n")[0].strip() == summary, name  # --help shows the same line


def test_help_lists_every_command_without_importing_one():
    exit_code, out, modules = imported_by("--help")
    assert exit_code == 0
    rows = out.split("Commands:\n", 1)[1].splitlines()
    assert [row.split()[0] for row in rows if row.startswith("  ") and not row.startswith("   ")] == \
        sorted(LAZY_COMMANDS)
    assert not {m for m in modules if m.startswith("kata_imagefix.cli.")} - {"kata_imagefix.cli.app",
                                                                              "kata_imagefix.cli.option_errors"}


@pytest.mark.parametrize("width", [60, 78, 120])
def test_the_listing_from_the_table_is_the_listing_of_the_loaded_commands(width):
    main.load_all()
    listings = []
    for group in (LazyGroup("imagefix", lazy=LAZY_COMMANDS), main):  # nothing loaded; everything loaded
        formatter = click.HelpFormatter(width=width)
        group.format_commands(click.Context(group), formatter)
        listings.append(formatter.getvalue())
    assert listings[0] == listings[1]


def test_a_subcommands_help_loads_that_command_only():
    exit_code, out, modules = imported_by("k8s", "check", "--help")
    assert exit_code == 0 and "--exact" in out
    assert "kata_imagefix.cli.k8s_cmds" in modules
    assert not loaded(modules, ("kata_imagefix.cli.dockerfile_cmds", "kata_imagefix.cli.fix_cmd"))


def test_a_mistyped_command_still_gets_its_suggestion():
    code = ("import sys\nfrom kata_imagefix.cli import main\nmain(['scna', 'x'], prog_name='imagefix')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2  # suggested from every name, not only the loaded commands (none here)
    assert "No such command 'scna'. Did you mean 'scan'?" in done.stderr


def test_a_config_key_of_a_command_not_loaded_is_still_known(cli, tmp_path, monkeypatch):
    (tmp_path / ".git").mkdir()
    (tmp_path / ".imagefix.toml").write_text('user-mode = "root"\nguest-memory = 4096\n')
    monkeypatch.chdir(tmp_path)
    exit_code, out, _ = imported_by("rules", "KIF101")  # `rules` has neither flag: patch and scan do
    assert exit_code == 0 and out.startswith("KIF101")
    (tmp_path / ".imagefix.toml").write_text('user-mod = "root"\n')
    result = cli("rules", "KIF101")
    assert result.exit_code == 2 and "unknown key(s) user-mod" in result.stderr


@pytest.mark.registry
def test_a_registry_scan_imports_nothing_it_does_not_use(registry, tmp_path):
    from registries import push_spec, repo_name, spark_like

    from kata_imagefix.registry.client import RegistryClient

    repository = repo_name("lazy")
    push_spec(RegistryClient(registry.host), tmp_path, repository, "v1", spark_like(user="185:185"))
    exit_code, out, modules = imported_by("scan", "--format", "json", f"docker://{registry.host}/{repository}:v1")
    assert exit_code == 0
    assert json.loads(out)["images"][0]["user"] == "185:185"
    assert not loaded(modules, NOT_FOR_A_REGISTRY_SCAN)
    # the Kata config's and the pods' rules (and their subjects) are loaded by the commands that check them
    from kata_imagefix.rules import MODULES, Target

    others = [f"kata_imagefix.rules.{m}" for target in (Target.KATA, Target.POD) for m in MODULES[target]]
    assert not loaded(modules, (*others, "kata_imagefix.rules.kata_subject",
                                "kata_imagefix.rules.pod_subject"))
    assert {f"kata_imagefix.rules.{m}" for m in MODULES[Target.IMAGE] + MODULES[Target.USER]} <= modules
