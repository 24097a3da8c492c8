"""`python -m rsviz`."""

import sys

from rsviz.cli import main

if __name__ == "__main__":
    sys.exit(main())
