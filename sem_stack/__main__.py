"""Entry point for ``python -m sem_stack``."""

import sys

from sem_stack.cli import main

sys.exit(main())
