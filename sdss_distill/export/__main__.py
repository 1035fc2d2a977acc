"""`python -m sdss_distill.export`: convert a run's models to LiteRT."""

import sys

from sdss_distill.export.cli import main

sys.exit(main())
