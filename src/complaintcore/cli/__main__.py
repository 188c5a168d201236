"""`python -m complaintcore.cli`: the command line, as the console script runs it."""

import sys

from complaintcore.cli.main import main

sys.exit(main())
