"""The interfaces: the HTTP API (``interfaces.api``) and the ``vigil`` command line
(``interfaces.cli``). The top layer: they may import every package below, nothing imports them.
"""
