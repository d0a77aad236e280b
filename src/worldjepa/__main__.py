"""`python -m worldjepa ...` is the `worldjepa` command (also under `torchrun -m worldjepa`)."""

import sys

from worldjepa.cli import main

sys.exit(main())
