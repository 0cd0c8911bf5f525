"""``python -m ocsps``: the same as the ``ocsps`` command."""

from ocsps.cli import main

main()
