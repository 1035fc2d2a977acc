"""`python -m sdss_distill.data`: fetch real or write SIMULATED tables."""

import sys

from sdss_distill.data.cli import main

sys.exit(main())
