"""How a refused flag value is raised and named: options.py raises it, the group in app.py shows it as
one line; a module of its own so that the group does not import the options on every start."""

from __future__ import annotations

import click


class OptionValueError(click.BadParameter):
    """A flag's value refused while the command line is parsed, before any work; the group shows it
    as one line (`imagefix: error: --budget: ...`), and a config file's value is refused with its key."""


def option_name(param: click.Parameter | None) -> str:
    """--long-name of an option (its first name otherwise)."""
    if param is None:
        return "value"
    return next((opt for opt in param.opts if opt.startswith("--")), param.opts[0] if param.opts else "value")
