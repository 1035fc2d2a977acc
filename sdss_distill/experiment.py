"""`python -m sdss_distill.experiment`: the sweep command (see sdss_distill.sweep.cli)."""

import sys

from sdss_distill.sweep.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
