"""The C-STORE SCP: hospitals' PACS and modalities push instances to us over DIMSE.

- Every storage SOP class (private ones too) and every transfer syntax pynetdicom knows is accepted as proposed;
  the dataset is stored exactly as it came off the wire (see :mod:`pipelines.dicom.parse` for what that means).
- The calling AE title says which hospital is sending (:mod:`pipelines.dicom.peers`). An unknown AE may open an
  association (so that what it sends is kept and can be replayed once the hospital is registered), but every
  C-STORE it makes is refused with status 0x0124 and an ErrorComment, and the bytes go to the dead-letter store.
- Bad instances are refused with a DIMSE failure status and an ErrorComment; no input can stop the server.

Durability. The success status is sent once the object is written (atomic rename) and indexed. With an object
store in ``fsync="each"`` mode the object is also fsynced first (strict: nothing acknowledged can be lost, about
2-4 ms per instance here). In ``fsync="batch"`` mode (the default of `wanying dicom scp`) a flusher thread
fsyncs what was written every ``sync_interval`` seconds, and an association's A-RELEASE is confirmed only after
everything it sent is on disk: a power cut can lose at most the last ``sync_interval`` of a transfer the sender has
not seen completed, and no process crash loses anything (the page cache survives it). Events are appended to the
log by the index's outbox right after the status (see :mod:`pipelines.dicom.outbox`).
"""
from __future__ import annotations

import logging
import ssl
import sys
import threading
from dataclasses import dataclass, field

from pipelines.dicom.dul import StorageServer, UpperLayerConfig
from pipelines.dicom.ingest import DicomIngest, wrap_for_replay
from pipelines.dicom.parse import STATUS_OUT_OF_RESOURCES, STATUS_REFUSED_NOT_AUTHORISED, DicomRejected
from pipelines.dicom.peers import PeerRegistry

log = logging.getLogger(__name__)
STATUS_SUCCESS = 0x0000


@dataclass
class ScpConfig:
    ae_title: str = "WANYING"
    host: str = "127.0.0.1"
    port: int = 11112
    peers: PeerRegistry = field(default_factory=PeerRegistry.load)
    tls: ssl.SSLContext | None = None
    max_pdu: int = 4 * 1024 * 1024  # large PDUs: one PDV per instance, fewer system calls
    network_timeout: float = 60.0
    max_associations: int = 32
    sync_interval: float = 0.05


class StoreScp:
    def __init__(self, ingest: DicomIngest, config: ScpConfig) -> None:
        self.ingest, self.config = ingest, config
        self._server: StorageServer | None = None
        self._thread: threading.Thread | None = None
        self.port = config.port

    def _make_server(self) -> StorageServer:
        upper = UpperLayerConfig(ae_title=self.config.ae_title, max_pdu=self.config.max_pdu,
                                 network_timeout=self.config.network_timeout,
                                 max_associations=self.config.max_associations, tls=self.config.tls)
        return StorageServer((self.config.host, self.config.port), upper, self.store,
                             lambda: self.ingest.store.sync(precise=True))

    def start(self) -> int:
        """Listen in a background thread; returns the port (useful with ``port=0``)."""
        self._server = self._make_server()
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="dicom-scp", daemon=True)
        self._thread.start()
        self._start_background()
        log.info("C-STORE SCP %s listening on %s:%s", self.config.ae_title, self.config.host, self.port)
        return self.port

    def serve_forever(self) -> None:
        self._server = self._make_server()
        self.port = self._server.server_address[1]
        self._start_background()
        try:
            self._server.serve_forever()
        finally:
            self.stop()

    def _start_background(self) -> None:
        # A sender waits for each status, so the thread reading its association must get the GIL back quickly
        # from the outbox and flusher threads: 1 ms instead of Python's default 5 ms switch interval.
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
        self.ingest.start_background_events()
        self._stop_flush = threading.Event()

        def flush() -> None:
            while not self._stop_flush.wait(self.config.sync_interval):
                try:
                    self.ingest.store.sync()
                except OSError:
                    log.exception("fsync of received objects failed")

        self._flusher = threading.Thread(target=flush, name="dicom-fsync", daemon=True)
        self._flusher.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            self._stop_flush.set()
            self._flusher.join(10)
            self.ingest.store.sync()
            self.ingest.stop_background_events()

    # ------------------------------------------------------------------ the handler

    def store(self, calling_ae: str, ts: str, class_uid: str, sop_uid: str, raw: memoryview) -> tuple[int, str]:
        """One C-STORE: returns the DIMSE status and error comment for the sender."""
        hospital = self.config.peers.hospital_of(calling_ae)
        try:
            if hospital is None:
                exc = DicomRejected(
                    f"calling AE title {calling_ae!r} is not registered for any hospital; ask the exchange to add "
                    f"it (the instance is kept and will be replayed)", STATUS_REFUSED_NOT_AUTHORISED)
                self.ingest.reject(exc, wrap_for_replay(raw, class_uid, sop_uid, ts), None, calling_ae)
                return exc.status, exc.reason
            self.ingest.receive_dataset(raw, ts, hospital=hospital, source_ae=calling_ae,
                                        sop_class_uid=class_uid, sop_uid=sop_uid)
            return STATUS_SUCCESS, ""
        except DicomRejected as exc:
            return exc.status, exc.reason
        except Exception as exc:  # storage or index down: the sender must retry; keep the bytes if we can
            log.exception("C-STORE from %s failed", calling_ae)
            try:
                self.ingest.reject(DicomRejected(f"internal error {type(exc).__name__}: {exc}",
                                                 STATUS_OUT_OF_RESOURCES), wrap_for_replay(raw, class_uid, sop_uid, ts),
                                   hospital, calling_ae)
            except Exception:
                log.exception("dead-letter store unavailable too")
            return STATUS_OUT_OF_RESOURCES, f"temporary failure storing; retry later ({type(exc).__name__})"
