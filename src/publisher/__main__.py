"""`python -m publisher` runs the CLI."""

from publisher.cli.app import main

main()
