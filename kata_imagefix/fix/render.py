"""The Dockerfile templates: the shared Jinja environment (templating.py) with filters that keep values inert.

Every value that reaches a Dockerfile goes through a filter that refuses what
could start a new instruction (newlines, continuation backslashes) and quotes
strings, so no reference, path or label can inject a line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import templating
from ..errors import ImagefixError

if TYPE_CHECKING:
    import jinja2

_USER = re.compile(r'^(?:""|[A-Za-z0-9_][A-Za-z0-9_.-]*(?::[A-Za-z0-9_][A-Za-z0-9_.-]*)?)$')


def _no_line_breaks(value: Any, what: str) -> str:
    text = str(value)
    if any(ch in text for ch in "\r\n\0") or text.endswith("\\"):
        raise ImagefixError(f"refusing {what} {text!r}: it would break the Dockerfile's lines")
    return text


def dockerfile_string(value: Any) -> str:
    """A double-quoted Dockerfile string (ENV, LABEL, WORKDIR) the builder takes literally.

    Inside double quotes the builder's lexer expands `$` and treats the escape
    character before `"`, `$` and itself: those three are escaped, nothing
    else (JSON's \\uXXXX or \\t would reach the image as written).
    """
    text = _no_line_breaks(value, "value")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


def dockerfile_word(value: Any) -> str:
    """One bare word (an image reference, a stage name): no spaces, no quotes."""
    text = _no_line_breaks(value, "word")
    if not text or any(ch.isspace() or ch in "\"'\\$`" for ch in text):
        raise ImagefixError(f"refusing {text!r} where one word is expected")
    return text


def dockerfile_user(value: Any) -> str:
    text = _no_line_breaks(value, "user")
    if not _USER.match(text):
        raise ImagefixError(f"refusing USER value {text!r}")
    return text


def environment(template_dir: Path | None = None) -> jinja2.Environment:
    """The shared environment (templating.py) with the filters every Dockerfile value goes through."""
    env = templating.environment(template_dir)
    env.filters.update(dockerfile_string=dockerfile_string, dockerfile_word=dockerfile_word,
                       dockerfile_user=dockerfile_user, dockerfile_json=lambda v: json.dumps(v))
    return env


def render(template_name: str, values: dict[str, Any], template_dir: Path | None = None) -> str:
    import jinja2

    try:
        template = environment(template_dir).get_template(template_name)
        return template.render(template_name=template_name, **values)
    except jinja2.TemplateNotFound as exc:
        missing = exc.name or template_name  # an include names the missing file, not the includer
        where = "" if missing == template_name else f" (included from {template_name})"
        raise ImagefixError(f"template {missing} not found{where}") from None
    except jinja2.TemplateSyntaxError as exc:
        where = exc.filename or template_name
        raise ImagefixError(f"template {where} line {exc.lineno}: {exc.message}") from None
    except ImagefixError:
        raise  # a filter refused a value: its message says which
    except Exception as exc:  # a user's template failing while it renders ({{ 1/0 }}, undefined, ...)
        raise ImagefixError(f"template {_failing_line(exc, template_name)}: "
                            f"{getattr(exc, 'message', None) or exc or type(exc).__name__}") from None


def _failing_line(exc: BaseException, template_name: str) -> str:
    """`name line N` from the traceback jinja2 rewrites to point into the template."""
    import traceback

    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.endswith(".j2"):
            return f"{Path(frame.filename).name} line {frame.lineno}"
    return template_name
