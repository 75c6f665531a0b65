"""``python -m recon``: the same as the ``recon`` command."""

from .cli import main

main()
