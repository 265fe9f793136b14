"""`python -m kata_imagefix ...` runs the command line."""

from .cli.process import run

run()
