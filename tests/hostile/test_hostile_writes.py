"""kill -9 in the middle of an in-place edit: the target and every backup are whole, temps go away."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "kata-4.1.0" / "go" / "configuration-qemu-tdx.toml"


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
