"""The prefetch hook: which events warm which hospital's cache, the call the cache node expects, and that a
failing node neither blocks nor stops the hook."""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from types import SimpleNamespace

import httpx

from pipelines.cache_node.node import PrefetchRequest as NodePrefetchBody
from schemas import REGISTRY
from schemas import events as ev
from streams.prefetch import FakePrefetchSink, HttpPrefetchSink, PrefetchHook, PrefetchRequest, prefetch_request

HF1, WH1 = "AH-HF-001", "AH-WH-001"
PK = "a" * 64
NODES = {HF1: "http://cache-hf1.invalid:8430/"}


def _env(payload):
    return REGISTRY.new(payload, key=PK, source=HF1, occurred_at=datetime.now(timezone.utc))


def _reminder(hospital=HF1, studies=("1.2.3", "1.2.4")):
    return _env(ev.ReminderRaised(hospital=hospital, doctor_id="D1", person_key=PK, trigger="patient_opened",
                                  exam_count=len(studies), study_uids=list(studies)))


def _duplicate():
    return _env(ev.DuplicateFound(hospital=HF1, order_id="O1", person_key=PK, standard_item="CT-CHEST-P",
                                  candidate_study_uid="1.2.9", candidate_hospital=WH1, rule_version="v1"))


def test_reminders_and_duplicates_warm_the_requesting_hospitals_cache():
    reminder = _reminder()
    assert prefetch_request(reminder, NODES) == PrefetchRequest(HF1, NODES[HF1], ("1.2.3", "1.2.4"),
                                                                str(reminder.event_id))
    assert prefetch_request(_duplicate(), NODES).study_uids == ("1.2.9",)
    assert prefetch_request(_reminder(hospital=WH1), NODES) is None  # no cache node configured there
    signed = _env(ev.DoctorSignedIn(hospital=HF1, doctor_id="D1"))
    assert prefetch_request(signed, NODES) is None


def test_the_http_sink_speaks_the_cache_nodes_prefetch_api():
    seen = []

    def node(request: httpx.Request) -> httpx.Response:
        body = NodePrefetchBody.model_validate(json.loads(request.content))  # the node's own request model
        seen.append((request.method, str(request.url), request.headers["authorization"], body.study_uids))
        return httpx.Response(200, json={"prefetched": []})

    HttpPrefetchSink("node-token", transport=httpx.MockTransport(node)).send(prefetch_request(_reminder(), NODES))
    assert seen == [("POST", "http://cache-hf1.invalid:8430/cache/prefetch", "Bearer node-token",
                     ["1.2.3", "1.2.4"])]


def test_a_failing_node_is_counted_and_the_hook_goes_on():
    class Flaky(FakePrefetchSink):
        def send(self, request):
            if not self.requests:
                self.requests.append(None)
                raise httpx.ConnectError("node down")
            super().send(request)

    sink = Flaky()
    hook = PrefetchHook(sink, NODES)
    for event in (_reminder(), _duplicate()):
        hook(SimpleNamespace(event=event))
    deadline = time.monotonic() + 5
    while len(sink.requests) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert hook.failed == 1 and sink.requests[1].study_uids == ("1.2.9",)
