"""python -m worker: the same as `aidline worker`."""

import sys

from service.cli import main

if __name__ == "__main__":
    main(["worker", *sys.argv[1:]])
