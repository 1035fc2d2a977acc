"""`python -m sdss_distill.sweep`: sweeps over seeds and methods."""

import sys

from sdss_distill.sweep.cli import main

sys.exit(main())
