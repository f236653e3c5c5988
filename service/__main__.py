"""``python -m service``: the same as ``scientist serve``."""

from service.cli import main

main()
