"""Pure audio fingerprint and comparison (vigil_verify.audio) on synthetic numpy signals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from vigil_verify.audio import (
    BANDS,
    HOP,
    LEVEL_STEP,
    RATE,
    AudioFingerprint,
    align,
    compare_audio,
    desync,
    fingerprint,
)
from vigil_verify.audio_tracks import audio_decode_args, frames_between


def _speech(seconds: float = 8.0, seed: int = 1) -> NDArray[np.float64]:
    """Gliding harmonic tone gated at syllable rate plus a little noise, in [-1, 1]."""
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 220 + 90 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    voice = 0.3 * np.sin(phase) + 0.15 * np.sin(2 * phase) + 0.08 * np.sin(3 * phase)
    gate = np.maximum(0.0, np.sin(2 * np.pi * 3.7 * t)) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.23 * t))
    noise = np.random.default_rng(seed).normal(0, 0.02, t.size)
    return np.asarray(voice * gate + noise, dtype=np.float64)


def _pcm(signal: NDArray[np.float64]) -> NDArray[np.int16]:
    return np.clip(np.round(signal * 32767), -32768, 32767).astype(np.int16)


def _fp(signal: NDArray[np.float64], start: float = 0.0) -> AudioFingerprint:
    return fingerprint(_pcm(signal), start)


def test_fingerprint_shape_and_times() -> None:
    fp = _fp(_speech(4.0), start=10.0)
    assert len(fp) > 300
    assert fp.rate == pytest.approx(RATE / HOP)
    assert np.allclose(np.diff(fp.times), HOP / RATE)
    assert 10.0 < fp.times[0] < 10.5
    assert fp.bits.dtype == np.uint32 and not fp.bits.flags.writeable


def test_round_trip_bytes() -> None:
    fp = _fp(_speech(3.0), start=2.5)
    back = AudioFingerprint.from_bytes(fp.to_bytes())
    assert np.array_equal(back.times, fp.times)
    assert np.array_equal(back.bits, fp.bits)
    assert np.array_equal(back.loudness, fp.loudness)
    assert np.array_equal(back.tonality, fp.tonality)
    assert np.array_equal(back.levels, fp.levels)
    assert back.levels.shape == (-(-len(fp) // LEVEL_STEP), BANDS + 1)
    assert back.rate == fp.rate


@pytest.mark.parametrize("blob", [b"", b"XXXX" + bytes(20), None])
def test_from_bytes_rejects_bad_blobs(blob: bytes | None) -> None:
    data = blob if blob is not None else _fp(_speech(2.0)).to_bytes()[:-1]
    with pytest.raises(ValueError):
        AudioFingerprint.from_bytes(data)


def test_short_audio_gives_empty_fingerprint() -> None:
    assert len(fingerprint(np.zeros(100, dtype=np.int16))) == 0


def test_decode_args_are_mono_pcm_at_rate() -> None:
    args = audio_decode_args("ffmpeg", Path("/x/in.mp4"))
    assert args[0] == "ffmpeg"
    for pair in (["-ac", "1"], ["-ar", str(RATE)], ["-f", "s16le"], ["-map", "0:a:0"]):
        i = args.index(pair[0])
        assert args[i : i + 2] == pair
    assert args[-1] == "pipe:1"


def test_identical_and_slightly_noisy_copy_is_same() -> None:
    signal = _speech()
    noisy = signal * 0.9 + np.random.default_rng(9).normal(0, 0.003, signal.size)
    assert compare_audio(_fp(signal), _fp(signal)).kind == "same"
    verdict = compare_audio(_fp(signal), _fp(noisy))
    assert verdict.kind == "same"
    assert verdict.distance < 0.15


def test_muted_stretch_is_edited_and_located() -> None:
    signal = _speech()
    muted = signal.copy()
    muted[int(3.0 * RATE) : int(5.0 * RATE)] = 0.0
    verdict = compare_audio(_fp(signal), _fp(muted))
    assert verdict.kind == "edited"
    assert len(verdict.ranges) == 1
    start, end = verdict.ranges[0]
    assert abs(start - 3.0) < 0.5 and abs(end - 5.0) < 0.5


def test_replaced_by_noise_is_edited() -> None:
    signal = _speech()
    replaced = signal.copy()
    span = slice(int(2.0 * RATE), int(4.0 * RATE))
    replaced[span] = np.random.default_rng(3).normal(0, 0.2, span.stop - span.start)
    verdict = compare_audio(_fp(signal), _fp(replaced))
    assert verdict.kind == "edited"
    assert abs(verdict.ranges[0][0] - 2.0) < 0.5


def test_offset_is_found_for_desync() -> None:
    signal = _speech()
    shift = int(0.3 * RATE)
    delayed = np.concatenate([np.zeros(shift), signal[:-shift]])
    verdict = compare_audio(_fp(signal), _fp(delayed))
    assert verdict.offset == pytest.approx(0.3, abs=2 * HOP / RATE)
    assert desync(verdict.offset, 0.0)
    assert not desync(verdict.offset, 0.25)


def test_missing_and_extra() -> None:
    empty = fingerprint(np.zeros(0, dtype=np.int16))
    some = _fp(_speech(2.0))
    assert compare_audio(some, empty).kind == "missing"
    assert compare_audio(empty, some).kind == "extra"
    assert compare_audio(empty, empty).kind == "same"


def test_a_louder_or_softer_copy_is_the_same_sound() -> None:
    signal = _speech(8.0)
    for gain_db in (-8.0, 6.0):
        copy = signal * 10 ** (gain_db / 20)
        verdict = compare_audio(_fp(signal), _fp(np.clip(copy, -1, 1)))
        assert verdict.kind == "same", (gain_db, verdict)


def test_a_quiet_tone_under_louder_speech_is_found_by_its_band() -> None:
    signal = _speech(8.0)
    t = np.arange(signal.size) / RATE
    tone = 0.05 * np.sin(2 * np.pi * 1000 * t) * ((t >= 3.0) & (t < 5.0))  # -26 dBFS
    verdict = compare_audio(_fp(signal), _fp(signal + tone))
    assert verdict.kind == "edited"
    ((start, end),) = verdict.ranges
    assert start == pytest.approx(3.0, abs=0.5) and end == pytest.approx(5.0, abs=0.5)


def test_a_cut_of_sound_is_placed_where_it_was_made_and_the_rest_is_not_flagged() -> None:
    signal = _speech(10.0, seed=3)
    cut = np.concatenate([signal[: 4 * RATE], signal[5 * RATE :]])  # 1 s gone at 4 s
    verdict = compare_audio(_fp(signal), _fp(cut))
    assert verdict.kind == "edited"
    ((start, end),) = verdict.ranges
    assert start == pytest.approx(4.0, abs=0.5) and end == pytest.approx(5.0, abs=0.5)


def test_align_changes_column_only_when_the_evidence_outweighs_the_switch_cost() -> None:
    costs = np.full((40, 3), 0.5)
    costs[:20, 0] = 0.1
    costs[20:, 2] = 0.1
    assert align(costs, 2.0).tolist() == [0] * 20 + [2] * 20
    costs[20:23, 0], costs[20:23, 2] = 0.5, 0.1  # three better frames do not pay for a switch
    costs[23:, 0] = 0.1
    assert align(costs, 2.0).tolist() == [0] * 40


def _steady(kind: str, seconds: float = 8.0) -> NDArray[np.float64]:
    """Sound whose band energies do not move, or that the 300-2000 Hz bands do not hold."""
    t = np.arange(int(seconds * RATE)) / RATE
    if kind == "tone":  # a 1 kHz test tone, a beep
        return np.asarray(0.4 * np.sin(2 * np.pi * 1000 * t), dtype=np.float64)
    if kind == "hum":  # a steady harmonic hum across the bands
        hum = sum(0.2 / h * np.sin(2 * np.pi * 120 * h * t) for h in (1, 2, 3, 4, 5))
        return np.asarray(hum, dtype=np.float64)
    rumble = 0.5 * np.sin(2 * np.pi * 150 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 1.3 * t))
    return np.asarray(rumble, dtype=np.float64)  # an engine: all of it below 300 Hz


def _coded(signal: NDArray[np.float64], seed: int = 5) -> NDArray[np.float64]:
    """What a lossy coder leaves: the sound, 1.5 dB softer, with a noise floor ~70 dB down."""
    return signal * 0.84 + np.random.default_rng(seed).normal(0, 3e-4, signal.size)


@pytest.mark.parametrize("kind", ["tone", "hum", "rumble"])
def test_a_steady_or_out_of_band_sound_re_encoded_is_the_same(kind: str) -> None:
    # Each bit is the sign of a change of band energies: where nothing changes in the bands
    # (a steady tone) or the bands hold nothing (a rumble under 300 Hz), a coder's noise sets
    # the bits, BER ~0.5; that was "edited" over the whole clip before.
    signal = _steady(kind)
    verdict = compare_audio(_fp(signal), _fp(_coded(signal)))
    assert verdict.kind == "same", verdict


@pytest.mark.parametrize("kind", ["tone", "hum", "rumble"])
def test_a_steady_sound_muted_or_spoken_over_is_still_edited(kind: str) -> None:
    signal = _steady(kind)
    muted = signal.copy()
    muted[int(3.0 * RATE) : int(5.0 * RATE)] = 0.0
    spoken = signal + np.where(
        (np.arange(signal.size) >= 3.0 * RATE) & (np.arange(signal.size) < 5.0 * RATE),
        _speech(signal.size / RATE, seed=4),
        0.0,
    )
    for edited in (muted, spoken):
        verdict = compare_audio(_fp(signal), _fp(_coded(edited)))
        assert verdict.kind == "edited", verdict
        assert verdict.ranges[0][0] == pytest.approx(3.0, abs=0.5)
        assert verdict.ranges[-1][1] == pytest.approx(5.0, abs=0.5)


def _unbatched(pcm: NDArray[np.int16]) -> tuple[NDArray[np.uint32], NDArray[np.float32]]:
    """Bits and loudness as the fingerprint was first computed: every frame transformed at
    once (5 GB for an hour's hole)."""
    signal = pcm.astype(np.float64) / 32768.0
    count = (signal.size - 2048) // HOP + 1
    frames = signal[np.arange(2048)[None, :] + HOP * np.arange(count)[:, None]]
    loud = np.maximum(20 * np.log10(np.maximum(np.sqrt(np.mean(frames**2, axis=1)), 1e-12)), -60)
    power = np.abs(np.fft.rfft(frames * np.hanning(2048), axis=1)) ** 2
    edges = np.round(np.geomspace(300.0, 2000.0, BANDS + 2) * 2048 / RATE).astype(np.int64)
    cumulative = np.concatenate([np.zeros((count, 1)), np.cumsum(power, axis=1)], axis=1)
    energy = cumulative[:, edges[1:]] - cumulative[:, edges[:-1]]
    delta = np.diff(energy[:, :-1] - energy[:, 1:], axis=0) > 0
    bits = (delta.astype(np.uint64) << np.arange(BANDS, dtype=np.uint64)).sum(axis=1)
    return bits.astype(np.uint32), loud[1:].astype(np.float32)


def test_silence_skipped_and_batches_give_the_same_fingerprint_as_one_transform() -> None:
    # A clock jump's hole, filled with digital silence, between speech; batches of 2048
    # frames cut across it. Signed fingerprints must not change with how they are computed.
    pcm = _pcm(_speech(40.0, seed=7))
    pcm[int(8 * RATE) : int(31 * RATE)] = 0
    pcm[int(35 * RATE) : int(35 * RATE) + 900] = 0  # shorter than a frame: transformed
    bits, loud = _unbatched(pcm)
    fp = fingerprint(pcm)
    assert np.array_equal(fp.bits, bits)
    assert np.array_equal(fp.loudness, loud)
    silent = (fp.times > 9.0) & (fp.times < 30.0)
    assert silent.sum() > 1500 and not fp.bits[silent].any()
    assert np.all(fp.loudness[silent] == -60.0) and np.all(fp.tonality[silent] == 0.0)


def test_a_window_of_a_fingerprint_is_its_frames_there_starting_on_a_level_row() -> None:
    whole = _fp(_speech(), start=10.0)
    part = frames_between(whole, 12.0, 14.0)
    first = int(np.flatnonzero(whole.times >= 12.0)[0])
    first += -first % LEVEL_STEP  # up to the next level row
    assert part.times[0] == whole.times[first]
    assert part.times[-1] < 14.0 <= whole.times[first + len(part)]
    np.testing.assert_array_equal(part.bits, whole.bits[first : first + len(part)])
    np.testing.assert_array_equal(part.levels[0], whole.levels[first // LEVEL_STEP])
    assert len(frames_between(whole, 30.0, 40.0)) == 0  # nothing there
    assert AudioFingerprint.from_bytes(part.to_bytes()).times.tolist() == part.times.tolist()


def test_a_window_of_the_sound_is_the_same_sound_and_an_edit_inside_it_is_found() -> None:
    signal = _speech(seconds=10.0)
    muted = signal.copy()
    muted[int(5.0 * RATE) : int(5.6 * RATE)] = 0.0
    # A clip of 3.0-7.0 s: the copy's own fingerprint, on the recording's timeline.
    clip, edited = (_fp(s[int(3.0 * RATE) : int(7.0 * RATE)], start=3.0) for s in (signal, muted))
    reference = frames_between(_fp(signal), 3.3, 6.7)
    assert compare_audio(reference, clip).kind == "same"
    verdict = compare_audio(reference, edited)
    assert verdict.kind == "edited"
    assert abs(verdict.ranges[0][0] - 5.0) < 0.5 and abs(verdict.ranges[-1][1] - 5.6) < 0.5
