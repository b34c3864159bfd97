"""`python -m cosmos_sim` runs the `cosmos-sim` command line."""

import sys

from cosmos_sim.cli import main

sys.exit(main())
