import sys

from studiorunner_cli.main import main

sys.exit(main())
