"""`python -m scanner` runs the `scan` CLI, for environments (tests, cron) without the console script on PATH."""

from scanner.cli import app

app(prog_name="scan")
