"""Allow `python -m mailwire`."""

from mailwire.cli.main import main

main()
