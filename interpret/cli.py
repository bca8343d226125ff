"""Operator commands for interpret (registered as `wanying interpret ...`)."""
from __future__ import annotations

import typer

app = typer.Typer(help="interpret commands", no_args_is_help=True)
