"""`python -m sdss_distill [SUBCOMMAND ...]`: the `sdss-distill` command (lists subcommands)."""

import sys

from sdss_distill.cli import main

sys.exit(main())
