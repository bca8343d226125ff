"""Settings from the environment (``WANYING_*``) or a ``.env`` file. One place for every knob."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WANYING_", env_file=".env", extra="ignore")

    data_dir: Path = Path("var")
    log_backend: Literal["sqlite", "kafka"] = "sqlite"
    log_fsync: Literal["full", "normal", "off"] = "full"
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_topic_prefix: str = "wanying."
    # Faust worker (``wanying worker`` with the kafka backend). Tansu takes half the session timeout to let a
    # member join a group, so keep it short; heartbeats go at a third of it.
    faust_app_id: str = "wanying-views"
    broker_session_timeout: float = 6.0
    worker_batch: int = 1000
    views_url: str = ""  # default: SQLite in data_dir
    deadletter_url: str = ""  # default: SQLite in data_dir
    mappings_url: str = ""  # exam-code mapping tables; default: SQLite in data_dir
    dicom_store_url: str = ""  # originals (default: data_dir/objects); s3://bucket/prefix in production
    dicom_fsync: Literal["each", "batch", "off"] = "each"  # the SCP chooses batch (see pipelines/dicom/scp.py)
    dicom_index_url: str = ""  # the instance index (default: SQLite in data_dir)
    # Mutual-recognition rules: an operator's copy of schemas/catalogs/recognition_rules.yaml (windows, levels,
    # exceptions, reasons), changed without a release; default: the packaged file of labelled defaults.
    recognition_rules_file: Path | None = None
    keys_file: Path | None = None  # default: data_dir/keys.json (created on first start; production uses a KMS)
    api_host: str = "127.0.0.1"
    api_port: int = 8420
    api_tokens_file: Path | None = None  # default: data_dir/api-tokens.json
    # Report interpretation: any OpenAI-compatible chat API the hospital runs; empty = offline fallback only.
    chat_base_url: str = ""
    chat_model: str = ""
    chat_api_key: str = ""
    chat_timeout_s: float = 20.0
    # Prefetch: hospital code -> its cache node's base URL (JSON in WANYING_CACHE_NODES), and the system token the
    # exchange presents to those nodes. Empty: reminders and duplicates warm no cache.
    cache_nodes: dict[str, str] = {}
    cache_node_token: str = ""

    @property
    def log_path(self) -> Path:
        return self.data_dir / "log.sqlite"

    def resolved_views_url(self) -> str:
        return self.views_url or f"sqlite:///{(self.data_dir / 'views.sqlite').resolve()}"

    def resolved_deadletter_url(self) -> str:
        return self.deadletter_url or f"sqlite:///{(self.data_dir / 'deadletters.sqlite').resolve()}"

    def resolved_mappings_url(self) -> str:
        return self.mappings_url or f"sqlite:///{(self.data_dir / 'mappings.sqlite').resolve()}"

    def resolved_keys_file(self) -> Path:
        return self.keys_file or self.data_dir / "keys.json"

    def resolved_tokens_file(self) -> Path:
        return self.api_tokens_file or self.data_dir / "api-tokens.json"
