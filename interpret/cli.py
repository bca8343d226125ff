"""Operator commands for interpret (registered as `wanying interpret ...`)."""
from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="interpret commands", no_args_is_help=True)


@app.command("mark")
def mark_command(file: Path = typer.Argument(..., exists=True, dir_okay=False, help="UTF-8 report text")) -> None:
    """Print the glossary terms found in a report, one JSON line per span."""
    from interpret.marking import mark

    text = file.read_text(encoding="utf-8-sig")
    for span in mark(text):
        typer.echo(json.dumps(span.to_dict(), ensure_ascii=False))


@app.command("ocr")
def ocr_command(
    image: Path = typer.Argument(..., exists=True, dir_okay=False, help="photo or scan of a report"),
) -> None:
    """Print the text read from a photographed report, lines in reading order."""
    from interpret.ocr import read_report

    try:
        typer.echo(read_report(image.read_bytes()))
    except ValueError as error:
        typer.echo(f"无法识别图片：{error}", err=True)
        raise typer.Exit(2) from None
