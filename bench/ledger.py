"""The custody log's costs against its size: appends, inclusion and consistency proofs.

Run from the repo root:

    /tmp/venvtest/bin/python bench/ledger.py [--quick] [--samples N] [--rounds N] [--seed N]

Full mode grows ``integrity.merkle.MerkleLog`` to 10^4, 10^5 and 10^6 leaves (``--quick``:
10^3, 10^4, 10^5), each size in a fresh log, with leaves that are ~300-byte canonical JSON
custody events (``custody_event``). At each size n it measures, in one run:

  append        mean and p99 µs of each append while growing to n (a timer around every call;
                the timer's own cost, printed in the header, is included), and the marginal cost
                at n: a batch of 1000 further appends under one timer, µs per append (best of
                ``--batches`` consecutive batches, so the last one starts at
                n + 1000 * (batches - 1), taken after the proofs);
  node hashes   SHA-256 node hashes per append while growing to n (mean and max) and in the
                batch at n, from a separate counted pass with ``node_hash`` wrapped in a counter
                (the timed passes run the unwrapped function); each append also costs one leaf
                hash, not counted here;
  inclusion     ``inclusion_proof(i)`` for ``--samples`` random i < n under one timer, µs per
                proof (best of ``--rounds``), the proof lengths, node hashes to make one, and
                µs per ``verify_inclusion``; every proof must verify;
  consistency   the same for ``consistency_proof(m, n)`` with random 0 < m < n and
                ``verify_consistency``;
and once: the floor, one ``hashlib.sha256`` of a typical leaf (and of a 65-byte node input), so
the figures can be read as multiples of it, and the peak RSS of the process at the end.
The timed rounds visit every size in turn (all logs are kept in memory), so a change in the
load of the (shared) machine affects all sizes alike; each figure is the best of its rounds.

It ends with ``growth <what> <smallest>-><largest>: X.XXx`` (time at the largest size / time at
the smallest, for the marginal append, inclusion proof and consistency proof): for logarithmic
cost that is about log(10^6)/log(10^4) = 1.5x, for linear cost 100x; and ``log2 proof length at
<largest>``, the longest inclusion proof (ceil(log2 n)). The output is also written to
``bench/results/ledger-<quick|full>.txt``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import math
import os
import platform
import random
import resource
import sys
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import vigil_verify.merkle  # noqa: E402

from bench.machine import command_output, cpu_model  # noqa: E402
from integrity import merkle  # noqa: E402
from integrity.merkle import MerkleLog, verify_consistency, verify_inclusion  # noqa: E402

RESULTS = ROOT / "bench" / "results"
FULL_SIZES = (10**4, 10**5, 10**6)
QUICK_SIZES = (10**3, 10**4, 10**5)
BATCH = 1000  # further appends timed at size n
SEGMENTS_PER_RECORDING = 32  # one ingest event, then segment events, then a catalogue event
MIB = 1024.0  # ru_maxrss is in KiB on Linux

NodeHash = Callable[[bytes, bytes], bytes]


# --------------------------------------------------------------------------- leaf data


def custody_event(seq: int) -> bytes:
    """Custody event ``seq`` as canonical JSON (sorted keys, no spaces), ~300 bytes.

    A recording's events are one ``ingest``, then ``segment`` events (10 s each, with the
    segment's SHA-256), then a ``catalogue``; ids and digests are derived from ``seq`` so every
    leaf differs. Built with an f-string, not ``json.dumps``, to keep generation cheap; the unit
    test checks that it is exactly what ``json.dumps(sort_keys=True, separators=(",", ":"))``
    gives.
    """
    recording, kind = divmod(seq, SEGMENTS_PER_RECORDING)
    rec_id = f"rec-{(recording * 0x9E3779B97F4A7C15) % (1 << 64):016x}"
    day, second = divmod(seq, 86400)
    at = (
        f"2026-{1 + day // 28 % 12:02d}-{1 + day % 28:02d}T{second // 3600:02d}:"
        f"{second // 60 % 60:02d}:{second % 60:02d}.{seq * 7919 % 1000000:06d}Z"
    )
    digest = hashlib.sha256(seq.to_bytes(8, "big")).hexdigest()
    if kind == 0:
        action = "ingest"
        actor = f"officer-{recording % 997:04d}"
        detail = (
            f'{{"bytes":{230_000_000 + recording % 7_000_000},"container":"mp4",'
            f'"device":"BC-{recording % 97:05d}","sha256":"{digest}"}}'
        )
    elif kind == SEGMENTS_PER_RECORDING - 1:
        action = "catalogue"
        actor = "system"
        detail = f'{{"duration_s":{10.0 * (kind - 1)},"segments":{kind - 1},"sha256":"{digest}"}}'
    else:
        action = "segment"
        actor = "system"
        detail = (
            f'{{"bytes":{7_000_000 + seq % 1_000_000},"duration_s":10.0,"index":{kind - 1},'
            f'"sha256":"{digest}","start_s":{10.0 * (kind - 1)}}}'
        )
    return (
        f'{{"action":"{action}","actor":"{actor}","at":"{at}","case_id":null,'
        f'"detail":{detail},"id":{seq + 1},"reason":null,"recording_id":"{rec_id}"}}'
    ).encode()


# --------------------------------------------------------------------------- counting


class NodeHashCounter:
    """Counts calls, passing them on to the real ``node_hash``."""

    def __init__(self, original: NodeHash) -> None:
        self.original = original
        self.calls = 0

    def __call__(self, left: bytes, right: bytes) -> bytes:
        self.calls += 1
        return self.original(left, right)


@contextlib.contextmanager
def counting_node_hashes() -> Iterator[NodeHashCounter]:
    """Wrap ``node_hash`` where ``MerkleLog`` (integrity.merkle) and the verifiers
    (vigil_verify.merkle) look it up; restored on exit."""
    modules = (merkle, vigil_verify.merkle)
    name = "node_hash"
    original: NodeHash = vigil_verify.merkle.node_hash
    counter = NodeHashCounter(original)
    for module in modules:
        setattr(module, name, counter)
    try:
        yield counter
    finally:
        for module in modules:
            setattr(module, name, original)


# --------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class AppendStats:
    mean_us: float  # per append while growing to n, per-call timer (its overhead included)
    p99_us: float
    marginal_us: float  # per append in a batch of BATCH at n, one timer, best round
    marginal_rounds_us: tuple[float, ...]
    hashes_mean: float  # node hashes per append while growing to n
    hashes_max: int
    marginal_hashes_mean: float  # node hashes per append in the batch at n
    marginal_hashes_max: int


@dataclass(frozen=True)
class ProofStats:
    make_us: float  # per proof, one timer around all samples, best round
    verify_us: float  # per verification, likewise
    len_min: int
    len_mean: float
    len_max: int
    make_hashes_max: int  # node hashes to make one proof
    verify_hashes_max: int  # node hashes to verify one
    samples: int
    verified: int  # how many verified (must be all)


@dataclass(frozen=True)
class SizeResult:
    n: int
    append: AppendStats
    inclusion: ProofStats
    consistency: ProofStats
    leaf_bytes_mean: float


def percentile(values: Sequence[int], q: float) -> int:
    """Nearest-rank percentile (q in (0, 100]) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def timer_overhead_ns(repeat: int = 200_000) -> float:
    """Median cost of one ``perf_counter_ns`` pair around nothing."""
    clock = time.perf_counter_ns
    samples = array("q")
    for _ in range(repeat):
        t0 = clock()
        t1 = clock()
        samples.append(t1 - t0)
    return float(percentile(samples, 50))


def best_per_call_us(run: Callable[[], int], calls: int, rounds: int) -> float:
    """Run ``run`` (which makes ``calls`` calls and returns the elapsed ns) ``rounds`` times;
    the fastest round's µs per call."""
    return min(run() for _ in range(rounds)) / calls / 1000.0


def counted_growth(n: int) -> tuple[float, int, float, int]:
    """Grow a fresh log to n, then BATCH more, counting node hashes per append."""
    log = MerkleLog()
    per_append = array("q")
    with counting_node_hashes() as counter:
        for seq in range(n + BATCH):
            before = counter.calls
            log.append(custody_event(seq))
            per_append.append(counter.calls - before)
    growth, batch = per_append[:n], per_append[n:]
    return sum(growth) / n, max(growth), sum(batch) / BATCH, max(batch)


def timed_growth(n: int) -> tuple[MerkleLog, float, float, float]:
    """Grow a fresh log to n with a timer around every append: (log, mean µs, p99 µs, mean
    leaf bytes). Leaves are made outside the timer."""
    log = MerkleLog()
    append = log.append
    clock = time.perf_counter_ns
    elapsed = array("q")
    leaf_bytes = 0
    for seq in range(n):
        data = custody_event(seq)
        leaf_bytes += len(data)
        t0 = clock()
        append(data)
        t1 = clock()
        elapsed.append(t1 - t0)
    return log, sum(elapsed) / n / 1000.0, percentile(elapsed, 99) / 1000.0, leaf_bytes / n


InclusionCase = tuple[bytes, int, list[bytes]]  # leaf hash, index, proof
ConsistencyCase = tuple[int, list[bytes], bytes]  # old size, proof, old root


class SizeBench:
    """One log grown to n, its random samples, and the best time of each operation so far.

    Each ``*_ns`` method times all samples of one operation under one timer and returns the
    elapsed ns; ``measure_sizes`` interleaves them across sizes round by round.
    """

    def __init__(self, n: int, rng: random.Random, samples: int) -> None:
        self.n = n
        self.samples = samples
        self.log, self.grow_mean_us, self.grow_p99_us, self.leaf_bytes = timed_growth(n)
        self.root = self.log.root()
        self.indices = [rng.randrange(n) for _ in range(samples)]
        self.old_sizes = [rng.randrange(1, n) for _ in range(samples)]
        self.inclusion: list[InclusionCase] = [
            (self.log.leaf(i), i, self.log.inclusion_proof(i)) for i in self.indices
        ]
        self.consistency: list[ConsistencyCase] = [
            (m, self.log.consistency_proof(m, n), self.log.root(m)) for m in self.old_sizes
        ]
        self.best_ns: dict[str, int] = {}
        self.marginal_us: list[float] = []

    def time_round(self) -> None:
        for name, run in (
            ("inclusion", self.inclusion_ns),
            ("verify_inclusion", self.verify_inclusion_ns),
            ("consistency", self.consistency_ns),
            ("verify_consistency", self.verify_consistency_ns),
        ):
            elapsed = run()
            self.best_ns[name] = min(elapsed, self.best_ns.get(name, elapsed))

    def per_call_us(self, name: str) -> float:
        return self.best_ns[name] / self.samples / 1000.0

    def inclusion_ns(self) -> int:
        make, indices, clock = self.log.inclusion_proof, self.indices, time.perf_counter_ns
        t0 = clock()
        for i in indices:
            make(i)
        return clock() - t0

    def verify_inclusion_ns(self) -> int:
        n, root, cases, clock = self.n, self.root, self.inclusion, time.perf_counter_ns
        t0 = clock()
        for leaf, i, proof in cases:
            verify_inclusion(leaf, i, n, proof, root)
        return clock() - t0

    def consistency_ns(self) -> int:
        make, n, old_sizes, clock = (
            self.log.consistency_proof,
            self.n,
            self.old_sizes,
            time.perf_counter_ns,
        )
        t0 = clock()
        for m in old_sizes:
            make(m, n)
        return clock() - t0

    def verify_consistency_ns(self) -> int:
        n, root, cases, clock = self.n, self.root, self.consistency, time.perf_counter_ns
        t0 = clock()
        for m, proof, old_root in cases:
            verify_consistency(m, n, proof, old_root, root)
        return clock() - t0

    def marginal_round(self) -> None:
        """Time BATCH further appends under one timer (leaves made first); grows the log."""
        start = self.log.size
        leaves = [custody_event(seq) for seq in range(start, start + BATCH)]
        append, clock = self.log.append, time.perf_counter_ns
        t0 = clock()
        for data in leaves:
            append(data)
        self.marginal_us.append((clock() - t0) / BATCH / 1000.0)

    def counted_proofs(self) -> tuple[ProofStats, ProofStats]:
        """Check every proof at size n (made afresh, counting node hashes) and summarise."""
        log, n, root = self.log, self.n, self.root
        inc_make = inc_verify = inc_ok = con_make = con_verify = con_ok = 0
        with counting_node_hashes() as counter:
            for leaf, i, _ in self.inclusion:
                before = counter.calls
                proof = log.inclusion_proof(i, n)
                inc_make = max(inc_make, counter.calls - before)
                before = counter.calls
                inc_ok += verify_inclusion(leaf, i, n, proof, root)
                inc_verify = max(inc_verify, counter.calls - before)
            for m, _, old_root in self.consistency:
                before = counter.calls
                proof = log.consistency_proof(m, n)
                con_make = max(con_make, counter.calls - before)
                before = counter.calls
                con_ok += verify_consistency(m, n, proof, old_root, root)
                con_verify = max(con_verify, counter.calls - before)
        inclusion = self._proof_stats(
            "inclusion", [len(c[2]) for c in self.inclusion], inc_make, inc_verify, inc_ok
        )
        consistency = self._proof_stats(
            "consistency", [len(c[1]) for c in self.consistency], con_make, con_verify, con_ok
        )
        return inclusion, consistency

    def _proof_stats(
        self, name: str, lengths: list[int], make_hashes: int, verify_hashes: int, verified: int
    ) -> ProofStats:
        return ProofStats(
            make_us=self.per_call_us(name),
            verify_us=self.per_call_us(f"verify_{name}"),
            len_min=min(lengths),
            len_mean=sum(lengths) / len(lengths),
            len_max=max(lengths),
            make_hashes_max=make_hashes,
            verify_hashes_max=verify_hashes,
            samples=self.samples,
            verified=verified,
        )


def warm_up() -> None:
    """A small throwaway run, so the first size does not pay for a cold interpreter."""
    bench = SizeBench(4096, random.Random(0), 200)
    bench.time_round()
    bench.marginal_round()


def measure_sizes(
    sizes: Sequence[int],
    *,
    rng: random.Random,
    samples: int = 1000,
    rounds: int = 9,
    batches: int = 5,
) -> list[SizeResult]:
    """Everything at each log size (each >= 2); see the module docstring.

    Node hashes are counted first, in a separate pass per size; then each size's log is grown
    with per-call timers and kept; then the proof timings run in ``rounds`` rounds, each round
    visiting every size (so that a change in the machine's load hits all sizes alike), best
    round kept; then ``batches`` marginal batches, likewise interleaved (they grow the logs
    past n, so they come last, after the proofs at exactly n are checked).
    """
    if any(n < 2 for n in sizes):
        raise ValueError("sizes must be at least 2 (a consistency proof needs 0 < m < n)")
    if samples < 1 or rounds < 1 or batches < 1:
        raise ValueError("samples, rounds and batches must be at least 1")
    counted = [counted_growth(n) for n in sizes]
    gc.collect()
    benches = [SizeBench(n, rng, samples) for n in sizes]
    for _ in range(rounds):
        for bench in benches:
            bench.time_round()
    proofs = [bench.counted_proofs() for bench in benches]
    for _ in range(batches):
        for bench in benches:
            bench.marginal_round()
    results: list[SizeResult] = []
    for bench, (h_mean, h_max, m_mean, m_max), (inclusion, consistency) in zip(
        benches, counted, proofs, strict=True
    ):
        append = AppendStats(
            mean_us=bench.grow_mean_us,
            p99_us=bench.grow_p99_us,
            marginal_us=min(bench.marginal_us),
            marginal_rounds_us=tuple(bench.marginal_us),
            hashes_mean=h_mean,
            hashes_max=h_max,
            marginal_hashes_mean=m_mean,
            marginal_hashes_max=m_max,
        )
        results.append(SizeResult(bench.n, append, inclusion, consistency, bench.leaf_bytes))
    return results


@dataclass(frozen=True)
class Floor:
    leaf_bytes: int
    sha256_leaf_us: float  # hashlib.sha256(leaf).digest()
    sha256_node_us: float  # hashlib.sha256(65 bytes).digest(): what node_hash hashes


def measure_floor(repeat: int = 200_000, rounds: int = 5) -> Floor:
    leaf = custody_event(SEGMENTS_PER_RECORDING // 2)  # a segment event, the usual kind
    node = b"\x01" + bytes(64)
    sha256 = hashlib.sha256
    clock = time.perf_counter_ns

    def loop(data: bytes) -> Callable[[], int]:
        def run() -> int:
            t0 = clock()
            for _ in range(repeat):
                sha256(data).digest()
            return clock() - t0

        return run

    return Floor(
        leaf_bytes=len(leaf),
        sha256_leaf_us=best_per_call_us(loop(leaf), repeat, rounds),
        sha256_node_us=best_per_call_us(loop(node), repeat, rounds),
    )


# --------------------------------------------------------------------------- report


def environment_lines() -> list[str]:
    commit = command_output(["git", "rev-parse", "--short", "HEAD"])
    dirty = command_output(["git", "status", "--porcelain", "--untracked-files=no"])
    changed = len(dirty.splitlines()) if dirty not in ("unknown", "") else 0
    load = os.getloadavg()
    return [
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC",
        f"git commit: {commit}"
        + (f" (+{changed} modified tracked files in the working tree)" if changed else ""),
        f"cpu: {cpu_model()}, {os.cpu_count()} cores; python {platform.python_version()}"
        f" ({platform.python_implementation()}), {hashlib.sha256().name} from hashlib",
        f"load average at start (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
    ]


def exponent(n: int) -> str:
    """10**k as '1ek', anything else as itself."""
    k = round(math.log10(n))
    return f"1e{k}" if 10**k == n else str(n)


def ratio(small: float, large: float) -> str:
    return f"{large / small:.2f}x" if small > 0 else "n/a"


def report(
    env: list[str],
    floor: Floor,
    timer_ns: float,
    results: list[SizeResult],
    rounds: int,
    seed: int,
    wall_s: float,
) -> list[str]:
    """The printed report: header, append table, proof table, growth lines, peak RSS."""
    f = floor.sha256_leaf_us
    samples = results[0].inclusion.samples
    batches = len(results[0].append.marginal_rounds_us)
    lines = [
        *env,
        f"leaves: canonical JSON custody events, {floor.leaf_bytes} bytes typical"
        f" ({', '.join(f'{r.leaf_bytes_mean:.0f}' for r in results)} mean per size);"
        f" each size in a fresh MerkleLog; seed {seed}",
        f"floor: hashlib.sha256(leaf).digest() {f:.3f} µs ({floor.leaf_bytes} bytes);"
        f" of a 65-byte node input {floor.sha256_node_us:.3f} µs  (x sha = µs / the leaf floor)",
        f"timer: a perf_counter_ns pair costs {timer_ns:.0f} ns, included in the per-call"
        f" append mean/p99; the other times use one timer per batch of {BATCH} appends"
        f" (best of {batches}) or of {samples} proofs/verifications (best of {rounds} rounds)",
        "",
        "append (node hashes counted in a separate pass; each append also does 1 leaf hash)",
        f"{'size':>8}  {'grow mean µs':>12} {'p99 µs':>7}  {'at n µs':>7} {'x sha':>6}"
        f"  {'node hashes/append: grow mean':>29} {'max':>4}  {'at n mean':>9} {'max':>4}"
        f"  {'log2 n':>6}",
    ]
    for r in results:
        a = r.append
        lines.append(
            f"{r.n:>8}  {a.mean_us:>12.3f} {a.p99_us:>7.3f}  {a.marginal_us:>7.3f}"
            f" {a.marginal_us / f:>6.2f}  {a.hashes_mean:>29.4f} {a.hashes_max:>4}"
            f"  {a.marginal_hashes_mean:>9.3f} {a.marginal_hashes_max:>4}"
            f"  {math.log2(r.n):>6.2f}"
        )
    lines += [
        f"  at n: per append in a batch of {BATCH} further appends (hashes: the first batch);"
        " batches (µs): "
        + "; ".join(
            f"{exponent(r.n)} " + " ".join(f"{x:.3f}" for x in r.append.marginal_rounds_us)
            for r in results
        ),
        "",
        f"proofs ({samples} random indices i < n / old sizes 0 < m < n at size n; len = hashes"
        " in the proof, at most ceil(log2 n), +1 for consistency; hashes = most node hashes to"
        " make / verify one)",
        f"{'size':>8} {'kind':<11}  {'make µs':>8} {'x sha':>6}  {'verify µs':>9} {'x sha':>6}"
        f"  {'len min/mean/max':>17}  {'ceil log2 n':>11}  {'hashes make/verify':>18}"
        f"  {'verified':>9}",
    ]
    for r in results:
        for kind, p in (("inclusion", r.inclusion), ("consistency", r.consistency)):
            lens = f"{p.len_min}/{p.len_mean:.1f}/{p.len_max}"
            lines.append(
                f"{r.n:>8} {kind:<11}  {p.make_us:>8.3f} {p.make_us / f:>6.1f}"
                f"  {p.verify_us:>9.3f} {p.verify_us / f:>6.1f}  {lens:>17}"
                f"  {math.ceil(math.log2(r.n)):>11}"
                f"  {f'{p.make_hashes_max}/{p.verify_hashes_max}':>18}"
                f"  {f'{p.verified}/{p.samples}':>9}"
            )
    first, last = results[0], results[-1]
    span = f"{exponent(first.n)}->{exponent(last.n)}"
    log_ratio = math.log(last.n) / math.log(first.n)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    load = os.getloadavg()
    lines += [
        "",
        f"growth append {span}: {ratio(first.append.marginal_us, last.append.marginal_us)}",
        f"growth inclusion {span}: {ratio(first.inclusion.make_us, last.inclusion.make_us)}",
        f"growth consistency {span}: {ratio(first.consistency.make_us, last.consistency.make_us)}",
        f"log2 proof length at {exponent(last.n)}: {last.inclusion.len_max}",
        f"  (time at {exponent(last.n)} / time at {exponent(first.n)}; O(log n) would be"
        f" log({exponent(last.n)})/log({exponent(first.n)}) = {log_ratio:.2f}x, O(n)"
        f" {last.n / first.n:.0f}x; append is amortised O(1): fewer than one node hash on"
        " average)",
        "  the same growth for verification (runs in the client):"
        f" inclusion {ratio(first.inclusion.verify_us, last.inclusion.verify_us)},"
        f" consistency {ratio(first.consistency.verify_us, last.consistency.verify_us)};"
        f" for the per-call append mean while growing:"
        f" {ratio(first.append.mean_us, last.append.mean_us)}",
        f"peak RSS: {peak / MIB:.1f} MiB (ru_maxrss, whole process);"
        f" wall {wall_s:.1f} s; load average at end (1/5/15 min):"
        f" {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
    ]
    return lines


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    parser.add_argument(
        "--quick", action="store_true", help="sizes 1e3, 1e4, 1e5 (default 1e4, 1e5, 1e6)"
    )
    parser.add_argument("--samples", type=int, default=1000, help="proofs per size (1000)")
    parser.add_argument("--rounds", type=int, default=9, help="proof timing rounds, best kept (9)")
    parser.add_argument(
        "--batches", type=int, default=5, help=f"batches of {BATCH} appends at n, best kept (5)"
    )
    parser.add_argument("--seed", type=int, default=6962, help="random seed for the samples")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    env = environment_lines()
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    rng = random.Random(args.seed)
    timer_ns = timer_overhead_ns()
    floor = measure_floor()
    warm_up()
    results = measure_sizes(
        sizes, rng=rng, samples=args.samples, rounds=args.rounds, batches=args.batches
    )
    lines = report(
        env,
        floor,
        timer_ns,
        results,
        args.rounds,
        args.seed,
        time.perf_counter() - started,
    )
    text = "\n".join(lines) + "\n"
    print(text, end="")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"ledger-{'quick' if args.quick else 'full'}.txt").write_text(text)
    failed = [r.n for r in results for p in (r.inclusion, r.consistency) if p.verified < p.samples]
    if failed:
        print(f"PROOFS FAILED TO VERIFY at sizes {sorted(set(failed))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
