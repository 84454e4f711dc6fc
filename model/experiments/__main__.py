"""Runs `python -m model.experiments` (see `model.experiments.cli`)."""

import sys

from model.experiments.cli import main

sys.exit(main())
