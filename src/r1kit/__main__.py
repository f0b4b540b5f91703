"""`python -m r1kit` (and `torchrun -m r1kit`): the `r1kit` command."""

import sys

from r1kit.cli import main

sys.exit(main())
