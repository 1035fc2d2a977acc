"""`python -m sdss_distill.edge`: classify or benchmark on the edge."""

import sys

from sdss_distill.edge.cli import main

sys.exit(main())
