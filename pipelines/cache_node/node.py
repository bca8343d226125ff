"""The cache node's HTTP face: the centre's ``/dicomweb`` API, answered from the local cache when possible.

- WADO-RS resources and bundles: served from the cache while fresh (``fresh_seconds``); on a miss they are
  fetched from the centre (with the node's own ``system`` token), streamed to the client while being written to
  the cache. Older entries are revalidated (``If-None-Match`` when the centre gave an ETag); if the centre
  cannot be reached the cached copy is served anyway, marked ``Warning: 110``.
- QIDO-RS searches always go to the centre (new studies appear there); the last answer is kept and served, marked
  stale, when the centre is unreachable. STOW-RS is passed through; with the centre down it is refused (503):
  the node is read-only then.
- Doctors authenticate to the node with the hospital's tokens; every read served here is recorded in a local
  outbox and reported to the centre (``POST /dicomweb/audit/views``), which appends the ``StudyViewed`` events.
"""
from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import httpx
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.auth import Principal, TokenStore, require
from pipelines.cache_node.store import CacheStore, Entry
from pipelines.dicomweb import access_log

log = logging.getLogger(__name__)
READ = ("doctor", "operator", "regulator")
KEPT_HEADERS = ("content-type", "etag", "cache-control", "x-bundle-source")
SEARCH = re.compile(r"^(studies|series|instances|studies/[0-9.]+/(series|instances)|"
                    r"studies/[0-9.]+/series/[0-9.]+/instances)$")
STUDY = re.compile(r"^studies/([0-9.]+)")
ACCEPT_MATTERS = re.compile(r"(/frames/|/rendered|/thumbnail|/bulkdata/|^studies/[0-9.]+(/series/[0-9.]+)?"
                            r"(/instances/[0-9.]+)?$)")


class CentreUnreachable(RuntimeError):
    pass


@dataclass
class NodeConfig:
    centre_url: str  # e.g. http://centre:8420 (the /dicomweb root is appended)
    centre_token: str  # a system token of this hospital at the centre
    cache_dir: Path
    max_bytes: int = 50 * 1024**3
    fresh_seconds: float = 300.0
    connect_timeout: float = 2.0
    read_timeout: float = 120.0
    audit_interval: float = 5.0


class _CachedFile(FileResponse):
    chunk_size = 4 * 1024 * 1024


class CacheNode:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.store = CacheStore(config.cache_dir, config.max_bytes)
        self.hits = self.misses = self.stale_served = 0
        self._timeout = httpx.Timeout(config.read_timeout, connect=config.connect_timeout)
        self._sync = httpx.Client(base_url=config.centre_url.rstrip("/"), timeout=self._timeout,
                                  headers=self._auth())

    def _auth(self) -> dict:
        return {"Authorization": f"Bearer {self.config.centre_token}"}

    # ------------------------------------------------------------------ keys

    @staticmethod
    def key(path: str, query: str, accept: str | None) -> str:
        params = "&".join(sorted(query.split("&"))) if query else ""
        varies = accept.strip() if accept and ACCEPT_MATTERS.search(path) else ""
        return f"{path}?{params}|{varies}"

    # ------------------------------------------------------------------ prefetch (reminder/duplicate events)

    def prefetch(self, study_uid: str, *, encoding: str = "raw") -> dict:
        """Fill the cache with a study's series list, series metadata and bundles, as a viewer will ask them."""
        done = {"study_uid": study_uid, "series": 0, "bytes": 0}
        series = self._fetch_into(f"studies/{study_uid}/series", "", None)
        if series is None:
            return done
        import json

        for item in json.loads(series.path.read_bytes() or b"[]"):
            se = item["0020000E"]["Value"][0]
            for path, query in ((f"studies/{study_uid}/series/{se}/metadata", ""),
                                (f"studies/{study_uid}/series/{se}/bundle",
                                 "" if encoding == "raw" else f"encoding={encoding}")):
                entry = self._fetch_into(path, query, None)
                done["bytes"] += entry.size if entry else 0
            done["series"] += 1
        return done

    def _fetch_into(self, path: str, query: str, accept: str | None) -> Entry | None:
        key = self.key(path, query, accept)
        tmp = self.store.temp_path()
        try:
            with self._sync.stream("GET", f"/dicomweb/{path}" + (f"?{query}" if query else ""),
                                   headers={"Accept": accept} if accept else {}) as resp:
                if resp.status_code != 200:
                    return None
                with open(tmp, "wb") as fh:
                    for chunk in resp.iter_raw(4 * 1024 * 1024):
                        fh.write(chunk)
                headers = {k: v for k, v in resp.headers.items() if k.lower() in KEPT_HEADERS}
        except httpx.TransportError as exc:
            tmp.unlink(missing_ok=True)
            raise CentreUnreachable(str(exc)) from exc
        return self.store.put_file(key, tmp, status=200, headers=headers, study_uid=_study_of(path))

    # ------------------------------------------------------------------ audit

    def flush_views(self) -> int:
        pending = self.store.pending_views()
        if not pending:
            return 0
        body = [{k: v[k] for k in ("study_uid", "actor", "role", "viewed_at")} for v in pending]
        try:
            resp = self._sync.post("/dicomweb/audit/views", json=body)
        except httpx.TransportError:
            return 0
        if resp.status_code == 202:
            self.store.views_sent([v["id"] for v in pending])
            return len(pending)
        log.error("centre refused the view report: %s %s", resp.status_code, resp.text[:200])
        return 0

    def stats(self) -> dict:
        return {"entries": self.store.count(), "bytes": self.store.total_bytes(), "max_bytes": self.store.max_bytes,
                "hits": self.hits, "misses": self.misses, "stale_served": self.stale_served,
                "evictions": self.store.evictions, "views_pending": len(self.store.pending_views())}


def _study_of(path: str) -> str | None:
    m = STUDY.match(path)
    return m.group(1) if m else None


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"type": "about:blank", "title": "error", "status": status, "detail": detail},
                        status_code=status, media_type="application/problem+json")


class PrefetchRequest(BaseModel):
    study_uids: list[str] = Field(min_length=1, max_length=100)
    encoding: str = Field("raw", pattern="^(raw|htj2k)$")


class EvictRequest(BaseModel):
    study_uids: list[str] | None = None
    all: bool = False


def create_cache_app(node: CacheNode, tokens: TokenStore) -> FastAPI:
    access_log.install()
    client = httpx.AsyncClient(base_url=node.config.centre_url.rstrip("/"), timeout=node._timeout,
                               headers=node._auth())
    reader_auth = require(*READ)
    stop = threading.Event()

    def audit_loop() -> None:
        while not stop.wait(node.config.audit_interval):
            try:
                node.flush_views()
            except Exception:  # never let the reporter die
                log.exception("view report failed")

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        threading.Thread(target=audit_loop, name="cache-audit", daemon=True).start()
        yield
        stop.set()
        await client.aclose()

    app = FastAPI(title="Wanying cache node", description="The centre's DICOMweb API, cached near the doctors",
                  lifespan=lifespan)
    app.state.tokens = tokens

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = _problem(exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/cache/stats")
    def stats(request: Request) -> dict:
        require("operator", "system")(request)
        return node.stats()

    @app.post("/cache/prefetch")
    def prefetch(request: Request, body: PrefetchRequest) -> dict:
        """Fill the cache with these studies now (the reminder and duplicate-exam events call this)."""
        require("operator", "system")(request)
        try:
            return {"prefetched": [node.prefetch(s, encoding=body.encoding) for s in body.study_uids]}
        except CentreUnreachable as exc:
            raise HTTPException(503, f"centre unreachable: {exc}") from None

    @app.post("/cache/evict")
    def evict(request: Request, body: EvictRequest) -> dict:
        """Forget studies (e.g. after a correction at the centre), or everything with ``{"all": true}``."""
        require("operator", "system")(request)
        if not body.all and not body.study_uids:
            raise HTTPException(400, "name study_uids or set all=true")
        return {"dropped": node.store.drop(None if body.all else body.study_uids)}

    def record(who: Principal, path: str) -> None:
        study = _study_of(path)
        if study and not SEARCH.match(path):
            node.store.record_view(study, who.name, who.role if who.role in READ else "operator",
                                   datetime.now(timezone.utc).isoformat())

    def serve(entry: Entry, request: Request, stale: bool = False) -> Response:
        headers = {k: v for k, v in entry.headers.items() if k != "content-type"}
        headers["X-Cache"] = "STALE" if stale else "HIT"
        if stale:
            headers["Warning"] = '110 - "Response is Stale"'
        etag = entry.headers.get("etag")
        if etag and etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return _CachedFile(entry.path, media_type=entry.headers.get("content-type"), headers=headers)

    @app.api_route("/dicomweb/{path:path}", methods=["GET", "HEAD"])
    async def read(path: str, request: Request):
        who = reader_auth(request)
        query = request.url.query
        accept = request.headers.get("accept")
        key = node.key(path, query, accept)
        search = bool(SEARCH.match(path))
        entry = await asyncio.to_thread(node.store.get, key)
        if entry is not None and not search and time.time() - entry.fetched_at < node.config.fresh_seconds:
            node.hits += 1
            await asyncio.to_thread(record, who, path)
            return serve(entry, request)
        headers = {"Accept": accept} if accept else {}
        if entry is not None and entry.headers.get("etag"):
            headers["If-None-Match"] = entry.headers["etag"]
        url = f"/dicomweb/{path}" + (f"?{query}" if query else "")
        try:
            upstream = await client.send(client.build_request("GET", url, headers=headers), stream=True)
        except httpx.TransportError:
            if entry is None:
                raise HTTPException(503, "the centre cannot be reached and this is not in the hospital cache")
            node.stale_served += 1
            await asyncio.to_thread(record, who, path)
            return serve(entry, request, stale=True)
        if upstream.status_code == 304 and entry is not None:
            await upstream.aclose()
            await asyncio.to_thread(node.store.refreshed, key)
            node.hits += 1
            await asyncio.to_thread(record, who, path)
            return serve(entry, request)
        node.misses += 1
        if upstream.status_code not in (200, 204):
            body = await upstream.aread()
            await upstream.aclose()
            return Response(body, status_code=upstream.status_code,
                            media_type=upstream.headers.get("content-type"))
        await asyncio.to_thread(record, who, path)
        kept = {k: v for k, v in upstream.headers.items() if k.lower() in KEPT_HEADERS}
        if upstream.status_code == 204:
            await upstream.aclose()
            return Response(status_code=204)
        if request.method == "HEAD" or request.headers.get("range"):
            # fill completely, then let the file response answer the range
            tmp = node.store.temp_path()
            with open(tmp, "wb") as fh:
                async for chunk in upstream.aiter_raw():
                    fh.write(chunk)
            await upstream.aclose()
            entry = await asyncio.to_thread(node.store.put_file, key, tmp, status=200, headers=kept,
                                            study_uid=_study_of(path))
            return serve(entry, request)
        return StreamingResponse(_tee(node, upstream, key, kept, path), status_code=200,
                                 media_type=kept.get("content-type"),
                                 headers={**{k: v for k, v in kept.items() if k != "content-type"},
                                          "X-Cache": "MISS"})

    @app.post("/dicomweb/{path:path}")
    async def store(path: str, request: Request):
        """STOW-RS goes to the centre as it is (the sender's own centre token); refused while the centre is down."""
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type",
                                                                              "accept")}
        try:
            resp = await client.post(f"/dicomweb/{path}", content=body, headers=headers,
                                     params=dict(request.query_params))
        except httpx.TransportError:
            raise HTTPException(503, "the centre cannot be reached: the hospital cache is read-only until it is")
        return Response(resp.content, status_code=resp.status_code, media_type=resp.headers.get("content-type"))

    return app


async def _tee(node: CacheNode, upstream: httpx.Response, key: str, headers: dict, path: str):
    """Pass the centre's bytes on as they come, writing them to the cache; keep the copy only if complete."""
    tmp = node.store.temp_path()
    complete = False
    try:
        with open(tmp, "wb") as fh:
            async for chunk in upstream.aiter_raw():
                fh.write(chunk)
                yield chunk
        complete = True
    finally:
        await upstream.aclose()
        if complete:
            await asyncio.to_thread(node.store.put_file, key, tmp, status=200, headers=headers,
                                    study_uid=_study_of(path))
        else:
            tmp.unlink(missing_ok=True)
