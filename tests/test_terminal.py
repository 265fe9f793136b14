"""What a terminal shows: wrapping to its width, colour choices, plurals, verdicts that say what fails.

Terminal cases run imagefix as a child process on a real pseudo-terminal of a chosen size.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from html import escape

import pytest
from conftest import SAMPLES
from make_samples import (
    SPARK_GROUP,
    SPARK_PASSWD,
    Entry,
    ImageSpec,
    LayerSpec,
    base_layer,
    write_oci_layout,
)

SPARK = f"oci:{SAMPLES / 'spark'}:3.5.3"
MYSQL = f"oci:{SAMPLES / 'mysql'}:8.4"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def on_terminal(*args: str, columns: int = 80, env: dict | None = None) -> tuple[int, str]:
    """(exit code, what the terminal received) of `imagefix ARGS` with stdout and stderr on a pty."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    environ = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "NO_COLOR", "FORCE_COLOR")}
    child = subprocess.Popen([sys.executable, "-m", "kata_imagefix", *args], stdin=slave, stdout=slave,
                             stderr=slave, env={**environ, "TERM": "xterm", **(env or {})}, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return child.wait(timeout=120), b"".join(chunks).decode().replace("\r\n", "\n")


def in_pipe(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "NO_COLOR", "FORCE_COLOR")}
    return subprocess.run([sys.executable, "-m", "kata_imagefix", *args], capture_output=True, text=True,
                          env={**environ, **(env or {})}, timeout=120)


def visible(text: str) -> list[str]:
    return ANSI.sub("", text).splitlines()


def test_findings_wrap_to_the_terminal_under_their_column_and_stay_whole_in_a_pipe():
    code, shown = on_terminal("scan", MYSQL, SPARK, columns=80)
    assert code == 1
    lines = visible(shown)
    assert max(len(line) for line in lines) <= 80
    piped = in_pipe("scan", MYSQL, SPARK)
    assert max(len(line) for line in piped.stdout.splitlines()) > 200  # one line per message there
    assert "".join("".join(lines).split()) == "".join(piped.stdout.split())  # the same text, re-broken
    fix = next(i for i, line in enumerate(lines) if "fix: set create_container_timeout" in line)
    assert lines[fix + 1].startswith(" " * 23) and lines[fix + 1].strip()  # continued under the fix
    message = next(i for i, line in enumerate(lines) if "KIF101" in line)
    assert lines[message + 1].startswith(" " * 18) and not lines[message + 1].startswith(" " * 19)


REPORT_HEADERS = ["#", "layer", "created by", "unpacked", "compressed", "share", "of the image"]
# the columns a narrow table leaves out, first to go first, as the note under it says them
LEFT_OUT_SAID = {"of the image": "the bars", "compressed": "the compressed sizes", "share": "the shares"}


def layer_table(lines: list[str]) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of the report's layer table as drawn: a header's or a cell's wrapped lines joined."""
    rule = next(i for i, line in enumerate(lines) if "╇" in line)
    heads = [line.split("┃") for line in lines[:rule] if "┃" in line]
    headers = [" ".join(filter(None, (head[k].strip() for head in heads))) for k in range(len(heads[0]))]
    rows: list[list[str]] = []
    for line in lines[rule + 1:]:
        if "│" not in line:
            break
        cells = [cell.strip() for cell in line.split("│")]
        if cells[0]:
            rows.append(cells)
        else:  # a wrapped line of the row above
            rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
    return headers, rows


def assert_whole_report_table(lines: list[str], width: int, headers: list[str]) -> None:
    """Every line within `width`; the table shows `headers`, each whole; the left-out columns are said;
    every layer is a row whose build command is all there, wrapped or not."""
    assert max(len(line) for line in lines) <= width
    assert all(line == line.rstrip() for line in lines)  # no padding to the width at the ends
    shown, rows = layer_table(lines)
    assert shown == headers
    doc = json.loads(in_pipe("report", MYSQL, "--format", "json").stdout)
    assert len(rows) == len(doc["layers"])
    for row, layer in zip(rows, doc["layers"], strict=True):
        cells = dict(zip(shown, row, strict=True))
        assert cells["#"] == str(layer["index"]) and cells["layer"] == layer["digest"][7:19]
        assert "".join(cells["created by"].split()) == "".join(layer["created_by"].split())
    left_out = [h for h in LEFT_OUT_SAID if h not in headers]  # in the order they go
    said = [line for line in lines if line.startswith("(left out at")]
    if left_out:
        note = " ".join(lines[lines.index(said[0]):])
        said_out = ", ".join(LEFT_OUT_SAID[h] for h in left_out)
        assert note.startswith(f"(left out at {width} columns: {said_out}; a wider terminal or --format json")
    else:
        assert not said


@pytest.mark.parametrize("columns, headers", [
    (60, ["#", "layer", "created by", "unpacked", "share"]),  # no bar, no compressed size
    (80, ["#", "layer", "created by", "unpacked", "compressed", "share"]),  # no bar
    (120, REPORT_HEADERS),
])
def test_the_report_table_keeps_whole_headers_at_every_width(columns, headers):
    code, shown = on_terminal("report", MYSQL, columns=columns)
    assert code == 0
    assert_whole_report_table(visible(shown), columns, headers)
    if columns == 60:  # COLUMNS says the width as the terminal's own size does
        assert on_terminal("report", MYSQL, columns=100, env={"COLUMNS": "60"})[1] == shown


def test_the_report_table_in_a_pipe_is_120_columns_with_every_column_and_the_bar_has_a_header():
    piped = in_pipe("report", MYSQL)
    assert piped.returncode == 0
    assert_whole_report_table(piped.stdout.splitlines(), 120, REPORT_HEADERS)
    assert in_pipe("report", MYSQL, env={"COLUMNS": "60"}).stdout == piped.stdout  # not a terminal's width


def test_at_40_columns_base_goes_under_the_digest_and_the_command_header_wraps_on_its_space(tmp_path):
    base = [base_layer(SPARK_PASSWD, SPARK_GROUP)]
    command = "/bin/sh -c apt-get install -y --no-install-recommends python3-venv"
    app = base + [LayerSpec([Entry(f"x{i}", b"x" * (i * 1000))], f"{command} #{i}") for i in range(11)]
    write_oci_layout(tmp_path / "l", {"base": ImageSpec(base, config={"User": "0:0"}),
                                      "app": ImageSpec(app, config={"User": "0:0"})})
    code, shown = on_terminal("report", f"oci:{tmp_path / 'l'}:app", "--base", f"oci:{tmp_path / 'l'}:base",
                              columns=40)
    assert code == 0
    lines = visible(shown)
    assert max(len(line) for line in lines) <= 40
    headers, rows = layer_table(lines)
    assert headers == ["#", "layer", "created by", "unpacked"]  # "created" over "by": no word cut
    assert len(rows) == 12 and rows[0][1].endswith(" base") and not rows[1][1].endswith("base")
    assert [row[0] for row in rows] == [str(n) for n in range(12)]
    assert all(re.fullmatch(r"[0-9.]+ k?B", row[3]) for row in rows)  # every size whole
    assert ["".join(row[2].split()) for row in rows[1:]] == [
        f"RUNapt-getinstall-y--no-install-recommendspython3-venv#{n}" for n in range(11)]  # all of it


def test_a_text_report_written_to_a_file_is_as_wide_as_in_a_pipe(tmp_path):
    out = tmp_path / "report.txt"
    code, _ = on_terminal("report", SPARK, "-o", str(out), columns=60)
    assert code == 0
    written = out.read_text().splitlines()
    assert written == in_pipe("report", SPARK).stdout.splitlines()  # not the terminal's 60 columns


def test_progress_bars_fit_the_width_they_are_given():
    from rich.console import Console

    from kata_imagefix.output.progress import terminal_bar

    for width in (40, 80, 100, 160):
        buffer = io.StringIO()
        console = Console(file=buffer, width=width, force_terminal=True, color_system=None)
        with terminal_bar("pulling sha256:" + "a" * 64 + " from registry.example/team/app", 10**9,
                          console=console) as advance:
            advance(10**8)
        drawn = [line for line in re.split(r"[\r\n]", ANSI.sub("", buffer.getvalue())) if line.strip()]
        assert drawn and max(len(line) for line in drawn) <= width, width


@pytest.fixture(scope="module")
def big_remote(registry, tmp_path_factory) -> str:
    """An image with a 20 MB layer in the loopback registry: `report --exact` streams it under a bar."""
    from registries import push_spec, repo_name, spark_like

    from kata_imagefix.registry.client import RegistryClient

    repository = repo_name("bar")
    push_spec(RegistryClient(registry.host), tmp_path_factory.mktemp("bar"), repository, "1",
              spark_like("0:0", big=20_000_000))
    return f"docker://{registry.host}/{repository}:1"


@pytest.mark.registry
@pytest.mark.parametrize("columns", [40, 100])
def test_the_cli_draws_its_progress_bar_within_the_terminal(big_remote, columns):
    code, shown = on_terminal("report", big_remote, "--exact", columns=columns)
    assert code == 0
    # what the bar drew, frame by frame (each redraw starts with a carriage return), until it erased its
    # line for the report
    cut = shown.rindex("\x1b[2K")
    drawn, report = shown[:cut], ANSI.sub("", shown[cut:])
    assert report.startswith(big_remote[:columns // 2]) and "PASS" in report
    frames = [frame for frame in re.split(r"[\r\n]", ANSI.sub("", drawn)) if frame.strip()]
    assert frames and all("━" in frame and re.search(r" [0-9.]+/20\.0 MB\b", frame) for frame in frames)
    assert "20.0/20.0 MB" in frames[-1]  # drawn to the end
    assert max(len(frame) for frame in frames) <= columns, frames
    assert all(frame.startswith("unpacking d") for frame in frames)  # room left for what it does
    if columns < 60:
        assert not any("/s" in frame for frame in frames)  # no speed when narrow
    # and nothing of it in a pipe
    piped = in_pipe("report", big_remote, "--exact")
    assert piped.returncode == 0 and piped.stderr == "" and "\r" not in piped.stdout


def test_color_after_the_command_and_force_color_and_no_color(tmp_path):
    assert "\x1b[" in in_pipe("scan", SPARK, "--color", "always").stdout
    config = tmp_path / "configuration.toml"
    config.write_text("[factory]\ncreate_container_timeout = 120\n[runtime]\ncreate_container_timeout = 60\n")
    nested = in_pipe("kata", "check", str(config), "--color=always")
    assert nested.returncode == 1 and "\x1b[" in nested.stdout
    assert "\x1b[" in in_pipe("scan", SPARK, env={"FORCE_COLOR": "1"}).stdout
    assert "\x1b[" in in_pipe("scan", SPARK, env={"FORCE_COLOR": "1", "NO_COLOR": "1"}).stdout
    assert "\x1b[" not in in_pipe("scan", SPARK, "--color", "never", env={"FORCE_COLOR": "1"}).stdout
    assert "\x1b[" not in on_terminal("scan", SPARK, env={"NO_COLOR": "1"})[1]
    assert "\x1b[" in on_terminal("scan", SPARK)[1]
    # a file named like the flag, after `--`, stays an argument
    assert "--color" in in_pipe("lint", "--", "--color").stderr


def test_one_layer_is_one_layer_and_the_room_says_whether_it_fits(tmp_path):
    write_oci_layout(tmp_path / "one", {"1": ImageSpec([base_layer(SPARK_PASSWD, SPARK_GROUP)],
                                                       config={"User": "0:0"})})
    scanned = in_pipe("scan", f"oci:{tmp_path / 'one'}:1").stdout
    assert " · 1 layer · " in scanned and "guest room: fits" in scanned
    assert " in 1 layer\n" in in_pipe("report", f"oci:{tmp_path / 'one'}:1").stdout
    small = in_pipe("scan", MYSQL, "--guest-memory", "1024").stdout
    assert "guest room: does NOT fit" in small and "above create_container_timeout 60 s: set 120 s" in small


def test_report_says_warning_not_pass_when_the_pod_would_not_start():
    slow = in_pipe("report", MYSQL)
    assert slow.returncode == 0  # no gate was asked for
    assert "PASS" not in slow.stdout and "WARNING: no gate crossed, but on Kata" in slow.stdout
    assert "PASS: " in in_pipe("report", SPARK).stdout
    gated = in_pipe("report", SPARK, "--budget", "800MB", "--max-layer-size", "200MB").stdout
    gated = " ".join(gated.split())
    assert "PASS: budget (162.0 MB ≤ 800.0 MB); max-layer-size (150.0 MB ≤ 200.0 MB); guest pull" in gated


def test_markdown_has_the_largest_files_and_html_the_whole_command_as_a_tooltip(tmp_path):
    markdown = in_pipe("report", SPARK, "--files", "3", "--format", "markdown").stdout
    assert "| /opt/spark/jars/sample-assembly.jar | 150.0 MB | 1 |" in markdown
    assert "| /opt/spark | 162.0 MB |" in markdown
    command = "apt-get update && apt-get install -y --no-install-recommends " + " ".join(
        f"package-{n}" for n in range(20))
    layers = [base_layer(SPARK_PASSWD, SPARK_GROUP),
              LayerSpec([Entry("x", b"x")], f"/bin/sh -c {command}")]
    write_oci_layout(tmp_path / "long", {"1": ImageSpec(layers, config={"User": "0:0"})})
    html = in_pipe("report", f"oci:{tmp_path / 'long'}:1", "--format", "html").stdout
    whole, cut = escape(f"RUN {command}"), escape(f"RUN {command}"[:69])
    assert f'<td class="created" title="{whole}">{cut}…</td>' in html  # cut at 70, whole on hover


@pytest.mark.parametrize("columns", [60])
def test_a_narrow_terminal_still_shows_every_word_of_lint(columns, tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM debian:12\nUSER nobody\n")
    code, shown = on_terminal("lint", str(dockerfile), columns=columns)
    findings = visible(shown)[1:]  # the first line is the file's name, as long as it is
    assert code == 1 and max(len(line) for line in findings) <= columns
    piped = in_pipe("lint", str(dockerfile)).stdout
    assert "".join("".join(visible(shown)).split()) == "".join(piped.split())  # long paths break


@pytest.mark.parametrize(("pods", "said"), [
    (0, "(and no other workload: nothing to audit)"),
    (1, "(1 other workload skipped; --all audits every pod, --runtime-class names the classes)"),
    (3, "(3 other workloads skipped; --all audits every pod, --runtime-class names the classes)"),
])
def test_k8s_check_without_a_kata_workload_says_what_it_skipped_in_the_singular_and_plural(tmp_path, pods,
                                                                                           said):
    manifest = tmp_path / "pods.yaml"
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n" + "".join(
        f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{n}}}\nspec:\n  containers:\n"
        "  - {name: c, image: busybox}\n" for n in range(pods)))
    note = f"no Kata workload in {manifest} {said}"
    text = in_pipe("k8s", "check", str(manifest))
    assert text.returncode == 0 and f"  note: {note}\n" in text.stdout, text.stdout + text.stderr
    doc = json.loads(in_pipe("k8s", "check", "--format", "json", str(manifest)).stdout)
    assert doc["totals"]["notes"][0] == note and doc["workloads"] == []
