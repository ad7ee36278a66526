"""`python -m simulated_site`: see simulated_site/command.py."""
import sys

from simulated_site.command import main

sys.exit(main())
