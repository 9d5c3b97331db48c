"""`python -m graph` runs the `postassist` command."""

from graph.cli import app

app()
