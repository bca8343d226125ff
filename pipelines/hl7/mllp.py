"""MLLP (HL7 minimal lower layer protocol) over TCP: 0x0B, message, 0x1C 0x0D; many messages per connection.

The framer is pure and handles partial reads; the asyncio server answers each message with the ACK its handler
builds and keeps every byte that is not a well-formed frame in the dead-letter store.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Callable

from pipelines.deadletter import DeadLetterStore
from pipelines.hl7.ack import build_ack
from pipelines.hl7.message import Hl7Error

START, END = b"\x0b", b"\x1c\x0d"
MAX_FRAME_BYTES = 8_000_000
log = logging.getLogger(__name__)


def frame(message: bytes) -> bytes:
    return START + message + END


@dataclass
class Piece:
    kind: str  # message | junk (bytes between frames) | noise (only whitespace there) | broken | overflow
    data: bytes


@dataclass
class MllpFramer:
    max_frame: int = MAX_FRAME_BYTES
    _buf: bytearray = field(default_factory=bytearray)
    _junk: bytearray = field(default_factory=bytearray)
    _in_frame: bool = False

    def feed(self, data: bytes) -> list[Piece]:
        self._buf += data
        out: list[Piece] = []
        while True:
            if not self._in_frame:
                start = self._buf.find(START)
                if start < 0:
                    self._junk += self._buf
                    self._buf.clear()
                    if len(self._junk) > self.max_frame:
                        out.append(Piece("junk", bytes(self._junk)))
                        self._junk.clear()
                    return out
                self._junk += self._buf[:start]
                self._flush_junk(out)
                del self._buf[:start + 1]
                self._in_frame = True
            end = self._buf.find(END)
            restart = self._buf.find(START)
            if restart >= 0 and (end < 0 or restart < end):
                out.append(Piece("broken", bytes(START + self._buf[:restart])))
                del self._buf[:restart + 1]
                continue
            if end < 0:
                if len(self._buf) > self.max_frame:
                    out.append(Piece("overflow", bytes(START + self._buf)))
                    self._buf.clear()
                    self._in_frame = False
                return out
            out.append(Piece("message", bytes(self._buf[:end])))
            del self._buf[:end + len(END)]
            self._in_frame = False

    def close(self) -> list[Piece]:
        """What is left when the connection ends: a cut-off frame or stray bytes."""
        out: list[Piece] = []
        if self._in_frame:
            out.append(Piece("broken", bytes(START + self._buf)))
        else:
            self._junk += self._buf
        self._flush_junk(out)
        self._buf.clear()
        self._in_frame = False
        return out

    def _flush_junk(self, out: list[Piece]) -> None:
        if self._junk:  # whitespace between frames (many senders add CR LF) is not worth a letter
            out.append(Piece("junk" if self._junk.strip(b"\r\n\t \x00") else "noise", bytes(self._junk)))
        self._junk.clear()


REASONS = {
    "junk": "MLLP: bytes outside a frame (each message must be 0x0B + message + 0x1C 0x0D)",
    "broken": "MLLP: frame not terminated by 0x1C 0x0D before the next 0x0B or the end of the connection",
    "overflow": f"MLLP: frame larger than {MAX_FRAME_BYTES} bytes without an end block",
}


class MllpServer:
    """``handler(message bytes, peer) -> ACK bytes`` must never raise (see :meth:`Hl7Ingest.handle`)."""

    def __init__(self, handler: Callable[[bytes, str], bytes], dead_letters: DeadLetterStore, *,
                 host: str = "127.0.0.1", port: int = 0, idle_timeout: float = 600.0,
                 max_frame: int = MAX_FRAME_BYTES, channel: str = "hl7") -> None:
        self.handler, self.dead_letters = handler, dead_letters
        self.host, self.port, self.idle_timeout, self.max_frame = host, port, idle_timeout, max_frame
        self.channel = channel
        self.stats = {"connections": 0, "messages": 0, "framing_rejects": 0}
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[asyncio.Task] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, limit=1 << 20)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, let open connections finish for ``grace`` seconds, then close them."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        pending = {t for t in self._connections if not t.done()}
        if pending:
            _done, pending = await asyncio.wait(pending, timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        async with self._server:
            await self._server.serve_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer_info = writer.get_extra_info("peername")
        peer = f"{peer_info[0]}:{peer_info[1]}" if peer_info else "unknown"
        self.stats["connections"] += 1
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)
        framer = MllpFramer(self.max_frame)
        try:
            while True:
                try:
                    data = await asyncio.wait_for(reader.read(1 << 16), self.idle_timeout)
                except asyncio.TimeoutError:
                    break
                if not data:
                    break
                for piece in framer.feed(data):
                    await self._dispatch(piece, peer, writer)
        except (ConnectionError, OSError) as exc:
            log.info("MLLP connection %s ended: %s", peer, exc)
        except Exception:  # noqa: BLE001 - one bad connection must not stop the listener
            log.exception("MLLP connection %s failed", peer)
        finally:
            for piece in framer.close():
                if piece.kind != "noise":
                    await asyncio.to_thread(self._keep, piece, peer)
            try:
                writer.close()
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass

    async def _dispatch(self, piece: Piece, peer: str, writer: asyncio.StreamWriter) -> None:
        if piece.kind == "noise":
            return
        if piece.kind == "message":
            self.stats["messages"] += 1
            ack = await asyncio.to_thread(self.handler, piece.data, peer)
        else:
            await asyncio.to_thread(self._keep, piece, peer)
            if piece.kind == "junk":
                return  # nothing to acknowledge
            ack = build_ack(None, "AR", control_id="", error=Hl7Error(REASONS[piece.kind], ack="AR", code="100"))
        writer.write(frame(ack))
        await writer.drain()

    def _keep(self, piece: Piece, peer: str) -> None:
        self.stats["framing_rejects"] += 1
        try:
            self.dead_letters.put(channel=self.channel, source=peer, reason=REASONS[piece.kind], body=piece.data)
        except Exception:  # noqa: BLE001
            log.exception("dead-letter store failed for MLLP bytes from %s", peer)
