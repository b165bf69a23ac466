"""Commands of the ``ips-impact`` command line, one module per command.

Every module here defines ``register(subparsers)``; :mod:`ips_impact.cli` finds them
(see its docstring for the convention and the exit codes).
"""
