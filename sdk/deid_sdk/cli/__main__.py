"""`python -m deid_sdk.cli ...`: the same as `deid ...`."""
import sys

from deid_sdk.cli import main

sys.exit(main())
