"""``python -m workers`` is the ``vigil`` command."""

from workers.cli import main

main()
