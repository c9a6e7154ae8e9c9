"""The `publish` command: parse, call the core, map errors to exit codes, render."""
