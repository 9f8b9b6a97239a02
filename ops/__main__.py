"""`python -m faces.ops ...` is `faces ...`."""

from faces.ops.cli import main

main()
