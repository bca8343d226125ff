"""Seeded fuzzing of the HL7 parser, the ingest (ACK/NAK + dead letters) and MLLP framing."""
from __future__ import annotations

import asyncio
import hashlib
import random
from collections import Counter

from hypothesis import given, settings, strategies as st

from pipelines.hl7.message import Hl7Error, parse
from pipelines.hl7.mllp import END, START, MllpFramer, MllpServer, frame
from tests.ingest.hl7_samples import adt_a04, encode, orm_o01, oru_r01, zwy

SEED = 20261128
SPECIALS = [b"|", b"^", b"~", b"\\", b"&", b"\r", b"\n", b"\x0b", b"\x1c", b"\xff", b"\x81", "张".encode("gbk"),
            "张".encode(), b"\\X4\\", b"\\", b"MSH|", b"PID|", b"\x00"]


def _bases() -> list[bytes]:
    return [encode(adt_a04(charset="GBK"), "GBK"), adt_a04().encode(), orm_o01().encode("utf-8"),
            encode(oru_r01(charset="GB 18030-2000"), "GB 18030-2000"), zwy().encode(),
            orm_o01(items=(("A1", "双膝关节正侧位", "DX"), ("B2", "头颅+胸部CT", "CT"))).encode()]


def mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        pos = rng.randrange(len(b) + 1) if b else 0
        if op == 0 and b:  # flip a byte
            b[min(pos, len(b) - 1)] = rng.randrange(256)
        elif op == 1:  # insert a special token
            b[pos:pos] = rng.choice(SPECIALS)
        elif op == 2 and b:  # delete a run
            del b[pos:pos + rng.randint(1, 30)]
        elif op == 3 and b:  # duplicate a run
            b[pos:pos] = b[pos:pos + rng.randint(1, 60)]
        elif op == 4:  # truncate
            del b[pos:]
        elif op == 5:  # random bytes
            b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 12)))
        elif op == 6 and b"\r" in b:  # swap two segments
            segs = bytes(b).split(b"\r")
            i, j = rng.randrange(len(segs)), rng.randrange(len(segs))
            segs[i], segs[j] = segs[j], segs[i]
            b = bytearray(b"\r".join(segs))
    return bytes(b)


def test_parser_never_crashes_on_mutations():
    rng = random.Random(SEED)
    bases = _bases()
    outcomes = Counter()
    for _ in range(5000):
        raw = mutate(rng, rng.choice(bases))
        try:
            parse(raw)
            outcomes["parsed"] += 1
        except Hl7Error as exc:
            assert exc.reason and exc.ack in ("AE", "AR")
            outcomes["rejected"] += 1
    print(f"hl7_fuzz parser n=5000 parsed={outcomes['parsed']} rejected={outcomes['rejected']}")
    assert outcomes["parsed"] > 500 and outcomes["rejected"] > 500  # the mutations reach both paths


def test_ingest_answers_every_mutation_and_keeps_every_reject(hl7_ingest, dead_letters):
    rng = random.Random(SEED + 1)
    bases = _bases()
    rejected: Counter = Counter()
    n = 2000
    for _ in range(n):
        raw = mutate(rng, rng.choice(bases))
        ack = hl7_ingest.handle(raw, "fuzz")
        codec = "gb18030" if b"GB" in raw[:200] else "utf-8"
        msa = next(line for line in ack.decode(codec, errors="replace").split("\r") if line.startswith("MSA"))
        code = msa.split("|")[1]
        assert code in ("AA", "AE", "AR")
        if code != "AA":
            assert len(msa.split("|")) >= 4 and msa.split("|")[3], "a NAK must say why"
            rejected[hashlib.sha256(raw).hexdigest()] += 1
    kept = Counter(d.sha256 for d in dead_letters.list(limit=n))
    print(f"hl7_fuzz ingest n={n} accepted={hl7_ingest.counts['accepted']} rejected={sum(rejected.values())} "
          f"internal_errors={hl7_ingest.counts['errors']} dead_letters={sum(kept.values())}")
    assert kept == rejected
    assert all(dead_letters.get(d.id).body for d in dead_letters.list(limit=50))
    assert hl7_ingest.counts["errors"] == 0  # every reject had a reason, none was a bug
    assert hl7_ingest.counts["accepted"] > 100


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.lists(st.one_of(
    st.binary(min_size=0, max_size=80).map(lambda b: ("msg", b.replace(START, b"").replace(b"\x1c", b""))),
    st.binary(min_size=1, max_size=20).map(lambda b: ("raw", b))), max_size=12),
    st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=30))
def test_framer_accounts_for_every_byte(parts, cuts):
    stream = b"".join(frame(b) if kind == "msg" else b for kind, b in parts)
    framer = MllpFramer(max_frame=200)
    pieces, i, k = [], 0, 0
    while i < len(stream):
        step = cuts[k % len(cuts)]
        pieces += framer.feed(stream[i:i + step])
        i, k = i + step, k + 1
    pieces += framer.close()
    rebuilt = b"".join(START + p.data + END if p.kind == "message" else p.data for p in pieces)
    assert rebuilt == stream
    clean = [b for kind, b in parts if kind == "msg"]
    if all(kind == "msg" for kind, _ in parts):
        assert [p.data for p in pieces if p.kind == "message"] == clean


def test_mllp_socket_survives_fuzzed_frames(hl7_ingest, dead_letters):
    rng = random.Random(SEED + 2)
    bases = _bases()
    frames = [frame(mutate(rng, rng.choice(bases)).replace(START, b"").replace(END, b"")) for _ in range(300)]

    async def main():
        server = MllpServer(hl7_ingest.handle, dead_letters, port=0)
        port = await server.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"".join(frames))
            await writer.drain()
            acks = []
            for _ in frames:
                await asyncio.wait_for(reader.readuntil(START), 20)
                acks.append(await asyncio.wait_for(reader.readuntil(END), 20))
            writer.write(frame(adt_a04(control="AFTER").encode()))
            await writer.drain()
            await asyncio.wait_for(reader.readuntil(START), 10)
            last = await asyncio.wait_for(reader.readuntil(END), 10)
            writer.close()
            await writer.wait_closed()
            return acks, last
        finally:
            await server.stop()

    acks, last = asyncio.run(main())
    assert len(acks) == 300 and b"MSA|AA|AFTER" in last
    nak = sum(1 for a in acks if b"MSA|AA" not in a)
    assert len(dead_letters.list(limit=1000)) == nak
