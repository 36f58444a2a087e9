"""The one source of configuration: :class:`Settings`, read from the environment.

Defaults make an embedded single-machine setup: everything under ``./data``
(Parquet lake, write-ahead log, SQLite catalog, executed notebooks), no
Elasticsearch. Every entry point calls :func:`get_settings` (or receives a
``Settings`` from its caller, which is how tests point it elsewhere).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every tunable of the system; environment variable names are given per field."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    data_dir: Path = Field(default=Path("./data"), alias="WORKBENCH_DATA_DIR")
    database_url: str = Field(default="", alias="DATABASE_URL")
    lake_url: str = Field(default="", alias="WORKBENCH_LAKE_URL")
    elastic_url: str | None = Field(default=None, alias="ELASTIC_URL")
    host: str = Field(default="127.0.0.1", alias="WORKBENCH_HOST")
    port: int = Field(default=4000, alias="PORT", ge=1, le=65535)
    dashboard_port: int = Field(default=8866, alias="WORKBENCH_DASHBOARD_PORT", ge=1, le=65535)
    dashboard_url: str = Field(default="", alias="WORKBENCH_DASHBOARD_URL")
    # The ingest/REST API as others reach it (links in webhook payloads); default: host and port.
    api_url: str = Field(default="", alias="WORKBENCH_API_URL")

    # Ingest limits: each answered with an error that names the field and the limit.
    max_body_bytes: int = Field(default=10 * 1024 * 1024, alias="WORKBENCH_MAX_BODY_BYTES", gt=0)
    # Bodies of the REST routes other than ingest (rules, channels, silences, actions).
    max_api_body_bytes: int = Field(default=1024 * 1024, alias="WORKBENCH_MAX_API_BODY_BYTES", gt=0)
    max_batch_events: int = Field(default=10_000, alias="WORKBENCH_MAX_BATCH_EVENTS", gt=0)
    max_service_chars: int = Field(default=128, alias="WORKBENCH_MAX_SERVICE_CHARS", gt=0)
    max_message_chars: int = Field(default=32_768, alias="WORKBENCH_MAX_MESSAGE_CHARS", gt=0)
    max_meta_depth: int = Field(default=8, alias="WORKBENCH_MAX_META_DEPTH", gt=0)
    max_meta_bytes: int = Field(default=16_384, alias="WORKBENCH_MAX_META_BYTES", gt=0)
    max_future_skew_s: int = Field(default=300, alias="WORKBENCH_MAX_FUTURE_SKEW_SECONDS", ge=0)
    max_past_age_s: int = Field(default=400 * 86400, alias="WORKBENCH_MAX_PAST_AGE_SECONDS", gt=0)

    # Durability and flushing.
    flush_interval_s: float = Field(default=1.0, alias="WORKBENCH_FLUSH_INTERVAL_SECONDS", gt=0)
    flush_max_events: int = Field(default=100_000, alias="WORKBENCH_FLUSH_MAX_EVENTS", gt=0)
    max_wal_backlog_bytes: int = Field(
        default=256 * 1024 * 1024, alias="WORKBENCH_MAX_WAL_BACKLOG_BYTES", gt=0
    )

    # Alerting.
    evaluate_interval_s: int = Field(default=60, alias="WORKBENCH_EVALUATE_INTERVAL_SECONDS", gt=0)
    evaluate_timeout_s: int = Field(default=50, alias="WORKBENCH_EVALUATE_TIMEOUT_SECONDS", gt=0)
    runs_retention_days: int = Field(default=7, alias="WORKBENCH_RUNS_RETENTION_DAYS", gt=0)
    webhook_timeout_s: float = Field(default=5.0, alias="WORKBENCH_WEBHOOK_TIMEOUT_SECONDS", gt=0)
    # Webhooks to private, loopback and link-local addresses are refused unless this is
    # true (local development: scripts/up sets it; the test suite too). docs/security.md.
    allow_private_webhooks: bool = Field(default=False, alias="WORKBENCH_ALLOW_PRIVATE_WEBHOOKS")
    webhook_max_response_bytes: int = Field(
        default=64 * 1024, alias="WORKBENCH_WEBHOOK_MAX_RESPONSE_BYTES", gt=0
    )
    # Email channels send through this SMTP server, e.g.
    # smtp://user:pass@host:587?starttls=true&from=alerts@example.com (docs/alerting.md);
    # unset: an email channel cannot be saved.
    smtp_url: str = Field(default="", alias="WORKBENCH_SMTP_URL")

    # Security: who may call the API, and how much one caller may take (docs/security.md).
    # Comma-separated browser origins allowed by CORS; empty means no CORS headers at all.
    cors_origins: str = Field(default="", alias="WORKBENCH_CORS_ORIGINS")
    # Per API key token bucket for ingestion, in events: the sustained rate and the burst.
    ingest_rate_per_key: float = Field(default=5000.0, alias="WORKBENCH_INGEST_RATE_PER_KEY", gt=0)
    ingest_burst_per_key: int = Field(default=10_000, alias="WORKBENCH_INGEST_BURST_PER_KEY", gt=0)
    # Query limits, so one search cannot starve the rest: the widest from/to span, and
    # the deepest offset page (page * limit); deeper pages must follow the cursor.
    max_query_days: int = Field(default=400, alias="WORKBENCH_MAX_QUERY_DAYS", gt=0)
    max_page_depth: int = Field(default=10_000, alias="WORKBENCH_MAX_PAGE_DEPTH", gt=0)

    # Housekeeping, run by the scheduler beside the alert ticks (docs/lake.md "Housekeeping").
    # Seconds between passes; 0 turns housekeeping off.
    housekeeping_interval_s: float = Field(
        default=60.0, alias="WORKBENCH_HOUSEKEEPING_INTERVAL_SECONDS", ge=0
    )
    # Delete date partitions older than this many days; unset (or blank) keeps everything.
    retention_days: int | None = Field(default=None, alias="WORKBENCH_RETENTION_DAYS", ge=1)
    # Hot-partition compaction: merge files under both bounds, committed at least
    # min_age ago, once there are min_files of them.
    compact_small_file_bytes: int = Field(
        default=8 * 1024 * 1024, alias="WORKBENCH_COMPACT_SMALL_FILE_BYTES", gt=0
    )
    compact_small_file_rows: int = Field(
        default=1_000_000, alias="WORKBENCH_COMPACT_SMALL_FILE_ROWS", gt=0
    )
    compact_min_files: int = Field(default=10, alias="WORKBENCH_COMPACT_MIN_FILES", ge=2)
    compact_min_age_s: float = Field(default=60.0, alias="WORKBENCH_COMPACT_MIN_AGE_SECONDS", ge=0)
    # One merge reads at most about this many bytes of files (held decoded in memory); a
    # past day bigger than this ends as files of about this size instead of one.
    compact_max_merge_bytes: int = Field(
        default=128 * 1024 * 1024, alias="WORKBENCH_COMPACT_MAX_MERGE_BYTES", gt=0
    )
    # Replaced files are deleted this long after their replacement committed (in-flight reads).
    compact_grace_s: float = Field(default=300.0, alias="WORKBENCH_COMPACT_GRACE_SECONDS", ge=0)

    # Dashboard.
    refresh_interval_s: int = Field(default=30, alias="WORKBENCH_REFRESH_SECONDS", ge=0)
    # Token the dashboard (Voila) asks for; required when it listens beyond loopback.
    dashboard_token: str = Field(default="", alias="WORKBENCH_DASHBOARD_TOKEN")
    # Most kernels the dashboard runs at once (each page view holds one, ~250-290 MB);
    # past it a page answers "busy, try again" instead of starting another (docs/dashboard.md).
    dashboard_max_kernels: int = Field(default=12, alias="WORKBENCH_DASHBOARD_MAX_KERNELS", gt=0)
    # Seconds a page's kernel is kept when no browser ever connected to it (a plain GET, a
    # probe, a link preview); a kernel whose last websocket closed goes after min(10, this).
    dashboard_page_grace_s: float = Field(
        default=45.0, alias="WORKBENCH_DASHBOARD_PAGE_GRACE_SECONDS", gt=0, le=3600
    )
    # Comma-separated host names (Host header) the API and dashboard answer besides the
    # loopback names; anything else gets 400 (DNS rebinding, docs/security.md).
    allowed_hosts: str = Field(default="", alias="WORKBENCH_ALLOWED_HOSTS")

    @field_validator("retention_days", mode="before")
    @classmethod
    def _blank_is_unset(cls, v: Any) -> Any:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("database_url", "lake_url")
    @classmethod
    def _strip(cls, v: str) -> str:
        return v.strip()

    @model_validator(mode="after")
    def _derive_defaults(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().absolute()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'workbench.db'}"
        if not self.lake_url:
            self.lake_url = str(self.data_dir / "lake")
        if not self.dashboard_url:
            self.dashboard_url = f"http://127.0.0.1:{self.dashboard_port}"
        if not self.api_url:
            host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
            self.api_url = f"http://{host}:{self.port}"
        if self.elastic_url is not None and not self.elastic_url.strip():
            self.elastic_url = None
        return self

    @property
    def cors_origin_list(self) -> list[str]:
        """Return the CORS origins as a list (empty: CORS is off)."""
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @property
    def allowed_host_list(self) -> list[str]:
        """Return the extra allowed Host names, lower-cased (loopback names are always allowed)."""
        return [h.strip().lower() for h in self.allowed_hosts.split(",") if h.strip()]

    @property
    def wal_dir(self) -> Path:
        """Directory holding one write-ahead log folder per ingest process."""
        return self.data_dir / "wal"

    @property
    def runs_dir(self) -> Path:
        """Directory where executed alert notebooks are kept as the audit trail."""
        return self.data_dir / "runs"


DEFAULT_INDEX_PREFIX = "app-logs-"


class MirrorSettings(BaseSettings):
    """The Elasticsearch mirror's settings (read only when ``ELASTIC_URL`` is set; see docs/mirror.md)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    elastic_url: str | None = Field(default=None, alias="ELASTIC_URL")
    api_key: str | None = Field(default=None, alias="ELASTIC_API_KEY")
    username: str | None = Field(default=None, alias="ELASTIC_USERNAME")
    password: str | None = Field(default=None, alias="ELASTIC_PASSWORD")
    ca_certs: Path | None = Field(default=None, alias="ELASTIC_CA_CERTS")
    verify_certs: bool = Field(default=True, alias="ELASTIC_VERIFY_CERTS")
    request_timeout_s: float = Field(default=30.0, alias="ELASTIC_REQUEST_TIMEOUT_SECONDS", gt=0)
    index_prefix: str = Field(default=DEFAULT_INDEX_PREFIX, alias="ELASTIC_INDEX_PREFIX")
    poll_interval_s: float = Field(default=1.0, alias="WORKBENCH_MIRROR_POLL_SECONDS", gt=0)
    batch_events: int = Field(default=5_000, alias="WORKBENCH_MIRROR_BATCH_EVENTS", gt=0)
    max_backoff_s: float = Field(default=60.0, alias="WORKBENCH_MIRROR_MAX_BACKOFF_SECONDS", gt=0)

    @field_validator("elastic_url", "api_key", "username", "password", mode="before")
    @classmethod
    def _blank_is_unset(cls, v: Any) -> Any:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("index_prefix")
    @classmethod
    def _lower_case_prefix(cls, v: str) -> str:
        if not v or v != v.lower() or any(c in v for c in ' "*\\<|,>/?#:'):
            raise ValueError("ELASTIC_INDEX_PREFIX must be a lower-case index name prefix")
        return v

    @property
    def template_name(self) -> str:
        """Return the index template's name (the prefix without its trailing dash)."""
        return self.index_prefix.rstrip("-_.") or "app-logs"

    @property
    def index_pattern(self) -> str:
        """Return the wildcard matching every daily index, e.g. ``app-logs-*``."""
        return f"{self.index_prefix}*"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once from the environment."""
    try:
        return Settings()
    except Exception as exc:  # pydantic's message names the variable (alias)
        from workbench.errors import ConfigError

        raise ConfigError(f"invalid configuration: {exc}") from exc
