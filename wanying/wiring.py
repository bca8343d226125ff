"""Build the platform's parts from settings. The only place that chooses adapters."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipelines.crypto import Keyring
from pipelines.deadletter import DeadLetterStore
from pipelines.intake import EventIntake
from streams.log.port import EventLog
from schemas.recognition_rules import RuleSet, default_rules, load_rules
from streams.processors import build_all
from streams.topics import all_topics, create_topics
from streams.views.projector import Projector
from wanying.settings import Settings


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _wal(dbapi_conn, _record):  # readers never block the projector's writer
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
            dbapi_conn.execute("PRAGMA synchronous=NORMAL")

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def make_log(settings: Settings) -> EventLog:
    if settings.log_backend == "kafka":
        from streams.log.kafka import KafkaLog

        return KafkaLog(settings.kafka_bootstrap, prefix=settings.kafka_topic_prefix)
    from streams.log.sqlite import SqliteLog

    return SqliteLog(settings.log_path, fsync=settings.log_fsync)


@dataclass
class Platform:
    settings: Settings
    _closers: list = field(default_factory=list)

    def on_close(self, stop) -> None:
        """Register a background part (a tailer, a worker) to stop before the log and databases close."""
        self._closers.append(stop)

    @cached_property
    def log(self) -> EventLog:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        log = make_log(self.settings)
        create_topics(log)
        return log

    @cached_property
    def views_engine(self) -> Engine:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        return make_engine(self.settings.resolved_views_url())

    @cached_property
    def rules(self) -> RuleSet:
        """The recognition rules in force: the operator's file when configured, else the packaged defaults."""
        path = self.settings.recognition_rules_file
        return load_rules(path) if path else default_rules()

    @cached_property
    def projector(self) -> Projector:
        projector = Projector(self.views_engine, build_all(self.rules))
        projector.create()
        return projector

    @cached_property
    def dead_letters(self) -> DeadLetterStore:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        return DeadLetterStore(make_engine(self.settings.resolved_deadletter_url()))

    @cached_property
    def keys(self) -> Keyring:
        return Keyring.load_or_create(self.settings.resolved_keys_file())

    @cached_property
    def intake(self) -> EventIntake:
        return EventIntake(self.log, self.dead_letters)

    @cached_property
    def dicom_store(self):
        from pipelines.storage.objects import open_store

        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        return open_store(self.settings.dicom_store_url or str(self.settings.data_dir.resolve() / "objects"),
                          fsync=self.settings.dicom_fsync)

    @cached_property
    def dicom_index(self):
        from pipelines.storage.index import InstanceIndex

        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        url = self.settings.dicom_index_url or f"sqlite:///{(self.settings.data_dir / 'dicom-index.sqlite').resolve()}"
        return InstanceIndex(make_engine(url))

    @cached_property
    def dicom_ingest(self):
        """The one DICOM ingest path (C-STORE, pull, STOW-RS) with events on this platform's log."""
        from pipelines.dicom.ingest import DicomIngest
        from streams.topics import publish

        return DicomIngest(store=self.dicom_store, index=self.dicom_index, dead_letters=self.dead_letters,
                           keys=self.keys, publish=lambda events: publish(self.log, events))

    @cached_property
    def dicomweb(self):
        """DICOMweb reads, series bundles and STOW-RS over this platform's store (the API and the bundle prebuilder
        share it)."""
        from pipelines.dicomweb.service import DicomWebService

        return DicomWebService.for_platform(self)

    @cached_property
    def exam_mappings(self):
        """Per-hospital exam-code mapping tables with their review queue."""
        from pipelines.mapping.catalog import default_catalog
        from pipelines.mapping.store import MappingStore

        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        return MappingStore(make_engine(self.settings.resolved_mappings_url()), default_catalog())

    def topics(self) -> list[str]:
        return list(all_topics())

    def runner(self):
        from streams.runtime.embedded import EmbeddedRunner

        return EmbeddedRunner(self.log, self.projector, self.topics())

    def rebuild_views(self) -> int:
        """Drop every view and replay the whole log into it; returns the number of records applied."""
        self.projector.drop()
        self.projector.create()
        return self.runner().run_until_caught_up()

    def close(self) -> None:
        while self._closers:
            self._closers.pop()()
        if "log" in self.__dict__:
            self.log.close()
