"""`python -m sdss_distill [SUBCOMMAND ...]`: the `sdss-distill` command (lists subcommands)."""

from sdss_distill.cli import run

run()
