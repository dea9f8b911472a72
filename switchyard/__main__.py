"""``python -m switchyard``: the command-line client (see ``switchyard.cli``)."""

import sys

from switchyard.cli import main

sys.exit(main())
