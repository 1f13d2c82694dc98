"""`python -m appliance` runs the doorward command line."""

import sys

from appliance.cli import main

sys.exit(main())
