"""The Jinja environment over templates/ that every rendered file starts from (StrictUndefined).

The Dockerfile templates (fix/render.py) add their filters that keep values
inert; the HTML report (output/html.py) escapes what it shows itself (`| e`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__

if TYPE_CHECKING:
    import jinja2


def templates_dir() -> Path:
    """The shipped templates: inside the installed package, or templates/ in a source tree."""
    try:
        from importlib.resources import files

        path = Path(str(files("kata_imagefix.templates")))
        if (path / "user.Dockerfile.j2").is_file():
            return path
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parents[1] / "templates"


def environment(template_dir: Path | None = None) -> jinja2.Environment:
    """Templates from `template_dir` first (a user's), then the shipped ones."""
    import jinja2

    search = [str(template_dir)] if template_dir else []
    search.append(str(templates_dir()))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(search),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # Dockerfiles and a page that escapes its values: each says how
    )
    env.globals["version"] = __version__
    return env
