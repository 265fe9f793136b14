"""The command line (click only): parse, call the core, render through output/, exit code.

The command modules register themselves on `main` when they are imported, and `main` imports one
only when its command is resolved (app.LAZY_COMMANDS): start-up pays for the command that runs.
"""

from .app import main

__all__ = ["main"]
