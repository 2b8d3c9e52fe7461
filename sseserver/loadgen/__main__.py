"""`python -m sseserver.loadgen`: see `sseserver/loadgen/cli.py` for the options."""

import sys

from .cli import main

sys.exit(main())
