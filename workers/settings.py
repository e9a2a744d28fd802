"""Settings, read from ``VIGIL_*`` environment variables. Created in ``main``, never at import."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "vigil-dev-secret"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_", frozen=True, extra="forbid")

    environment: Literal["development", "production"] = Field(
        "development", description="production refuses the built-in development secrets."
    )
    data_dir: Path = Field(
        Path("vigil-data"), description="Root of the embedded store, catalogue and staging."
    )
    catalog_url: str | None = Field(
        None, description="SQLAlchemy database URL; default: SQLite file in data_dir."
    )
    store: Literal["local", "s3"] = Field("local", description="Object store backend.")
    bus: Literal["inprocess", "kafka"] = Field("inprocess", description="Message bus backend.")
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    kafka_topic_prefix: str = Field(
        "vigil", pattern=r"^[A-Za-z0-9._-]+$", description="Topic and consumer-group prefix."
    )
    kafka_partitions: int = Field(6, ge=1, le=1000, description="Partitions per topic created.")
    kafka_send_timeout_s: float = Field(
        120.0, gt=0, description="How long a publish may wait for the broker's acknowledgement."
    )
    handler_attempts: int = Field(
        4, ge=1, le=100, description="Tries of a failing handler before dead-lettering."
    )
    shutdown_grace_s: float = Field(
        60.0, ge=0, description="On SIGTERM, how long the message in hand may take to finish."
    )
    s3_endpoint: str = Field("127.0.0.1:9000", description="S3/MinIO endpoint, host:port.")
    s3_access_key: SecretStr = Field(SecretStr("vigil"), description="S3 access key.")
    s3_secret_key: SecretStr = Field(SecretStr(DEV_SECRET), description="S3 secret key.")
    s3_secure: bool = Field(False, description="Use HTTPS to reach the store.")
    s3_originals_bucket: str = Field("vigil-originals", min_length=3, max_length=63)
    s3_derived_bucket: str = Field("vigil-derived", min_length=3, max_length=63)
    s3_outage_budget_s: float = Field(
        600.0, gt=0, description="How long to retry an unreachable store before failing."
    )
    retention_days: int = Field(
        183, ge=1, description="COMPLIANCE retention of footage not linked to a case (6 months)."
    )
    retention_days_by_category: dict[str, int] = Field(
        default_factory=dict, description='Per category, e.g. {"evidence": 36500}.'
    )
    ffmpeg: str | None = Field(
        None, description="ffmpeg executable; default: system ffmpeg, else imageio-ffmpeg's."
    )
    segment_seconds: float = Field(10.0, gt=0.5, le=600, description="Target segment length.")
    phash_fps: float = Field(
        10.0, gt=0, le=60, description="Rate of the per-frame perceptual hash grid."
    )
    ffmpeg_timeout_s: float = Field(
        3600.0, gt=0, description="Longest any one ffmpeg run may take."
    )
    probe_timeout_s: float = Field(600.0, gt=0)
    continuity_tolerance_frames: float = Field(
        1.0, ge=0, description="Gap or overlap allowed between adjacent segments, in frames."
    )
    device_gap_tolerance_s: float = Field(
        2.0, ge=0, description="Between consecutive recordings of a device: larger is a gap."
    )
    clock_drift_flag_s: float = Field(
        3.0, ge=0, description="Device clock offset beyond which a recording is flagged."
    )

    api_host: str = Field("127.0.0.1", description="Address `vigil api` listens on.")
    api_port: int = Field(8080, ge=1, le=65535, description="Port of `vigil api`.")
    api_secret: SecretStr = Field(
        SecretStr(DEV_SECRET),
        description="Signs short-lived media links; `vigil api` in production refuses the default.",
    )
    timezone: str = Field(
        "UTC", description="The agency's time zone: days in statistics, e.g. Asia/Shanghai."
    )
    metrics_port: int = Field(
        0, ge=0, le=65535, description="Serve Prometheus /metrics on this port (0: do not)."
    )
    metrics_bind: str = Field("127.0.0.1", description="Address /metrics listens on.")
    ledger_key_file: Path | None = Field(
        None,
        description="Ed25519 private key (PEM) that signs the custody ledger's tree heads;"
        " required in production. Development generates one in data_dir and says so.",
    )
    ledger_name: str = Field(
        "vigil.local/custody",
        pattern=r"^[^\s]+$",
        description="The ledger's name: the origin line of its checkpoints and its key name.",
    )
    ledger_interval_s: float = Field(
        60.0, gt=0, description="How often `vigil worker ledger` signs a new tree head."
    )
    ledger_tsa_url: str | None = Field(
        None, description="RFC 3161 time-stamping authority for tree heads (optional)."
    )
    ledger_tsa_timeout_s: float = Field(30.0, gt=0, description="How long to wait for the TSA.")
    ledger_tsa_certs: Path | None = Field(
        None, description="PEM certificates that vouch for the TSA, copied into exports."
    )

    @model_validator(mode="after")
    def _no_default_secrets_in_production(self) -> Settings:
        production_s3 = self.environment == "production" and self.store == "s3"
        if production_s3 and self.s3_secret_key.get_secret_value() == DEV_SECRET:
            raise ValueError("set VIGIL_S3_SECRET_KEY: the development secret is refused")
        if self.environment == "production" and self.ledger_key_file is None:
            raise ValueError(
                "set VIGIL_LEDGER_KEY_FILE: production never signs the ledger with a generated key"
            )
        return self

    @property
    def dev_ledger_key(self) -> Path:
        return self.data_dir / "ledger-dev-ed25519.pem"

    @property
    def resolved_catalog_url(self) -> str:
        if self.catalog_url:
            return self.catalog_url
        return f"sqlite:///{(self.data_dir / 'catalog.sqlite3').resolve()}"

    @property
    def store_root(self) -> Path:
        return self.data_dir / "objects"

    @property
    def staging_dir(self) -> Path:
        return self.data_dir / "staging"

    @property
    def uploads_dir(self) -> Path:
        return self.staging_dir / "uploads"  # beside staging: the store can link, not copy

    @property
    def exports_dir(self) -> Path:
        return self.data_dir / "exports"

    @property
    def work_dir(self) -> Path:
        return self.data_dir / "work"
