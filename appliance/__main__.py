"""`python -m appliance`: the same as the `appliance` command."""

import sys

from .cli import main

sys.exit(main())
