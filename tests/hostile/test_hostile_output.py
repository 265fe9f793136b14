"""What an image, a manifest or a Dockerfile says reaches a terminal, a pipe or a pull request
comment as text: escape sequences escaped (OSC 8 links included), no rich markup, no HTML, no line
breaks that forge a finding; and output that cannot be written is one line and exit 2."""

from __future__ import annotations

import json
import tarfile

import pytest
from make_samples import SPARK_GROUP, SPARK_PASSWD

OSC8 = "\x1b]8;;https://evil.example/\x1b\\click me\x1b]8;;\x1b\\"
EVIL_USER = f"spark{OSC8}\x1b[2J\r"
EVIL_CREATED = "RUN echo [red]x[/] [/] [link=https://evil.example]y[/link] <img src=x onerror=alert(1)>\n" \
               "| error | KIF999 | forged row |\x1b[31m"
EVIL_FILE = "opt/\x1b[31mred\x1b]8;;https://evil.example/\x07[bold]x[/]<b>.bin"


def _image(tmp_path, user: str = EVIL_USER):
    from child import layout_around

    def write_tar(out) -> None:
        for name, body in (("etc/passwd", SPARK_PASSWD.encode()), ("etc/group", SPARK_GROUP.encode()),
                           (EVIL_FILE, b"x" * 5000)):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            out.write(info.tobuf(tarfile.PAX_FORMAT) + body + bytes(-len(body) % 512))
        out.write(bytes(1024))

    def raw(diff_id: str) -> bytes:
        return json.dumps({"architecture": "amd64", "os": "linux", "config": {"User": user},
                           "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                           "history": [{"created_by": EVIL_CREATED}]}).encode()

    return layout_around(tmp_path / "img", write_tar, raw_config=raw)


def _inert(text: str) -> None:
    assert "\x1b" not in text and "\r" not in text and "\x07" not in text, repr(text[:500])


@pytest.mark.parametrize("args", [("scan",), ("scan", "--format", "gnu"), ("report",),
                                  ("report", "--files", "5")])
def test_escape_sequences_from_an_image_are_shown_escaped(cli, tmp_path, args):
    result = cli(*args, _image(tmp_path))
    assert result.exit_code in (0, 1), result.stderr
    _inert(result.stdout + result.stderr)
    if args != ("report",):  # the report's table cuts created_by before the escape
        assert "\\x1b" in result.stdout  # shown, so that the reader sees something is there


@pytest.mark.parametrize("fmt", ["sarif", "gitlab"])
def test_messages_in_sarif_and_gitlab_show_escapes_escaped(cli, tmp_path, fmt):
    """The message is text a code-scanning page or merge request widget shows: escaped like the
    terminal's (the user name was escaped where the rule quotes it with repr, raw where it lists it)."""
    result = cli("scan", "--format", fmt, _image(tmp_path))
    assert result.exit_code in (0, 1), result.stderr
    doc = json.loads(result.stdout)
    texts = ([r["message"]["text"] for r in doc["runs"][0]["results"]] if fmt == "sarif"
             else [issue["description"] for issue in doc])
    assert texts and all("\\x1b" in t for t in texts if "spark" in t), texts
    _inert("".join(texts))


def test_rich_markup_in_created_by_and_file_names_stays_text(cli, tmp_path):
    result = cli("report", "--files", "5", _image(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert "[red]x[/]" in result.stdout and "[/]" in result.stdout and "[link=" in result.stdout
    assert "[bold]x[/]" in result.stdout


@pytest.mark.parametrize("args", [("scan", "--format", "markdown"), ("report", "--format", "markdown"),
                                  ("report", "--format", "markdown", "--files", "5")])
def test_markdown_escapes_everything_that_comes_from_an_image(cli, tmp_path, args):
    result = cli(*args, _image(tmp_path))
    assert result.exit_code in (0, 1), result.stderr
    _inert(result.stdout)
    assert "<img" not in result.stdout and "<b>" not in result.stdout  # raw HTML renders in a PR comment
    assert "](" not in result.stdout.replace("\\](", "")  # no link
    assert "| error | KIF999 | forged row |" not in result.stdout  # no line break ends the row


def test_html_escapes_image_data(cli, tmp_path):
    result = cli("report", "--format", "html", "--files", "5", _image(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert "<img src=x" not in result.stdout and "&lt;img src=x" in result.stdout


def test_an_image_value_in_a_manifest_is_shown_escaped(cli, tmp_path):
    manifest = tmp_path / "app.yaml"
    manifest.write_text('apiVersion: v1\nkind: Pod\nmetadata: {name: "x\\e[2J"}\nspec:\n'
                        '  runtimeClassName: kata-qemu-tdx\n  containers:\n'
                        '  - name: app\n    image: "127.0.0.1:1/app\\e]8;;https://evil.example/\\a:1"\n')
    result = cli("k8s", "check", manifest)
    assert result.exit_code in (1, 2), result.stderr
    _inert(result.stdout + result.stderr)
    assert "\\x1b" in result.stdout + result.stderr


def test_a_dockerfile_user_with_escapes_is_shown_escaped(cli, tmp_path):
    path = tmp_path / "Dockerfile"
    path.write_bytes(b"FROM debian:12\nUSER spark\x1b]8;;https://evil.example/\x07\n")
    result = cli("lint", path)
    assert result.exit_code in (1, 2), result.stderr
    _inert(result.stdout + result.stderr)
