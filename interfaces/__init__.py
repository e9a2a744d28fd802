"""The interfaces: the HTTP API (``interfaces.api``), the ``vigil`` command line
(``interfaces.cli``) and the development services it starts (``interfaces.devservices``). The top
layer: they may import every package below, nothing imports them.
"""
