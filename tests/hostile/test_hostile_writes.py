"""kill -9 in the middle of an in-place edit: the target and every backup are whole, temps go away."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent.parent / "data" / "kata-4.1.0" / "go" / "configuration-qemu-tdx.toml"
IMAGE = f"oci:{Path(__file__).resolve().parents[2] / 'samples' / 'spark'}:3.5.3"


def test_backups_and_target_survive_kill_9(tmp_path):
    # a large config widens the window in which the process dies mid-write
    original = DATA.read_text().replace("[factory]\n", "[factory]\ncreate_container_timeout = 120\n", 1)
    original += "".join(f"# padding line {i} {'x' * 80}\n" for i in range(60_000))
    path = tmp_path / "configuration-qemu-tdx.toml"
    path.write_text(original)
    rng = random.Random(7)
    for _ in range(12):
        child = subprocess.Popen([sys.executable, "-m", "kata_imagefix", "kata", "patch", str(path),
                                  "--in-place"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 0.6))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        text = path.read_text()
        assert text == original or ("create_container_timeout = 120" in text and text.endswith("x\n"))
        for backup in tmp_path.glob("configuration-qemu-tdx.toml.bak*"):
            assert backup.read_text() == original, backup.name
        if text != original:
            path.write_text(original)  # start again from the recipe
    done = subprocess.run([sys.executable, "-m", "kata_imagefix", "kata", "patch", str(path), "--in-place"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".imagefix-tmp")]
    assert leftovers == []  # temps of killed runs are removed by the next run


def _patchable(tmp_path):
    path = tmp_path / "Dockerfile"
    path.write_text("FROM debian:12\nRUN groupadd -g 185 spark && useradd -u 185 -g 185 spark\nUSER spark\n")
    return path


def test_output_into_a_fifo_goes_through_it(tmp_path):
    import os
    import threading

    from child import run_child

    fifo = tmp_path / "out"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result, _, _ = run_child("patch", str(_patchable(tmp_path)), "-o", str(fifo), timeout=60)
    reader.join(10)
    assert result.returncode == 0 and b"USER 185:185" in got[0], result.stderr
    assert fifo.is_fifo()  # written into, not renamed over


@pytest.mark.parametrize("args", [("lint", "{df}"), ("lint", "--format", "json", "{df}"), ("rules",),
                                  ("kata", "check", "{kata}"), ("scan", "{img}"),
                                  ("scan", "--format", "sarif", "{img}"), ("report", "{img}"),
                                  ("report", "--format", "html", "{img}")])
def test_stdout_on_a_full_device_is_one_line_and_exit_2(tmp_path, args):
    argv = [a.format(df=_patchable(tmp_path), kata=DATA, img=IMAGE) for a in args]
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "kata_imagefix", *argv], stdout=full,
                                stderr=subprocess.PIPE, text=True, timeout=60)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "cannot write the output: No space left on device" in result.stderr


def test_a_file_written_to_a_full_device_is_an_error_and_the_device_stays(tmp_path):
    import stat

    from child import run_child

    (tmp_path / "fifo-first").mkdir()
    test_output_into_a_fifo_goes_through_it(tmp_path / "fifo-first")  # proof first: no rename over a device
    for args in (("patch", str(_patchable(tmp_path)), "-o", "/dev/full"),
                 ("kata", "patch", str(DATA), "-o", "/dev/full"), ("report", IMAGE, "-o", "/dev/full")):
        result, _, _ = run_child(*args, timeout=60)
        assert result.returncode == 2 and "cannot write /dev/full: No space left on device" in result.stderr
        assert "patched" not in result.stderr + result.stdout
        assert stat.S_ISCHR(Path("/dev/full").stat().st_mode)
