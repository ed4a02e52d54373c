import sys

from localstudio.cli import main

sys.exit(main())
