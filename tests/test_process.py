"""The `imagefix` process (cli/process.py): it ends without the interpreter's teardown only when the
ordinary exit would do nothing more than free memory - every byte written, every handler run."""

from __future__ import annotations

import subprocess
import sys


def python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_a_fast_exit_keeps_the_code_and_every_byte_of_buffered_output():
    """10 MB still in stdout's buffer and a line on stderr reach the pipe; the exit code is the command's."""
    result = python("import sys\nfrom kata_imagefix.cli.process import leave\n"
                    "sys.stdout.write('x' * 10_000_000)\nsys.stderr.write('said')\nleave(3)\n")
    assert result.returncode == 3 and len(result.stdout) == 10_000_000 and result.stderr == "said"


def test_an_exit_handler_or_a_waiting_thread_gets_the_ordinary_exit():
    """Whatever registered an exit handler (a temporary directory's finalizer, logging) or a thread
    Python would wait for still gets it: the handler runs, the thread finishes."""
    handler = python("import atexit\nfrom kata_imagefix.cli.process import leave\n"
                     "atexit.register(lambda: print('handler ran'))\nleave(0)\n")
    assert handler.returncode == 0 and handler.stdout == "handler ran\n"
    thread = python("import threading, time\nfrom kata_imagefix.cli.process import leave\n"
                    "threading.Thread(target=lambda: (time.sleep(0.3), print('thread done'))).start()\n"
                    "leave(4)\n")
    assert thread.returncode == 4 and thread.stdout == "thread done\n"
    temp = python("import os, tempfile\nfrom kata_imagefix.cli.process import leave\n"
                  "folder = tempfile.TemporaryDirectory()\nprint(folder.name)\nleave(0)\n")
    assert temp.returncode == 0 and not __import__("os").path.exists(temp.stdout.strip())


def test_a_message_instead_of_a_code_exits_as_sys_exit_does():
    result = python("from kata_imagefix.cli.process import leave\nleave('stopped')\n")
    assert result.returncode == 1 and result.stderr == "stopped\n"


def test_output_to_a_full_device_is_still_an_error():
    """stdout on /dev/full: the flush fails, so the ordinary exit reports it (not a silent 0)."""
    with open("/dev/full", "w") as full:
        code = ("import sys\nfrom kata_imagefix.cli.process import leave\n"
                "sys.stdout.write('x' * 100)\nleave(0)\n")
        result = subprocess.run([sys.executable, "-c", code], stdout=full, stderr=subprocess.PIPE, text=True,
                                timeout=60)
    assert result.returncode != 0 and "No space left on device" in result.stderr


def test_the_console_script_runs_through_the_process_entry():
    """`python -m kata_imagefix` and the installed `imagefix` both start in process.run."""
    result = subprocess.run([sys.executable, "-m", "kata_imagefix", "rules"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and "KIF101" in result.stdout and result.stderr == ""
    from importlib.metadata import entry_points

    [script] = [e for e in entry_points(group="console_scripts") if e.name == "imagefix"]
    assert script.value == "kata_imagefix.cli.process:run"
