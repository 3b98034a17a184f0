"""Let ``python -m riposte`` run the CLI, as the ``riposte`` entry point does."""

from riposte.cli import app

app(prog_name="riposte")
