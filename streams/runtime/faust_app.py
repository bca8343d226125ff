"""The distributed runtime: Faust agents run the same processors through the same :class:`Projector` on Kafka.

One agent per logical topic takes batches of events (``take_events`` with a short ``within``), turns them into
:class:`LogRecord` s (real partition and offset, logical topic name), and applies them with
:meth:`Projector.apply`, which stores state, view rows and positions in one SQL transaction. Then the events it
decided are appended to the log (:class:`OutboxRelay`), and only then does Faust ack the batch. The SQL runs in
one worker thread, so the agents never write concurrently.

Delivery is at least once; effects are idempotent because the projector skips any record below its stored
position. Faust's exactly-once mode is not used (and aiokafka's idempotent/transactional producers fail on Tansu).

Where a partition resumes: the projector's stored positions, not the group's committed offsets. Faust seeks every
assigned partition to its committed offset once a rebalance completes (``Consumer.perform_seek``); the consumer
here answers that seek with the projector's positions instead. Skipping alone would cover a committed offset that
is *behind* the views (records are read again and skipped), but not one that is *ahead* of them: the views were
dropped for a rebuild (``wanying views rebuild``), restored from a backup, or a batch was acked at shutdown while
its transaction was still running, and that transaction then failed. Seeking to the stored positions covers all three, as the embedded runtime does.

Tansu (the broker we test against) quirks handled here:
- a group join takes half of ``session.timeout.ms``: the session timeout is a setting (6 s in tests), with the
  heartbeat at a third of it;
- aiokafka idempotent/transactional producers fail: neither is enabled (Faust's defaults);
- RocksDB tables can fail on restart: ``store="memory://"`` (state lives in the projector's SQL anyway);
- the high watermark it reports is wrong: nothing here reads it (lag is measured from the views' positions);
- a fetch waits its whole ``fetch.max.wait`` even when records arrive meanwhile: it is short here
  (:attr:`FaustSettings.fetch_wait`), not Faust's fixed 1.5 s.

Not a Tansu quirk but met on the way: :class:`~streams.log.kafka.KafkaLog` produces lz4-compressed batches, and
aiokafka decodes lz4 only when ``cramjam`` is installed (a dependency for that reason); without it the fetcher
crashes with ``UnsupportedCodecError`` and the worker stops with status 1.
"""
from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TypeVar

import faust
from faust.transport.drivers import aiokafka as aiokafka_driver

from schemas.envelope import Envelope
from streams.log.port import EventLog, LogRecord
from streams.runtime.outbox import OutboxRelay
from streams.topics import PARTITIONS
from streams.views.projector import Projector

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class FaustSettings:
    bootstrap: str
    prefix: str = "wanying."
    app_id: str = "wanying-views"
    data_dir: Path = Path("var/faust")
    session_timeout: float = 6.0
    batch: int = 1000
    #: How long an agent's buffer may fill before its batch is applied. Faust yields a full buffer at once, so
    #: this bounds only what a live (not full) batch waits: each hop of a decision (order -> decided event ->
    #: views) pays up to this much, catching up does not.
    within: float = 0.01
    #: How long a fetch may wait on the broker for records. Faust fixes it at 1.5 s; Tansu holds a fetch that long
    #: even when records arrive meanwhile, which a decision pays twice (order, then the decided event).
    fetch_wait: float = 0.02
    retry_pause: float = 1.0
    flush_every: float = 1.0
    topics: Sequence[str] = field(default_factory=lambda: sorted(PARTITIONS))


class ShortFetchConsumerThread(aiokafka_driver.AIOKafkaConsumerThread):
    """Fetches wait :attr:`FaustSettings.fetch_wait` on the broker instead of Faust's fixed 1.5 s."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        runtime: FaustRuntime | None = getattr(self.consumer.app, "wanying_runtime", None)
        if runtime is not None:  # aiokafka reads it when the consumer starts its fetcher
            consumer._fetch_max_wait_ms = int(runtime.settings.fetch_wait * 1000)
        return consumer


class ProjectorSeekingConsumer(aiokafka_driver.Consumer):
    """Answers Faust's seek-to-committed with the projector's stored positions (and fetches briefly)."""

    def _new_consumer_thread(self) -> ShortFetchConsumerThread:
        return ShortFetchConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def seek_to_committed(self) -> Mapping[Any, int]:
        committed = dict(await super().seek_to_committed())
        runtime: FaustRuntime | None = getattr(self.app, "wanying_runtime", None)
        if runtime is None or not committed:
            return committed
        positions = await runtime.run_sql(runtime.projector.positions)
        moves = {}
        for tp in committed:
            logical = runtime.logical(tp.topic)
            if logical is None:
                continue
            stored = positions.get((logical, tp.partition), 0)
            if committed[tp] != stored:
                moves[tp] = stored
        if moves:
            behind = sum(o - (committed[tp] or 0) for tp, o in moves.items() if o > (committed[tp] or 0))
            ahead = sum((committed[tp] or 0) - o for tp, o in moves.items() if o < (committed[tp] or 0))
            log.info("seeking %d partitions to the views' positions (%d records skipped that the views already "
                     "hold, %d read again that they lack)", len(moves), behind, ahead)
            await self.seek_wait(moves)
            committed.update(moves)
        return committed


class ProjectorTransport(aiokafka_driver.Transport):
    Consumer = ProjectorSeekingConsumer


class ProjectorApp(faust.App):
    wanying_runtime: "FaustRuntime | None" = None

    def _new_transport(self) -> ProjectorTransport:
        return ProjectorTransport(self.conf.broker_consumer, self)


class FaustRuntime:
    """The app, its agents, and the projector they feed."""

    def __init__(self, settings: FaustSettings, projector: Projector, event_log: EventLog) -> None:
        self.settings, self.projector, self.event_log = settings, projector, event_log
        projector.check_current()
        self._sql = ThreadPoolExecutor(max_workers=1, thread_name_prefix="projector")
        self.outbox = OutboxRelay(event_log, projector)  # used on the SQL thread only
        self.applied = 0
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.app = ProjectorApp(
            settings.app_id,
            broker=f"kafka://{settings.bootstrap}",
            store="memory://",
            datadir=str(settings.data_dir),
            web_enabled=False,
            broker_session_timeout=settings.session_timeout,
            broker_heartbeat_interval=settings.session_timeout / 3,
            consumer_auto_offset_reset="earliest",
            processing_guarantee="at_least_once",
            key_serializer="raw",
            value_serializer="raw",
        )
        self.app.wanying_runtime = self
        for topic in settings.topics:
            self._add_agent(topic)
        self.app.task(self._flush_pending)
        self.app.timer(settings.flush_every)(self._flush_pending)

    # ------------------------------------------------------------------ topics

    def kafka_topic(self, logical: str) -> str:
        return self.settings.prefix + logical

    def logical(self, kafka_topic: str) -> str | None:
        if not kafka_topic.startswith(self.settings.prefix):
            return None
        name = kafka_topic[len(self.settings.prefix):]
        return name if name in self.settings.topics else None

    # ------------------------------------------------------------------ agents

    def _add_agent(self, topic: str) -> None:
        channel = self.app.topic(self.kafka_topic(topic), partitions=PARTITIONS[topic], key_type=bytes,
                                 value_type=bytes)

        async def project(stream: faust.StreamT) -> None:
            async for events in stream.take_events(self.settings.batch, within=self.settings.within):
                await self.apply([self.record(e.message) for e in events])

        self.app.agent(channel, name=f"project-{topic}", concurrency=1)(project)

    def record(self, message: Any) -> LogRecord:
        """Never raises: a record that is not an envelope fails in :meth:`apply` (retried, like the embedded
        runtime), where raising here would crash the agent after Faust had acked the batch."""
        value: bytes = message.value or b""
        return LogRecord(self.logical(message.topic) or message.topic, message.partition, message.offset,
                         (message.key or b"").decode(errors="replace"),
                         _header(message.headers, "event_id") or _event_id(value), value)

    async def apply(self, records: Sequence[LogRecord]) -> None:
        """Apply and flush the outbox, retrying until it succeeds: an agent that raised would ack the batch."""
        while True:
            try:
                self.applied += await self.run_sql(self._apply_and_flush, records)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("projector batch of %d records failed; retrying", len(records))
                await asyncio.sleep(self.settings.retry_pause)

    def _apply_and_flush(self, records: Sequence[LogRecord]) -> int:
        return self.outbox.apply(records).applied

    def flush_outbox(self) -> None:
        self.outbox.flush()

    async def _flush_pending(self) -> None:
        """Append decided events that no batch will append. At start: those of a worker killed between the views'
        commit and its flush (restarted with the views holding every record, it gets no batch to flush after).
        Then on a timer: a flush that failed (the broker away at start) is tried again, not left pending."""
        try:
            await self.run_sql(self.flush_outbox)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("flushing the outbox failed; trying again in %.0fs", self.settings.flush_every)

    async def run_sql(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._sql, fn, *args)

    # ------------------------------------------------------------------ running

    def run_worker(self, loglevel: str = "info") -> None:
        """Run until SIGTERM/SIGINT (Faust's worker installs the handlers and stops cleanly). A crashed Faust
        service (e.g. the fetcher meeting a compression it cannot read) stops the worker with status 1."""
        from faust.worker import Worker

        try:
            Worker(self.app, loglevel=loglevel, quiet=True).execute_from_commandline()
        finally:
            self._sql.submit(self.outbox.mark)  # the last batch's appended events (a clean stop leaves none pending)
            self._sql.shutdown(wait=True)


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    items = headers.items() if isinstance(headers, Mapping) else headers
    for k, v in items:
        if k == name:
            return v.decode() if isinstance(v, bytes) else str(v)
    return None


def _event_id(value: bytes) -> str:
    try:
        return str(Envelope.from_bytes(value).event_id)
    except ValueError:
        return ""


def create_runtime(settings: FaustSettings, projector: Projector, event_log: EventLog) -> FaustRuntime:
    """The app factory: ``create_runtime(...).app`` is the Faust app, ``.run_worker()`` runs it."""
    return FaustRuntime(settings, projector, event_log)
