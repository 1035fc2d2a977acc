"""`python -m sdss_distill.score`: score a catalogue on Dask."""

import sys

from sdss_distill.score.cli import main

sys.exit(main())
