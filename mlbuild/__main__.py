"""`python -m mlbuild` is the `mlbuild` command."""

from .cli import main

main()
