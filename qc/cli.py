"""Operator commands for qc (registered as `wanying qc ...`)."""
from __future__ import annotations

import typer

app = typer.Typer(help="qc commands", no_args_is_help=True)
