"""`python -m sdss_distill.edge`: classify or benchmark on the edge."""

import sys

from sdss_distill.edge.classifier import main

sys.exit(main())
