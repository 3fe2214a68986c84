"""``python -m krakenws.cli``."""

import sys

from krakenws.cli import main

if __name__ == "__main__":
    sys.exit(main())
