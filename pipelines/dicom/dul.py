"""A lean DICOM upper layer for a storage SCP (PS3.8): associations, P-DATA, C-STORE and C-ECHO, nothing else.

Why not pynetdicom's server: its reader and association threads poll with 1 ms sleeps and hand every PDU through
queues, which caps one association near 120-150 MB/s on these machines before any storage work is done. A modality
sends one instance at a time and waits for each response, so per-instance latency is throughput. Here one thread per
association reads each PDU straight into one buffer and the dataset reaches the storage path without a copy when it
came in one PDV (the usual case with our 4 MiB maximum PDU). pynetdicom still parses the A-ASSOCIATE-RQ (its PDU
decoder is well tested) and is our SCU for C-FIND/C-MOVE.
"""
from __future__ import annotations

import logging
import socket
import socketserver
import ssl
import struct
import threading
from dataclasses import dataclass
from typing import Callable

from pynetdicom import ALL_TRANSFER_SYNTAXES
from pynetdicom.pdu import A_ASSOCIATE_RQ

log = logging.getLogger(__name__)

APPLICATION_CONTEXT = b"1.2.840.10008.3.1.1.1"
VERIFICATION = "1.2.840.10008.1.1"
STORAGE_PREFIX = "1.2.840.10008.5.1.4.1.1."
DICOM_ROOT = "1.2.840.10008."
IMPLEMENTATION_CLASS_UID = b"1.2.826.0.1.3680043.8.498.10771830981523446931"
IMPLEMENTATION_VERSION = b"WANYING_1"
SUPPORTED_SYNTAXES = frozenset(ALL_TRANSFER_SYNTAXES)
C_STORE_RQ, C_ECHO_RQ = 0x0001, 0x0030
NO_DATASET = 0x0101

# (status, error comment) for one received instance
StoreHandler = Callable[[str, str, str, str, memoryview], "tuple[int, str]"]


class ProtocolError(Exception):
    pass


@dataclass
class UpperLayerConfig:
    ae_title: str
    max_pdu: int = 4 * 1024 * 1024
    network_timeout: float = 60.0
    max_associations: int = 32
    tls: ssl.SSLContext | None = None


def is_storage(abstract_syntax: str) -> bool:
    """Storage SOP classes, including ones newer than this code and private ones (any UID outside the DICOM
    root): a hospital's modality must never be turned away for sending something we do not know yet."""
    return abstract_syntax.startswith(STORAGE_PREFIX) or not abstract_syntax.startswith(DICOM_ROOT)


class StorageServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], config: UpperLayerConfig, on_store: StoreHandler,
                 on_release: Callable[[], object] | None = None) -> None:
        self.config, self.on_store, self.on_release = config, on_store, on_release
        self.slots = threading.BoundedSemaphore(config.max_associations)
        super().__init__(address, _Connection)


class _Connection(socketserver.BaseRequestHandler):
    server: StorageServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(self.server.config.network_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.server.config.tls is not None:
            try:
                sock = self.server.config.tls.wrap_socket(sock, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                log.warning("TLS handshake from %s failed: %s", self.client_address[0], exc)
                return
        if not self.server.slots.acquire(blocking=False):
            _try_send(sock, _rejection(result=2, source=3, reason=2))  # transient: local limit exceeded
            return
        try:
            Association(sock, self.server.config, self.server.on_store, self.server.on_release).run()
        except (ProtocolError, OSError, ValueError) as exc:
            log.warning("association from %s aborted: %s", self.client_address[0], exc)
            _try_send(sock, bytes([0x07, 0, 0, 0, 0, 4, 0, 0, 2, 0]))  # A-ABORT, service provider
        finally:
            self.server.slots.release()


class Association:
    def __init__(self, sock: socket.socket, config: UpperLayerConfig, on_store: StoreHandler,
                 on_release: Callable[[], object] | None = None) -> None:
        self.sock, self.config, self.on_store, self.on_release = sock, config, on_store, on_release
        self.contexts: dict[int, tuple[str, str]] = {}  # id -> (abstract syntax, transfer syntax)
        self.calling_ae = ""
        self.peer_max_pdu = 16384
        self._buf = bytearray(64 * 1024)

    # ------------------------------------------------------------------ reading

    def _recv_exact(self, n: int) -> memoryview:
        if len(self._buf) < n:
            self._buf = bytearray(n)
        view = memoryview(self._buf)[:n]
        got = 0
        while got < n:
            k = self.sock.recv_into(view[got:], n - got)
            if k == 0:
                raise ProtocolError("peer closed the connection")
            got += k
        return view

    def _read_pdu(self) -> tuple[int, memoryview]:
        head = bytes(self._recv_exact(6))
        pdu_type, length = head[0], struct.unpack(">I", head[2:6])[0]
        limit = max(self.config.max_pdu, 65536) + 6 if pdu_type == 0x04 else 1 << 20
        if length > limit:
            raise ProtocolError(f"PDU of {length} bytes is larger than announced ({self.config.max_pdu})")
        if pdu_type == 0x01:
            return pdu_type, memoryview(head + bytes(self._recv_exact(length)))
        return pdu_type, self._recv_exact(length)

    # ------------------------------------------------------------------ association

    def run(self) -> None:
        pdu_type, body = self._read_pdu()
        if pdu_type != 0x01:
            raise ProtocolError(f"expected A-ASSOCIATE-RQ, got PDU type 0x{pdu_type:02X}")
        rq = A_ASSOCIATE_RQ()
        rq.decode(bytes(body))
        called = _text(rq.called_ae_title)
        self.calling_ae = _text(rq.calling_ae_title)
        if called != self.config.ae_title:
            _try_send(self.sock, _rejection(result=1, source=1, reason=7))  # called AE title not recognised
            _await_close(self.sock)
            log.info("association from %s refused: called AE %r is not %r", self.calling_ae, called,
                     self.config.ae_title)
            return
        if rq.user_information is not None and rq.user_information.maximum_length:
            self.peer_max_pdu = rq.user_information.maximum_length
        self.sock.sendall(self._accept(rq))
        commands: dict[int, bytearray] = {}
        datasets: dict[int, bytearray] = {}
        pending: dict[int, dict] = {}
        while True:
            pdu_type, body = self._read_pdu()
            if pdu_type == 0x04:
                self._p_data(body, commands, datasets, pending)
            elif pdu_type == 0x05:
                if self.on_release is not None:
                    self.on_release()  # e.g. make everything received durable before the release is confirmed
                self.sock.sendall(bytes([0x06, 0, 0, 0, 0, 4, 0, 0, 0, 0]))  # A-RELEASE-RP
                _await_close(self.sock)
                return
            elif pdu_type == 0x07:
                return  # A-ABORT from the peer
            else:
                raise ProtocolError(f"unexpected PDU type 0x{pdu_type:02X}")

    def _accept(self, rq: A_ASSOCIATE_RQ) -> bytes:
        items = [_item(0x10, APPLICATION_CONTEXT)]
        for pc in rq.presentation_context:
            abstract = str(pc.abstract_syntax or "")
            proposed = [str(ts) for ts in pc.transfer_syntax]
            chosen = next((ts for ts in proposed if ts in SUPPORTED_SYNTAXES), None)
            if not (abstract == VERIFICATION or is_storage(abstract)):
                result = 3  # abstract syntax not supported
            elif chosen is None:
                result = 4  # transfer syntaxes not supported
            else:
                result = 0
                self.contexts[pc.context_id] = (abstract, chosen)
            ts = (chosen or (proposed[0] if proposed else "1.2.840.10008.1.2")).encode()
            body = bytes([pc.context_id, 0, result, 0]) + _item(0x40, ts)
            items.append(_item(0x21, body))
        user = (_item(0x51, struct.pack(">I", self.config.max_pdu)) + _item(0x52, IMPLEMENTATION_CLASS_UID)
                + _item(0x55, IMPLEMENTATION_VERSION))
        items.append(_item(0x50, user))
        variable = b"".join(items)
        fixed = (struct.pack(">H", 1) + b"\x00\x00" + _ae16(rq.called_ae_title) + _ae16(rq.calling_ae_title)
                 + b"\x00" * 32)
        payload = fixed + variable
        return bytes([0x02, 0]) + struct.pack(">I", len(payload)) + payload

    # ------------------------------------------------------------------ DIMSE

    def _p_data(self, body: memoryview, commands, datasets, pending) -> None:
        pos, end = 0, len(body)
        while pos < end:
            if end - pos < 6:
                raise ProtocolError("truncated PDV item")
            length = struct.unpack_from(">I", body, pos)[0]
            if length < 2 or pos + 4 + length > end:
                raise ProtocolError("PDV item length does not fit its PDU")
            context_id, header = body[pos + 4], body[pos + 5]
            fragment = body[pos + 6:pos + 4 + length]
            pos += 4 + length
            if context_id not in self.contexts:
                raise ProtocolError(f"PDV on presentation context {context_id}, which was not accepted")
            last = bool(header & 0x02)
            if header & 0x01:  # command
                commands.setdefault(context_id, bytearray()).extend(fragment)
                if last:
                    command = _parse_command(commands.pop(context_id))
                    if command.get(0x00000800, NO_DATASET) == NO_DATASET:
                        self._dispatch(context_id, command, memoryview(b""))
                    else:
                        pending[context_id] = command
            else:
                if context_id not in pending:
                    raise ProtocolError("dataset fragment before its command")
                if last and context_id not in datasets:
                    # the whole dataset in one PDV: hand it on without copying
                    self._dispatch(context_id, pending.pop(context_id), fragment)
                    continue
                datasets.setdefault(context_id, bytearray()).extend(fragment)
                if last:
                    self._dispatch(context_id, pending.pop(context_id), memoryview(datasets.pop(context_id)))

    def _dispatch(self, context_id: int, command: dict, dataset: memoryview) -> None:
        field = command.get(0x00000100)
        msg_id = command.get(0x00000110, 0)
        affected_class = command.get(0x00000002, "")
        affected_instance = command.get(0x00001000, "")
        if field == C_ECHO_RQ:
            self._respond(context_id, 0x8030, msg_id, affected_class, None, 0x0000, "")
            return
        if field != C_STORE_RQ:
            self._respond(context_id, (field or 0) | 0x8000, msg_id, affected_class, None, 0x0211,
                          "only C-STORE and C-ECHO are served here")
            return
        _, transfer_syntax = self.contexts[context_id]
        status, comment = self.on_store(self.calling_ae, transfer_syntax, affected_class, affected_instance, dataset)
        self._respond(context_id, 0x8001, msg_id, affected_class, affected_instance, status, comment)

    def _respond(self, context_id: int, field: int, msg_id: int, affected_class: str, affected_instance: str | None,
                 status: int, comment: str) -> None:
        elements = [_element(0x0002, _ui(affected_class)), _element(0x0100, struct.pack("<H", field)),
                    _element(0x0120, struct.pack("<H", msg_id)), _element(0x0800, struct.pack("<H", NO_DATASET)),
                    _element(0x0900, struct.pack("<H", status))]
        if comment:
            text = comment.encode("ascii", "replace")[:64]
            elements.append(_element(0x0902, text + (b" " if len(text) % 2 else b"")))
        if affected_instance:
            elements.append(_element(0x1000, _ui(affected_instance)))
        body = b"".join(elements)
        command = _element(0x0000, struct.pack("<I", len(body))) + body
        pdv = struct.pack(">I", len(command) + 2) + bytes([context_id, 0x03]) + command
        self.sock.sendall(bytes([0x04, 0]) + struct.pack(">I", len(pdv)) + pdv)


def _parse_command(data: bytearray) -> dict[int, object]:
    """A DIMSE command set (implicit VR little endian, group 0000)."""
    out: dict[int, object] = {}
    pos, end = 0, len(data)
    while pos + 8 <= end:
        group, elem, length = struct.unpack_from("<HHI", data, pos)
        pos += 8
        if pos + length > end:
            raise ProtocolError("truncated DIMSE command")
        value = bytes(data[pos:pos + length])
        pos += length
        tag = group << 16 | elem
        if tag in (0x00000100, 0x00000110, 0x00000120, 0x00000700, 0x00000800, 0x00000900) and length == 2:
            out[tag] = struct.unpack("<H", value)[0]
        elif tag in (0x00000002, 0x00001000, 0x00001030):
            out[tag] = value.rstrip(b"\x00 ").decode("ascii", "replace")
    if 0x00000100 not in out:
        raise ProtocolError("DIMSE command without a Command Field")
    return out


def _element(elem: int, value: bytes) -> bytes:
    return struct.pack("<HHI", 0x0000, elem, len(value)) + value


def _ui(uid: str) -> bytes:
    raw = uid.encode("ascii", "replace")
    return raw + b"\x00" if len(raw) % 2 else raw


def _item(item_type: int, body: bytes) -> bytes:
    return bytes([item_type, 0]) + struct.pack(">H", len(body)) + body


def _ae16(value) -> bytes:
    raw = value if isinstance(value, bytes) else str(value).encode("ascii", "replace")
    return raw[:16].ljust(16, b" ")


def _text(value) -> str:
    return (value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)).strip()


def _rejection(*, result: int, source: int, reason: int) -> bytes:
    return bytes([0x03, 0, 0, 0, 0, 4, 0, result, source, reason])


def _await_close(sock: socket.socket, timeout: float = 2.0) -> None:
    """The requestor closes the connection after a rejection or release (PS3.8 ARTIM); closing first can make
    it see a dropped connection instead of our answer."""
    try:
        sock.settimeout(timeout)
        while sock.recv(4096):
            pass
    except OSError:
        pass


def _try_send(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError:
        pass
