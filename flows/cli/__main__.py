"""`python -m flows.cli` runs the command line (as the `livingmeta` entry point does)."""

from flows.cli import main

main()
