"""``python -m trasgi MODULE:ATTRIBUTE [options]``."""

import sys

from trasgi._ops.cli import main

sys.exit(main())
