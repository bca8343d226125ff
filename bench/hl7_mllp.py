"""HL7 v2 over MLLP on loopback: messages per second through our listener, end to end (parse, convert, encrypt,
append durably to the embedded log, ACK), with one sending client that waits for each ACK (how HIS interfaces send).

    .venv/bin/python bench/hl7_mllp.py [--messages 2000] [--connections 1]

Prints ``hl7_mllp messages=<n> connections=<n> msg_s=<n> p50_ms=<n> p99_ms=<n>``.
The message mix is ADT^A04 (GBK), ORM^O01 (UTF-8, two items) and ORU^R01 (GB18030) in turn.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.crypto import Keyring  # noqa: E402
from pipelines.deadletter import DeadLetterStore  # noqa: E402
from pipelines.hl7.ingest import Hl7Ingest  # noqa: E402
from pipelines.hl7.mllp import END, START, MllpServer, frame  # noqa: E402
from pipelines.hl7.senders import HisSenders  # noqa: E402
from pipelines.mapping.catalog import default_catalog  # noqa: E402
from pipelines.mapping.store import MappingStore  # noqa: E402
from streams.log.sqlite import SqliteLog  # noqa: E402
from streams.topics import create_topics  # noqa: E402
from tests.ingest.hl7_samples import adt_a04, orm_o01, oru_r01  # noqa: E402
from wanying.wiring import make_engine  # noqa: E402


def messages(n: int, offset: int) -> list[bytes]:
    out = []
    for i in range(n):
        k = offset + i
        if k % 3 == 0:
            out.append(adt_a04(control=f"A{k}", charset="GBK", visit=f"V{k}").encode("gbk"))
        elif k % 3 == 1:
            out.append(orm_o01(control=f"O{k}", items=(("CT0401", "胸部+上腹部CT平扫", "CT"),
                                                       ("DR0101", "双膝关节正侧位", "DX"))).encode())
        else:
            out.append(oru_r01(control=f"R{k}", charset="GB 18030-2000").encode("gb18030"))
    return out


async def client(port: int, batch: list[bytes], latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for raw in batch:
        t = time.perf_counter()
        writer.write(frame(raw))
        await writer.drain()
        await reader.readuntil(START)
        ack = await reader.readuntil(END)
        latencies.append(time.perf_counter() - t)
        if b"MSA|AA" not in ack:
            raise SystemExit(f"message refused: {ack[:300]!r}")
    writer.close()
    await writer.wait_closed()


async def run(n: int, connections: int, tmp: Path) -> None:
    log = SqliteLog(tmp / "log.sqlite", fsync="full")
    create_topics(log)
    ingest = Hl7Ingest(log, DeadLetterStore(make_engine(f"sqlite:///{tmp / 'dead.sqlite'}")), Keyring.generate(),
                       HisSenders.load(), MappingStore(make_engine(f"sqlite:///{tmp / 'map.sqlite'}"),
                                                       default_catalog()))
    server = MllpServer(ingest.handle, ingest.dead_letters, port=0)
    port = await server.start()
    per = n // connections
    latencies: list[float] = []
    await client(port, messages(30, 10**6), [])  # warm-up
    start = time.perf_counter()
    await asyncio.gather(*(client(port, messages(per, c * per), latencies) for c in range(connections)))
    elapsed = time.perf_counter() - start
    await server.stop()
    log.close()
    latencies.sort()
    print(f"hl7_mllp messages={per * connections} connections={connections} msg_s={per * connections / elapsed:.0f} "
          f"p50_ms={statistics.median(latencies) * 1000:.2f} p99_ms={latencies[int(len(latencies) * 0.99)] * 1000:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.messages, args.connections, Path(tmp)))


if __name__ == "__main__":
    main()
