"""HL7 over a real MLLP socket on 127.0.0.1: our own client, many messages per connection, partial reads."""
from __future__ import annotations

import asyncio

from pipelines.hl7.mllp import END, START, MllpServer, frame
from tests.ingest.conftest import all_events
from tests.ingest.hl7_samples import adt_a04, encode, orm_o01, oru_r01, zwy


async def _read_acks(reader: asyncio.StreamReader, n: int) -> list[bytes]:
    acks = []
    for _ in range(n):
        await asyncio.wait_for(reader.readuntil(START), 10)
        acks.append((await asyncio.wait_for(reader.readuntil(END), 10))[:-2])
    return acks


def _run(ingest, dead_letters, scenario):
    async def main():
        server = MllpServer(ingest.handle, dead_letters, host="127.0.0.1", port=0)
        port = await server.start()
        try:
            return await scenario(port), server.stats
        finally:
            await server.stop()

    return asyncio.run(main())


def test_many_messages_one_connection_partial_writes(hl7_ingest, dead_letters, event_log):
    messages = [encode(adt_a04(control="M1", charset="GBK"), "GBK"),
                encode(orm_o01(control="M2"), "UNICODE UTF-8"),
                encode(oru_r01(control="M3", charset="GB 18030-2000"), "GB 18030-2000"),
                encode(zwy(control="M4"), "UNICODE UTF-8"),
                adt_a04(control="M5", facility="UNKNOWN").encode()]
    stream = b"".join(frame(m) for m in messages)

    async def scenario(port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for i in range(0, len(stream), 7):  # 7-byte writes: frames and multi-byte characters cut everywhere
            writer.write(stream[i:i + 7])
            await writer.drain()
        acks = await _read_acks(reader, len(messages))
        writer.close()
        await writer.wait_closed()
        return acks

    acks, stats = _run(hl7_ingest, dead_letters, scenario)
    codes = [a.split(b"\rMSA|")[1][:2] for a in acks]
    assert codes == [b"AA", b"AA", b"AA", b"AA", b"AR"]
    assert [a.split(b"\rMSA|")[1].split(b"|")[1].rstrip(b"\r") for a in acks] == [b"M1", b"M2", b"M3", b"M4", b"M5"]
    assert b"\rERR||MSH^1^4|103^" in acks[4]
    assert stats == {"connections": 1, "messages": 5, "framing_rejects": 0}
    types = sorted(e.type for e in all_events(event_log))
    assert types == ["ExamCodeMapped", "ExamItemsResolved", "ExamOrdered", "PatientOpened", "ReportFinalized",
                     "VisitStarted"]
    [letter] = dead_letters.list()
    assert letter.body == messages[4] and "not registered" in letter.reason


def test_framing_errors_are_kept_and_answered(hl7_ingest, dead_letters, event_log):
    good = adt_a04(control="G1").encode()
    cut = orm_o01(control="CUT").encode()[:60]

    async def scenario(port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        # noise, a frame cut by a new start block, a good frame, then a frame the connection never finishes
        writer.write(b"GARBAGE-BEFORE-FRAME" + START + cut + frame(good) + START + b"MSH|^~\\&|half")
        await writer.drain()
        acks = await _read_acks(reader, 2)
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.2)
        return acks

    acks, stats = _run(hl7_ingest, dead_letters, scenario)
    assert b"MSA|AR" in acks[0] and b"0x1C 0x0D" in acks[0]
    assert b"MSA|AA|G1" in acks[1]
    bodies = sorted(d.body for d in dead_letters.list())
    assert bodies == sorted([b"GARBAGE-BEFORE-FRAME", START + cut, START + b"MSH|^~\\&|half"])
    assert stats["framing_rejects"] == 3 and [e.type for e in all_events(event_log)] == ["VisitStarted"]


def test_parallel_connections(hl7_ingest, dead_letters, event_log):
    async def one(port, n):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for k in range(5):
            writer.write(frame(adt_a04(control=f"C{n}-{k}", visit=f"V{n}-{k}").encode()))
        await writer.drain()
        acks = await _read_acks(reader, 5)
        writer.close()
        await writer.wait_closed()
        return acks

    async def scenario(port):
        return await asyncio.gather(*(one(port, n) for n in range(4)))

    results, stats = _run(hl7_ingest, dead_letters, scenario)
    assert all(b"MSA|AA" in a for acks in results for a in acks)
    assert len(all_events(event_log)) == 20 and stats["connections"] == 4


def test_listener_command_end_to_end(tmp_path):
    """`hl7 listen` as its own process on 127.0.0.1: a GBK message in, AA back, the event on the log."""
    import os
    import socket
    import subprocess
    import sys
    import time

    from streams.log.sqlite import SqliteLog

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "WANYING_DATA_DIR": str(tmp_path / "data"), "WANYING_LOG_FSYNC": "off"}
    proc = subprocess.Popen([sys.executable, "-c", "from pipelines.hl7.cli import app; app()", "listen",
                             "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90  # the CLI imports the whole platform
        while True:
            try:
                conn = socket.create_connection(("127.0.0.1", port), timeout=1)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"listener did not start: {proc.communicate(timeout=10)[0][-2000:]!r}")
                time.sleep(0.1)
        with conn:
            conn.sendall(frame(encode(adt_a04(control="E2E", charset="GBK"), "GBK")))
            reply = b""
            while not reply.endswith(END):
                chunk = conn.recv(4096)
                assert chunk, "connection closed before the ACK"
                reply += chunk
        assert b"MSA|AA|E2E" in reply
    finally:
        proc.terminate()
        out = proc.communicate(timeout=20)[0]
    assert b'"accepted": 1' in out  # stopped cleanly on SIGTERM and reported its counts
    log = SqliteLog(tmp_path / "data" / "log.sqlite")
    try:
        assert log.count("person") == 1
    finally:
        log.close()
