import sys

from pingcheck.cli import main

sys.exit(main())
