"""Settings, read from ``VIGIL_*`` environment variables. Created in ``main``, never at import."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from integrity.witness import WitnessConfig, WitnessConfigError

RETIRED_SECRET = "vigil-dev-secret"
"""What earlier versions used as the default of every secret: published, so refused wherever it is
configured. No secret has a default in code; an unset one is the empty string."""
MIN_LINK_SECRET_CHARS = 16


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
    s3_secret_key: SecretStr = Field(
        SecretStr(""), description="S3 secret key; no default: required with VIGIL_STORE=s3."
    )
    s3_secure: bool = Field(False, description="Use HTTPS to reach the store.")
    s3_originals_bucket: str = Field("vigil-originals", min_length=3, max_length=63)
    s3_derived_bucket: str = Field("vigil-derived", min_length=3, max_length=63)
    s3_outage_budget_s: float = Field(
        600.0, gt=0, description="How long to retry an unreachable store before failing."
    )
    segment_copies: Literal["keep", "derive"] = Field(
        "derive",
        description="derive (default): store no segment copy the original makes again (its"
        " packets signed); each is cut again when wanted. keep: store every segment's copy.",
    )
    proxy_cache_days: float | None = Field(
        None,
        gt=0,
        description="The review proxy as a cache: stored without retention, expired by"
        " `vigil storage expire-proxies` after this many days unused, made again when played."
        " Unset: kept with the recording.",
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
    custody_at_ingest: bool = Field(
        True,
        description="With the S3 store: a process that ingests a whole file (`vigil ingest`)"
        " cuts, hashes and stores its segments from the staged bytes while the original is"
        " uploaded, and catalogues them before it announces the recording; the segment worker"
        " then finds it on record. Off: the segment worker downloads the original and does it"
        " all. Uploads through the API are always left to the segment worker.",
    )
    recover_at_ingest: bool = Field(
        False,
        description="An MP4/MOV stored as unreadable because its moov was never written is"
        " recovered at once with the codec setup of the device's nearest earlier recording"
        " (as `vigil recover` does; when that is impossible it stays unreadable, logged).",
    )
    phash_fps: float = Field(
        0.0,
        ge=0,
        le=60,
        description="0: hash every decoded frame at its own time (the default);"
        " above 0: sample on the fixed-rate grid of earlier versions (kept for benchmarks).",
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
        SecretStr(""),
        description="Signs short-lived media links (at least 16 characters). Unset: production"
        " refuses to serve the API; development generates one in data_dir (api-link-secret).",
    )
    api_media_ttl_s: int = Field(
        300, ge=10, le=3600, description="How long a signed media link stays valid, in seconds."
    )
    api_max_body_bytes: int = Field(
        1 << 20,
        ge=1024,
        le=64 << 20,
        description="Largest request body outside upload chunks and CSV imports (refused: 413).",
    )
    api_auth_failure_limit: int = Field(
        20, ge=1, description="Failed authentications per minute from one address before 429."
    )
    api_auth_log_window_s: float = Field(
        600.0,
        ge=1,
        description="Failed authentications from one address make one custody event per window.",
    )
    upload_max_open_per_device: int = Field(
        4, ge=1, le=1000, description="Open uploads one device may have at once (more: 409)."
    )
    upload_expire_s: float = Field(
        86400.0, ge=60, description="An open upload with no chunk for this long is expired."
    )
    upload_free_margin_bytes: int = Field(
        1 << 30,
        ge=0,
        description="Free space kept on the uploads folder beyond what open uploads have declared"
        " and not yet sent; a start that does not fit is refused (422).",
    )
    metrics_token: SecretStr = Field(
        SecretStr(""),
        description="Bearer token Prometheus sends to the API's /metrics; unset: not served there.",
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
    ledger_public_key_file: Path | None = Field(
        None,
        description="The ledger's Ed25519 public key (PEM), for processes that append custody"
        " events and verify heads but never sign (workers, the API): only the ledger service"
        " holds VIGIL_LEDGER_KEY_FILE.",
    )
    ledger_name: str = Field(
        "vigil.local/custody",
        pattern=r"^[^\s]+$",
        description="The ledger's name: the origin line of its checkpoints and its key name.",
    )
    ledger_interval_s: float = Field(
        60.0, gt=0, description="How often `vigil worker ledger` signs a new tree head."
    )
    ledger_witnesses: str = Field(
        "",
        description="Witnesses that cosign tree heads (C2SP tlog-witness): per witness its URL"
        " and verifier key (name+keyid+base64, type 0x04), entries separated by ';' or newlines.",
    )
    ledger_witness_quorum: int | None = Field(
        None, ge=1, description="Cosignatures a head needs to count as witnessed; default: all."
    )
    ledger_witness_timeout_s: float = Field(
        10.0, gt=0, description="How long to wait for a witness."
    )
    ledger_tsa_url: str | None = Field(
        None, description="RFC 3161 time-stamping authority for tree heads (optional)."
    )
    ledger_tsa_timeout_s: float = Field(30.0, gt=0, description="How long to wait for the TSA.")
    ledger_tsa_certs: Path | None = Field(
        None, description="PEM certificates that vouch for the TSA, copied into exports."
    )
    c2pa_trust_anchors: Path | None = Field(
        None,
        description="PEM file of the X.509 trust anchors (root CAs) that devices' C2PA signing"
        " certificates must chain to for a manifest signed at capture to be *valid*; unset:"
        " manifests are still read and checked, and their signers are *untrusted*.",
    )
    c2pa_sign_cert: Path | None = Field(
        None,
        description="PEM certificate chain (the agency's C2PA signing certificate first) that"
        " signs the Content Credentials of exported clips (`vigil export --clip`); with"
        " VIGIL_C2PA_SIGN_KEY. Unset: clips cannot be exported.",
    )
    c2pa_sign_key: Path | None = Field(
        None,
        description="PEM private key of VIGIL_C2PA_SIGN_CERT (readable by the exporting process"
        " only; docs/c2pa.md says where it lives and how to rotate it).",
    )
    exports_built_by: Literal["api", "ledger"] = Field(
        "api",
        description="Who builds an export package once a supervisor approves it: `api`, the"
        " API process at approval (one process, embedded defaults); `ledger`, the ledger"
        " service (`vigil ledger run`) in its next round, so that the C2PA signing key lives"
        " with the ledger key and never in the API (the compose deployment).",
    )

    @model_validator(mode="after")
    def _no_default_secrets(self) -> Settings:
        link = self.api_secret.get_secret_value()
        if link == RETIRED_SECRET or (link and len(link) < MIN_LINK_SECRET_CHARS):
            raise ValueError(
                f"VIGIL_API_SECRET: at least {MIN_LINK_SECRET_CHARS} random characters, never a"
                " published value (make one with: openssl rand -hex 32)"
            )
        s3_secret = self.s3_secret_key.get_secret_value()
        if self.store == "s3" and not s3_secret:
            raise ValueError("set VIGIL_S3_SECRET_KEY: the S3 store has no default secret")
        if self.environment == "production" and s3_secret == RETIRED_SECRET:
            raise ValueError("set VIGIL_S3_SECRET_KEY: the published development secret is refused")
        keys = (self.ledger_key_file, self.ledger_public_key_file)
        if self.environment == "production" and keys == (None, None):
            raise ValueError(
                "set VIGIL_LEDGER_KEY_FILE (the ledger service) or VIGIL_LEDGER_PUBLIC_KEY_FILE"
                " (every other process): production never signs with a generated key"
            )
        return self

    @model_validator(mode="after")
    def _witnesses_are_usable(self) -> Settings:
        try:
            self.witness_config  # noqa: B018 - parsed here so that a bad setting stops the start
        except WitnessConfigError as exc:
            raise ValueError(f"VIGIL_LEDGER_WITNESSES/_QUORUM: {exc}") from exc
        return self

    @property
    def witness_config(self) -> WitnessConfig:
        return WitnessConfig.parse(
            self.ledger_witnesses,
            self.ledger_witness_quorum,
            timeout_s=self.ledger_witness_timeout_s,
        )

    @property
    def dev_ledger_key(self) -> Path:
        return self.data_dir / "ledger-dev-ed25519.pem"

    @property
    def dev_link_secret(self) -> Path:
        """Where development keeps the media-link secret it generated (mode 0600)."""
        return self.data_dir / "api-link-secret"

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
