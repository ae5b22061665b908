"""``python -m rnnlab``: the ``rnnlab`` command (also ``torchrun -m rnnlab``)."""

import sys

from rnnlab.cli import main

sys.exit(main())
