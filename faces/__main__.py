"""`python -m faces ...` is `faces ...` (how the stack starts its worker processes)."""

from faces.ops.cli import main

main()
