import sys

from geodiff.cli import main

sys.exit(main())
