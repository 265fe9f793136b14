"""`python -m kata_imagefix ...` runs the command line."""

from .cli import main

main()
