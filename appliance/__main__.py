"""`python -m appliance`: the same as the `appliance` command."""

import sys

from .cli import main

if __name__ == "__main__":  # not when a fax worker process (multiprocessing "spawn") imports this module
    sys.exit(main())
