import sys

from photoguard.cli.app import main

sys.exit(main())
