"""``python -m atb.supernet`` (and ``torchrun --nproc_per_node P -m atb.supernet``): train
SuperPLM with Algorithm 1. The flags are ``atb-supernet train``'s (see ``--help``)."""

import sys

from atb.supernet.cli import torchrun_main

if __name__ == "__main__":
    sys.exit(torchrun_main())
