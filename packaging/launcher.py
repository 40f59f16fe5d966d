"""The bundle's entry point: the same `main` that the `foi-desktop` console script runs."""

import sys

from foi_desktop.app import main

if __name__ == "__main__":
    sys.exit(main())
