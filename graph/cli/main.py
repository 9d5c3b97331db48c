"""The `postassist` command: the typer app and its commands, registered in the order
`--help` lists them: `serve`, `worker`, `export-schema` (`serve`), `generate`
(`generate`) and the `keys` group (`keys`)."""

from __future__ import annotations

import typer

from graph.cli.generate import PlainUsageCommand, generate
from graph.cli.keys import keys_app
from graph.cli.serve import export_schema, serve, worker_command

app = typer.Typer(
    help="PostAssist: LinkedIn posts about ML papers, by LangGraph agent teams.",
    no_args_is_help=True,
)
app.command()(serve)
app.command("worker")(worker_command)
app.command("export-schema")(export_schema)
app.command(cls=PlainUsageCommand)(generate)
app.add_typer(keys_app, name="keys")

if __name__ == "__main__":
    app()
