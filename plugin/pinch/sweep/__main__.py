import sys

from pinch.sweep.report import main

sys.exit(main())
