"""The command line (click only): parse, call the core, render through output/, exit code.

The command modules register themselves on `main` when they are imported here.
"""

from . import (  # noqa: F401
    dockerfile_cmds,
    fix_cmd,
    k8s_cmds,
    kata_cmds,
    merge_cmd,
    report_cmd,
    scan_cmds,
    webhook_cmd,
)
from .app import main

__all__ = ["main"]
