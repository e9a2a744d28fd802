"""The review proxy's x264/AAC settings (``transcode.commands.proxy_command`` builds the
command from them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProxySettings:
    """x264/AAC settings for the browser-playable review proxy of a non-playable source.

    ``ultrafast``: the only x264 preset that reaches the 3x realtime per core at 720p of
    issue 7 here (measured on a 10 s 720p MPEG-4 clip: veryfast 1.4x, superfast 1.9x,
    ultrafast 4.3x per core), at the cost of a larger file at the same CRF (1.7x veryfast's).
    The proxy is for viewing only, made for the few sources a browser cannot play.
    """

    preset: str = "ultrafast"
    crf: int = 23
    audio_bitrate: str = "96k"
    threads: int = 0  # 0 lets x264 choose
    # The bitrate cap at 1280x720, scaled by the picture's area (at least ``min_kbps``): CRF
    # alone follows the content, and noise (night footage, sensor grain) makes a proxy of
    # 9 Mb/s at 720p. Measured (ffmpeg ssim, proxy against source, 20 s): the noisy synthetic
    # 720p clip of bench/storage.py 9.4 Mb/s SSIM 0.975 uncapped, 4.3 Mb/s 0.938 at 4000k,
    # 2.7 Mb/s 0.912 at 2500k; Megamind.avi (720x528 film) 0.8 Mb/s, SSIM 0.963, whatever
    # the cap. Review needs to see what happened, not the grain: 4000k at 720p.
    kbps_720p: int = 4000
    min_kbps: int = 1000
    # And at most this share of the source's own bitrate (its file's size over its duration),
    # not below ``floor_kbps``: a re-encode shows nothing its source did not have, and x264
    # spends fewer bits than MPEG-4 Part 2, MS-MPEG4 or Cinepak for the same picture. Measured
    # (docs/storage.md): Megamind.avi (845 kb/s) near 0.3 of it, superfast, SSIM 0.979 against
    # its source (0.986 uncapped at 1371 kb/s, more than its source spent); vtest.avi 0.963.
    source_share: float = 0.3
    floor_kbps: int = 250
    # Pictures of at most ``small_pixel_rate`` pixels a second (half of 720p30) are encoded
    # with ``small_preset``, which keeps more of the picture at the same bitrate and still runs
    # above 3x realtime per core there (15x on Megamind.avi, about 3.4x at the limit on the
    # noisiest clip); None: ``preset`` always.
    small_preset: str | None = "superfast"
    small_pixel_rate: int = 1280 * 720 * 30 // 2

    def maxrate_kbps(self, width: int, height: int, source_kbps: float | None = None) -> int:
        """The cap for a picture of ``width`` x ``height`` from a source of ``source_kbps``
        (None: not known, the picture's cap alone)."""
        area = max(self.min_kbps, round(self.kbps_720p * width * height / (1280 * 720)))
        if source_kbps is None:
            return area
        return min(area, max(self.floor_kbps, round(self.source_share * source_kbps)))

    def preset_for(self, size: tuple[int, int] | None, fps: float | None) -> str:
        """The x264 preset for a picture of ``size`` at ``fps`` (either unknown: ``preset``)."""
        if self.small_preset is None or size is None or not fps:
            return self.preset
        small = size[0] * size[1] * fps <= self.small_pixel_rate
        return self.small_preset if small else self.preset

    def label(
        self, size: tuple[int, int] | None, fps: float | None, source_kbps: float | None
    ) -> str:
        """The encoding of a source's proxy, as its ``proxy.stored`` event says it."""
        cap = f" maxrate={self.maxrate_kbps(*size, source_kbps)}k" if size is not None else ""
        return (
            f"libx264 preset={self.preset_for(size, fps)} crf={self.crf}{cap}"
            f" threads={self.threads}; aac {self.audio_bitrate}"
        )
