"""``python -m rnnlab.cli``: the ``rnnlab`` command (used under ``torchrun -m rnnlab.cli``)."""

import sys

from rnnlab.cli import main

sys.exit(main())
