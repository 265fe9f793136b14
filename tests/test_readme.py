"""Every `$ imagefix …` example in the README's console blocks runs as printed.

Each example runs with bash in one working folder, in the README's order, with `imagefix` the
console script of this install. It must exit as the README says - 0, unless its comment says
`exits N` - and every output line the README shows under it must be a line of its real output
(after the substitutions below are undone; image IDs and digests stand for any).

The README names images and files a test machine does not have; the test substitutes its own,
built locally, before running a command (and maps them back in the output):

| README | the test's stand-in |
|---|---|
| `spark:3.5.3` (a bare name) | a spark-like image built in the engine (USER spark, /opt/spark) |
| `registry.example/spark:3.5.3` | the same kind of image pushed to the test registry |
| `mysql:8.4` (a bare name) | samples/mysql pushed to the test registry |
| `myapp:2.0`, `myapp:1.9` | `oci:myapp:2.0`, `oci:myapp:1.9` (a layout in the folder) |
| `registry.example/team/app:2.0` / `:1.9` | an engine image tagged in the test registry / one pushed there |
| `eclipse-temurin:17-jre`, distroless `java17` | the test base image (busybox), tagged for distroless |
| `/etc/kata-containers/…`, `/opt/kata/…/kata-containers/…` | Kata 4.1's shipped configs |
| | (`tests/data`), the tdx one with the popular `[factory]` recipe |
| `helm template …`, `kustomize build …`, `kubectl get … -o json` | `cat` of what they would print |

Examples that need the engine skip without one; the registry is the suite's loopback registry.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLES, base_image
from registries import push_layout, push_spec, spark_like

README = (ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent


@dataclass
class Example:
    command: str
    shown: list[str]
    exit_code: int
    line: int  # in README.md


def console_examples(text: str = README) -> list[Example]:
    examples: list[Example] = []
    in_block = False
    current: Example | None = None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            in_block = line.strip() == "```console"
            current = None
        elif in_block and line.startswith("$ "):
            command, number = line[2:], i + 1
            while command.endswith("\\"):
                i += 1
                command = command[:-1] + " " + lines[i].strip()
            comment = re.search(r"\s#\s.*$", command)
            expected = re.search(r"\bexits? (\d)\b", comment.group(0)) if comment else None
            current = None
            if re.search(r"(^|\| )imagefix ", command):
                current = Example(command, [], int(expected.group(1)) if expected else 0, number)
                examples.append(current)
        elif in_block and line.startswith("#"):
            current = None
        elif in_block and current is not None and line.strip():
            current.shown.append(line)
        i += 1
    return examples


EXAMPLES = console_examples()


def engine_or_none():
    try:
        import docker

        client = docker.APIClient(version="auto", timeout=300)
        client.ping()
        return client
    except Exception:
        return None


SPARK_DOCKERFILE = (
    "FROM {base}\n"
    "RUN mkdir -p /opt/spark/jars /opt/spark/work-dir && echo jar > /opt/spark/jars/app.jar\n"
    "WORKDIR /opt/spark/work-dir\n"
    "USER spark\n"
    'ENTRYPOINT ["/bin/sh", "-c"]\n'
    'CMD ["id"]\n'
)


class Stage:
    """The working folder, the stand-ins and the substitution both ways."""

    def __init__(self, root: Path, registry, engine):
        self.root, self.engine = root, engine
        self.made_tags: list[str] = []
        unique = uuid.uuid4().hex[:8]
        (root / "samples").symlink_to(SAMPLES)
        reg = registry.host
        from kata_imagefix.registry.client import RegistryClient

        client = RegistryClient(reg)
        self.remote_spark = f"{reg}/readme-{unique}/spark:3.5.3"
        push_spec(client, root, f"readme-{unique}/spark", "3.5.3", spark_like())
        self.mysql = f"{reg}/readme-{unique}/mysql:8.4"
        push_layout(client, SAMPLES / "mysql", "8.4", f"readme-{unique}/mysql")
        self.team_app = f"{reg}/readme-{unique}/team/app"
        push_spec(client, root, f"readme-{unique}/team/app", "1.9", spark_like("185:185"))
        self.spark = f"imagefix-test/readme-spark:{unique}"
        self.subs: list[tuple[str, str]] = [
            ("docker://registry.example/spark:3.5.3", f"docker://{self.remote_spark}"),
            ("registry.example/team/app", self.team_app),
            ("eclipse-temurin:17-jre", base_image()),
            ("/etc/kata-containers/", f"{root}/etc/kata-containers/"),
            ("/opt/kata/share/defaults/kata-containers/", f"{ROOT}/tests/data/kata-4.1.0/go/"),
            ("helm template charts/spark", "cat charts-spark.yaml"),
            ("kustomize build overlays/tdx", "cat overlays-tdx.yaml"),
            ("kubectl get deploy,sts,ds,job,cronjob,pod -A -o json", "cat cluster.json"),
        ]
        self.word_subs = [(r"(?<![\w/:.-])spark:3\.5\.3", self.spark),
                          (r"(?<![\w/:.-])mysql:8\.4", self.mysql),
                          (r"(?<![\w/:.-])myapp:", "oci:myapp:")]
        self._files()
        if engine is not None:
            self._engine_images()

    def _files(self) -> None:
        from make_samples import (
            SPARK_GROUP,
            SPARK_PASSWD,
            Entry,
            ImageSpec,
            LayerSpec,
            base_layer,
            write_oci_layout,
        )

        root = self.root
        kata = root / "etc" / "kata-containers"
        kata.mkdir(parents=True)
        shipped = (ROOT / "tests/data/kata-4.1.0/go/configuration-qemu-tdx.toml").read_text()
        recipe = shipped.replace("\n[factory]\n", "\n[factory]\ncreate_container_timeout = 120\n", 1)
        (kata / "configuration-qemu-tdx.toml").write_text(recipe)
        (root / "configuration-qemu-tdx.toml").write_text(recipe)
        app = [base_layer(SPARK_PASSWD, SPARK_GROUP), LayerSpec([Entry("app.bin", zeros=20_000_000)],
                                                                 "/bin/sh -c make install")]
        write_oci_layout(root / "myapp", {"1.9": ImageSpec(app[:1], config={"User": "185:185"}),
                                          "2.0": ImageSpec(app, config={"User": "185:185"})})

        def deployment(name: str, image: str) -> str:
            return (f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n"
                    f"  selector:\n    matchLabels: {{app: {name}}}\n  template:\n"
                    f"    metadata:\n      labels: {{app: {name}}}\n    spec:\n"
                    f"      runtimeClassName: kata-qemu-tdx\n      containers:\n"
                    f"      - name: {name}\n        image: {image}\n")

        (root / "deploy.yaml").write_text(deployment("spark", self.spark))
        (root / "deploy").mkdir()
        (root / "deploy" / "spark.yaml").write_text(deployment("spark", self.remote_spark))
        (root / "charts-spark.yaml").write_text(deployment("spark", self.remote_spark))
        (root / "overlays-tdx.yaml").write_text(deployment("spark", self.remote_spark) + "---\n"
                                                + deployment("db", self.mysql))
        import yaml

        items = [yaml.safe_load(deployment("spark", self.remote_spark)),
                 yaml.safe_load(deployment("db", self.mysql))]
        (root / "cluster.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))

    def _engine_images(self) -> None:
        import io
        import tarfile

        def build(dockerfile: str, tag: str) -> None:
            context = io.BytesIO()
            with tarfile.open(fileobj=context, mode="w") as tar:
                info = tarfile.TarInfo("Dockerfile")
                info.size = len(dockerfile.encode())
                tar.addfile(info, io.BytesIO(dockerfile.encode()))
            context.seek(0)
            events = list(self.engine.build(fileobj=context, custom_context=True, tag=tag, rm=True,
                                            forcerm=True, network_mode="none", decode=True))
            assert not [e for e in events if "error" in e], events[-1]
            self.made_tags.append(tag)

        build(SPARK_DOCKERFILE.format(base=base_image()), self.spark)
        numeric = SPARK_DOCKERFILE.format(base=base_image()).replace("USER spark", "USER 185:185")
        build(numeric, f"{self.team_app}:2.0")
        build(numeric.replace("echo jar >", "echo old-jar >"), f"{self.team_app}:1.9")  # the last release
        repository, tag = "gcr.io/distroless/java17-debian13", "nonroot"
        if not any(f"{repository}:{tag}" in (i.get("RepoTags") or []) for i in self.engine.images()):
            self.engine.tag(base_image(), repository, tag)  # a busybox stand-in, never pulled
            self.made_tags.append(f"{repository}:{tag}")

    def command(self, text: str) -> str:
        for readme, ours in self.subs:
            text = text.replace(readme, ours)
        for pattern, ours in self.word_subs:
            text = re.sub(pattern, ours, text)
        return text

    def output(self, text: str) -> str:
        """The real output in the README's words: stand-ins named back, IDs and digests generic."""
        for readme, ours in [*self.subs, *((p.replace("(?<![\\w/:.-])", "").replace("\\", ""), o)
                                            for p, o in self.word_subs)]:
            text = text.replace(ours, readme)
        return normal(text)

    def cleanup(self) -> None:
        """Our tags and those fix derived from them (TAG-kata, TAG-slim, ...); nothing else."""
        ours = [t for image in self.engine.images() for t in image.get("RepoTags") or []
                if any(t == tag or t.startswith(f"{tag}-") for tag in self.made_tags)]
        for tag in ours:
            with contextlib.suppress(Exception):
                self.engine.remove_image(tag, force=True)


def normal(text: str) -> str:
    return re.sub(r"sha256:[0-9a-f]{12,64}", "sha256:ID", text)


@pytest.fixture(scope="module")
def stage(tmp_path_factory, registry):
    made = Stage(tmp_path_factory.mktemp("readme"), registry, engine_or_none())
    yield made
    if made.engine is not None:
        made.cleanup()


def needs_engine(example: Example) -> bool:
    text = example.command
    return bool(re.search(r"imagefix fix (spark|docker-daemon)|imagefix k8s spark:|--push", text)) or (
        "imagefix fix docker://" not in text and text.startswith("imagefix fix "))


@pytest.mark.registry
@pytest.mark.parametrize("example", EXAMPLES, ids=[f"line{e.line}" for e in EXAMPLES])
def test_readme_example_runs_as_printed(stage, example):
    if needs_engine(example) and stage.engine is None:
        pytest.skip("needs a Docker engine")
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}",
           "GITHUB_STEP_SUMMARY": str(stage.root / "step-summary.md")}
    env.pop("COLUMNS", None)
    command = stage.command(example.command)
    done = subprocess.run(["bash", "-c", command], cwd=stage.root, env=env, capture_output=True, text=True,
                          timeout=600)
    real = stage.output(done.stdout + done.stderr)
    if os.environ.get("IMAGEFIX_README_SHOW"):  # to refresh the README's output lines
        print(f"\n$ {example.command}\n{real}", file=sys.stderr)
    assert done.returncode == example.exit_code, (command, real)
    if example.shown:  # the lines shown are whole real lines, one after another (a terminal's wrap aside)
        assert not [line for line in example.shown if "…" in line], f"README line {example.line}: shortened"
        shown = "".join(normal("".join(example.shown)).split())
        real_lines = ["".join(line.split()) for line in real.splitlines()]
        assert any(_run_of(real_lines, start, shown) for start in range(len(real_lines))), \
            (f"README line {example.line}: the output shown is not whole lines of the real output", real)


def _run_of(lines: list[str], start: int, text: str) -> bool:
    joined = ""
    for line in lines[start:]:
        joined += line
        if joined == text:
            return True
        if not text.startswith(joined):
            return False
    return False


def test_the_readme_has_examples_and_says_when_they_fail():
    assert len(EXAMPLES) >= 24
    first = EXAMPLES[0]
    assert first.command.startswith("imagefix scan oci:samples/spark:3.5.3") and first.exit_code == 1
    assert "exits 1 on purpose" in README


def test_the_install_command_and_the_gitlab_job_work_from_the_repository(tmp_path):
    """The sh block of "The two commands" in a fresh copy, and the GitLab job with the archive URL
    substituted by the same archive of this checkout (as GitHub serves it: one top folder)."""
    copy = tmp_path / "imagefix"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(
        ".venv", ".git", "*.egg-info", "build", "dist", ".ci", "__pycache__", ".pytest_cache"))
    install = re.search(r"```sh\n(python3 -m venv .*)\n```", README).group(1)
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"  # `python3` is a 3.11+ one
    done = subprocess.run(["bash", "-c", install], cwd=copy, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 1 and "KIF101" in done.stdout, done.stdout + done.stderr  # exits 1 on purpose
    job = re.search(r"GitLab CI.*?```yaml\n(.*?)```", README, re.S).group(1)
    script = [line.strip()[2:] for line in job.splitlines() if line.strip().startswith("- ")
              and not line.strip().startswith("- gl-")]
    url = re.search(r"https://\S+\.tar\.gz", "\n".join(script)).group(0)
    archive = tmp_path / "imagefix-0.1.0.tar.gz"
    shutil.move(copy / ".venv", tmp_path / "first-venv")
    subprocess.run(["tar", "czf", str(archive), "-C", str(tmp_path), "imagefix"], check=True, timeout=120)
    work = tmp_path / "project"
    work.mkdir()
    (work / "Dockerfile").write_text("FROM debian:12\nUSER nobody\n")
    venv = re.search(r"python3 -m venv (\S+)", script[0]).group(1)
    lines = [line.replace(url, str(archive)).replace(venv, str(tmp_path / "ci-venv")) for line in script]
    done = subprocess.run(["bash", "-ec", "\n".join(lines)], cwd=work, env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((work / "gl-code-quality-report.json").read_text())
    assert report and report[0]["check_name"] == "KIF101"


def test_the_github_actions_example_runs_as_printed_and_uploads(tmp_path):
    """The README's two workflow steps: the action (run by test_action's runner, with a Python that
    is not 3.11 when this machine has one) and upload-sarif, which reads the file the action wrote
    (`if: always()`: also when the scan's findings fail the job) - it must meet GitHub's rules."""
    import yaml
    from sarif_github import github_problems
    from test_action import ACTION, NOT_311, Runner

    block = re.search(r"GitHub Actions \(the composite action.*?```yaml\n(.*?)```", README, re.S).group(1)
    action, upload = yaml.safe_load(block)
    assert action["uses"].split("@")[0].endswith("/imagefix")
    assert upload["uses"].startswith("github/codeql-action/upload-sarif@") and upload["if"] == "always()"
    inputs = {k: str(v) for k, v in action["with"].items()}
    named = re.search(r"command:.*#\s*(.*)", block).group(1)
    assert named == ACTION["inputs"]["command"]["description"].strip('"')  # the same commands as action.yml
    assert inputs["args"] == "myapp:${{ github.sha }}"
    inputs["args"] = "oci:samples/spark:3.5.3"  # the stand-in for the image the job built
    runner = Runner(tmp_path, NOT_311 or sys.executable)
    code, outputs, summary, log = runner.run(inputs)
    assert code == 1 and outputs["exit-code"] == "1", log  # KIF101: the job fails, the upload runs
    sarif = json.loads((runner.workspace / upload["with"]["sarif_file"]).read_text())
    assert outputs["sarif-file"] == upload["with"]["sarif_file"]
    assert github_problems(sarif) == [] and sarif["runs"][0]["results"]
    assert "### imagefix scan" in summary


def test_the_pre_commit_example_names_the_hooks_this_repository_has(tmp_path):
    """The README's `.pre-commit-config.yaml` as printed: every hook id is one of `.pre-commit-hooks.yaml`
    (test_precommit runs them with real pre-commit), and the report hook's args are a working report."""
    import yaml

    block = re.search(r"pre-commit \(`\.pre-commit-config\.yaml`.*?```yaml\n(.*?)```", README, re.S).group(1)
    config = yaml.safe_load(block)
    hooks = {hook["id"]: hook for hook in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    used = config["repos"][0]["hooks"]
    assert used and {hook["id"] for hook in used} <= set(hooks)
    report = next(hook for hook in used if hook["id"] == "imagefix-report")
    assert hooks["imagefix-report"]["stages"] == ["pre-push"]
    args = [f"oci:{SAMPLES / 'spark'}:3.5.3" if a == "myapp:dev" else a for a in report["args"]]
    done = subprocess.run([str(BIN / "imagefix"), *hooks["imagefix-report"]["entry"].split()[1:], *args],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0 and "PASS: " in done.stdout, done.stdout + done.stderr
    over = [a.replace("800MB", "100MB") for a in args]  # the same hook on an image above its budget
    done = subprocess.run([str(BIN / "imagefix"), "report", *over], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 1 and "FAIL: budget (162.0 MB > 100.0 MB)" in done.stdout, done.stdout


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.shown and re.match(
    r"imagefix (scan|lint) (oci:)?samples/", e.command)], ids=lambda e: f"line{e.line}")
def test_the_tour_shows_what_a_100_column_terminal_shows(example, monkeypatch):
    """"Output is shown as a 100-column terminal shows it": the sample examples, line for line, as a
    real terminal of 100 columns receives them (colour aside)."""
    from test_terminal import on_terminal, visible

    monkeypatch.chdir(ROOT)
    assert "Output is shown as a 100-column terminal shows it" in README
    code, shown = on_terminal(*example.command.split("#")[0].split()[1:], columns=100)
    assert code == example.exit_code
    assert [line.rstrip() for line in visible(shown)] == [line.rstrip() for line in example.shown]
