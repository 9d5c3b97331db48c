"""`python -m graph` runs the `postassist` command."""

from graph.cli.main import app

app()
