"""`python -m weft.cli`: the `weft` command."""

from weft.cli import main

main()
