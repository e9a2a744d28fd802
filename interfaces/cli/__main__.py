"""``python -m interfaces.cli`` is the ``vigil`` command."""

from interfaces.cli.main import main

main()
