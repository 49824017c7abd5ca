"""``python -m keelwatch``: the command line."""

from keelwatch.cli import main

raise SystemExit(main())
