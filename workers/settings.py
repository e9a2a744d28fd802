"""Settings, read from ``VIGIL_*`` environment variables. Created in ``main``, never at import."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_", frozen=True, extra="forbid")

    data_dir: Path = Field(
        Path("vigil-data"), description="Root of the embedded store, catalogue and staging."
    )
    catalog_url: str | None = Field(
        None, description="SQLAlchemy database URL; default: SQLite file in data_dir."
    )
    store: Literal["local"] = Field("local", description="Object store backend.")
    bus: Literal["inprocess"] = Field("inprocess", description="Message bus backend.")
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
    def work_dir(self) -> Path:
        return self.data_dir / "work"
