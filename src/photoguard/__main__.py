import sys

from photoguard.cli import main

sys.exit(main())
