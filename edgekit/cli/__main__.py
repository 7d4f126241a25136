"""`python -m edgekit.cli ...` (e.g. under torch.distributed.run)."""

import sys

from edgekit.cli import main

sys.exit(main())
