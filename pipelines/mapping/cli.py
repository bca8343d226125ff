"""``wanying mapping …``: review the queue, accept suggestions, import and export mapping tables."""
from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="Exam-code mapping (local codes -> standard items)", no_args_is_help=True)

DB_OPTION = typer.Option(None, "--db", help="SQLAlchemy URL of the mapping tables (default: data_dir/mappings.sqlite)")


def _store(db: str | None):
    from pipelines.mapping.catalog import default_catalog
    from pipelines.mapping.store import MappingStore
    from wanying.settings import Settings
    from wanying.wiring import make_engine

    if db is None:
        db = Settings().resolved_mappings_url()
    return MappingStore(make_engine(db), default_catalog())


def _publish(events) -> None:
    if not events:
        return
    from streams.topics import publish
    from wanying.settings import Settings
    from wanying.wiring import Platform

    platform = Platform(Settings())
    try:
        publish(platform.log, events)
    finally:
        platform.close()


@app.command("review")
def review(hospital: str = typer.Option(None), status: str = typer.Option("pending", help="pending | auto | confirmed"),
           db: str = DB_OPTION) -> None:
    """Codes waiting for review (or in another status), one JSON line each, with ranked suggestions."""
    for m in _store(db).list(hospital=hospital, status=status):
        typer.echo(json.dumps({"hospital": m.hospital, "local_code": m.local_code, "local_name": m.local_name,
                               "status": m.status, "items": m.items, "reason": m.reason, "seen": m.seen_count,
                               "suggestions": [{"rank": i, "code": s[0], "name": s[1], "score": s[2]}
                                               for i, s in enumerate(m.suggestions, 1)]}, ensure_ascii=False))


@app.command("accept")
def accept(hospital: str, local_code: str,
           items: str = typer.Option(None, help="standard item codes, ';'-separated (default: a suggestion)"),
           suggestion: int = typer.Option(1, help="which suggestion to take when --items is not given"),
           actor: str = typer.Option("operator"), db: str = DB_OPTION) -> None:
    """Confirm a mapping; records an ExamCodeMapped event."""
    from pipelines.mapping.store import MappingError

    chosen = [i.strip() for i in items.split(";") if i.strip()] if items else None
    try:
        events = _store(db).accept(hospital, local_code, items=chosen, suggestion=suggestion, actor=actor)
    except MappingError as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(2) from None
    _publish(events)
    typer.echo(f"{hospital} {local_code} -> {';'.join(events[-1].payload['standard_items'])}")


@app.command("import")
def import_file(path: Path, actor: str = typer.Option("operator"), db: str = DB_OPTION) -> None:
    """Import a CSV or .xlsx table (hospital, local_code, local_name, standard_items); bad lines are listed."""
    from pipelines.mapping.files import read_rows

    events, errors = _store(db).import_rows(read_rows(path), actor=actor)
    _publish(events)
    for e in errors:
        typer.echo(e, err=True)
    typer.echo(f"imported: {len(events)} events, {len(errors)} rejected lines")
    if errors:
        raise typer.Exit(1)


@app.command("export")
def export_file(path: Path, hospital: str = typer.Option(None), db: str = DB_OPTION) -> None:
    """Write the mapping table (every status) to CSV or .xlsx."""
    from pipelines.mapping.files import write_rows

    rows = _store(db).list(hospital=hospital, limit=1_000_000)
    write_rows(path, rows)
    typer.echo(f"exported {len(rows)} mappings to {path}")


@app.command("parse")
def parse(name: str) -> None:
    """Show how a local item name is parsed, split and mapped, with suggestions."""
    from pipelines.mapping.catalog import default_catalog
    from pipelines.mapping.resolve import ItemResolver
    from pipelines.mapping.suggest import suggest

    catalog = default_catalog()
    res = ItemResolver(catalog).resolve(name)
    typer.echo(json.dumps({"normalized": res.parsed.normalized, "targets": [t.__dict__ for t in res.parsed.targets],
                           "items": res.items, "problems": res.problems, "defaults": res.defaults,
                           "suggestions": [s.__dict__ for s in suggest(name, catalog)]}, ensure_ascii=False))


@app.command("rebuild")
def rebuild(db: str = DB_OPTION) -> None:
    """Rebuild the mapping tables from the log: mapping events (key = hospital, so per-hospital order holds) and
    the orders waiting for their codes (ExamOrdered)."""
    from wanying.settings import Settings
    from wanying.wiring import Platform

    store = _store(db)
    platform = Platform(Settings())
    applied = 0
    try:
        log = platform.log
        for topic in ("directory", "person"):
            for partition in range(log.partitions(topic)):
                offset = 0
                while batch := log.read(topic, partition, offset, 1000):
                    for record in batch:
                        envelope = record.envelope()
                        if envelope.type.startswith("ExamCode") or envelope.type == "ExamOrdered":
                            store.apply(envelope)
                            applied += 1
                    offset = batch[-1].offset + 1
    finally:
        platform.close()
    typer.echo(f"rebuilt the mapping table from {applied} events")
