"""`python -m sdss_distill [SUBCOMMAND ...]`: the `sdss-distill` command (lists subcommands)."""

import sys

from .cli import main

sys.exit(main())
