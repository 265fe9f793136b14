"""The `imagefix` process: how it starts and how it ends, around `main` (which tests call in-process).

Why not just `main()`: a registry scan does ~5 ms of work in a process that lives ~100 ms, the rest
is Python starting, importing ~200 modules and, at exit, tearing them down again. Two costs of that
are the interpreter's defaults, not the work (`benchmarks/bench_registry.py` measures both):
- the cyclic garbage collector runs every 700 allocations, and start-up allocates hundreds of
  thousands of objects that all live to the end; a larger first threshold skips most of those
  passes (a cycle is still collected: after 10,000 allocations instead of 700).
- finalization frees every module, class and object one by one (~10 ms with the scan's modules)
  just before the kernel frees the whole address space anyway.
`run` skips the teardown only when nothing can be lost by it: the output flushed, no thread left
that Python would wait for, and no exit handler registered (anything that registers one - a
temporary directory's finalizer, a thread pool, logging - gets the ordinary exit instead).
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import threading
from typing import NoReturn

FIRST_GC_THRESHOLD = 10_000  # Python's default is 700


def run() -> NoReturn:
    """The console script: `main` with the collector's first threshold raised, then `leave`."""
    gc.set_threshold(FIRST_GC_THRESHOLD, *gc.get_threshold()[1:])
    from .app import main

    try:
        main()
    except SystemExit as exc:
        leave(exc.code)
    leave(0)


def leave(code: str | int | None) -> NoReturn:
    """Exit with `code` as `sys.exit` would, without the interpreter's teardown where that is safe."""
    if not isinstance(code, int) or not _nothing_left():
        sys.exit(code)  # a message to print, or something that still needs the ordinary exit
    os._exit(code)


def _nothing_left() -> bool:
    """Whether the ordinary exit would do nothing but free memory: the standard streams flushed (a
    failure stays for the ordinary exit to report), no non-daemon thread to wait for, no exit
    handler (atexit, or threading's own that thread pools use)."""
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        return False
    if any(not thread.daemon for thread in threading.enumerate() if thread is not threading.main_thread()):
        return False
    callbacks = getattr(atexit, "_ncallbacks", None)  # CPython's; elsewhere: exit normally
    if callbacks is None or callbacks() > 0:
        return False
    return not getattr(threading, "_threading_atexits", [True])
