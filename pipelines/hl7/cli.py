"""``wanying hl7 …``: run the MLLP listener, or parse a message file to see what it would become."""
from __future__ import annotations

import asyncio
import json
import logging
import signal
from pathlib import Path

import typer

app = typer.Typer(help="HL7 v2 over MLLP", no_args_is_help=True)


@app.command("listen")
def listen(host: str = typer.Option("127.0.0.1"), port: int = typer.Option(2575)) -> None:
    """Accept HL7 v2 over MLLP until interrupted; events go to the log, refusals to the dead-letter store."""
    from pipelines.hl7.ingest import Hl7Ingest
    from pipelines.hl7.mllp import MllpServer
    from pipelines.hl7.senders import HisSenders
    from pipelines.mapping.catalog import default_catalog
    from pipelines.mapping.store import MappingStore
    from wanying.settings import Settings
    from wanying.wiring import Platform, make_engine

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    platform = Platform(Settings())
    platform.settings.data_dir.mkdir(parents=True, exist_ok=True)
    mappings = MappingStore(make_engine(f"sqlite:///{(platform.settings.data_dir / 'mappings.sqlite').resolve()}"),
                            default_catalog())
    ingest = Hl7Ingest(platform.log, platform.dead_letters, platform.keys, HisSenders.load(), mappings)
    server = MllpServer(ingest.handle, platform.dead_letters, host=host, port=port)

    async def main() -> None:
        bound = await server.start()
        typer.echo(f"MLLP listening on {host}:{bound}")
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop()

    try:
        asyncio.run(main())
    finally:
        typer.echo(json.dumps({"mllp": server.stats, "messages": ingest.counts}))
        platform.close()


@app.command("parse")
def parse_file(path: Path) -> None:
    """Show the segments and character set of an HL7 file as we read it (no personal data is stored)."""
    from pipelines.hl7.message import Hl7Error, parse

    try:
        msg = parse(path.read_bytes())
    except Hl7Error as exc:
        typer.echo(f"refused ({exc.ack} {exc.code} at {exc.location}): {exc.reason}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps({"type": f"{msg.message_type}^{msg.trigger}", "control_id": msg.control_id,
                           "charset": msg.charset, "declared": msg.declared_charset, "notes": msg.notes,
                           "segments": [s.name for s in msg.segments]}, ensure_ascii=False))
