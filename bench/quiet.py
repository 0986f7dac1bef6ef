#!/usr/bin/env python3
"""quiet.py - the quiet-gated benchmark of mlx-gen against llama.cpp (make bench).

Every measurement is one process (ours: bench/bin/bench_gen, prefill of PP tokens, decode of TG
tokens after them, then BATCH sequences decoded together; llama.cpp: its own llama-bench through
bench/peer_llamabench.py, pp PP and tg TG at depth PP).  Around each one the script reads
/proc/pressure/cpu: the "some" stall time accumulated while it ran, as a share of its wall time, is
the run's stall.  A run whose stall exceeds --max-stall (percent) is thrown away and redone after the
CPU has been quiet again (avg10 <= --quiet) for a few seconds, up to --tries times; a run that never
gets a quiet machine is kept in the raw file marked rejected and left out of the table.  Engines
alternate within each round (ours float, ours int8, llama.cpp, then the next model), so a slow
phase of the machine lands on every engine alike.

The table prints, per model and engine, min / median / max of the accepted runs, the ratio of the
medians to llama.cpp, our batch-8 decode against our single decode, and decode's share of the
bandwidth roofline (STREAM triad bandwidth / (weight bytes + the K/V bytes a decode step reads)).
Its header names the CPU, the llama.cpp commit and build flags (bench/bin/llama-cpp.txt, written by
tools/build-llama-cpp.sh) and the stall of every kept run.

--neighbours N is the contention benchmark: N busy processes (a shell loop each, one core's worth)
run beside both engines for the whole measurement, nothing is gated, and the table is headed as
contended.  Its figures are never mixed with quiet ones (separate --out).

usage: quiet.py [--pairs "llama1b-q4g64:Q4_0 qwen06b-q4g64:Q4_0"] [--rounds 3] [--threads 2]
                [--pp 512] [--tg 128] [--batch 8] [--engines float,int8,llama] [--max-stall 3]
                [--quiet 2] [--tries 4] [--neighbours 0] [--out bench/out/quiet.jsonl]
       quiet.py [--max-stall 3] [--quiet 2] [--tries 4] [--record FILE.jsonl] --gate -- CMD ARGS...
                (any benchmark command, rerun until one run was quiet; bench/stt/run.sh uses it,
                bench/embed/bench.py gates its in-process runs with psi() and wait_quiet())
       quiet.py --table FILE.jsonl [FILE2.jsonl]   (print the table of earlier runs; with two
                files, the second is a contended run shown beside the first)
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PSI = "/proc/pressure/cpu"


def psi():
    """(avg10 percent, total microseconds) of the CPU's "some" line; (None, None) without PSI."""
    try:
        with open(PSI) as f:
            for line in f:
                if line.startswith("some"):
                    kv = dict(p.split("=") for p in line.split()[1:])
                    return float(kv["avg10"]), int(kv["total"])
    except OSError:
        pass
    return None, None


def busy_s():
    """CPU seconds all processes have run (user, nice, system, irq, softirq; /proc/stat), or None."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:8]]
        return (v[0] + v[1] + v[2] + v[5] + v[6]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None


def others_pct(busy0, busy1, own_cpu_s, wall):
    """CPU the rest of the machine used while a run took `wall` seconds and `own_cpu_s` of CPU
    itself, in percent of one core (None without /proc/stat).  A run whose stall comes from its
    own threads (more of them than cores: a peer's tokenizer or OpenMP pool) has a high stall but
    no neighbour: it is kept when the others' share is at most --max-others."""
    if busy0 is None or busy1 is None or wall <= 0:
        return None
    return max(0.0, 100.0 * (busy1 - busy0 - own_cpu_s) / wall)


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def load1():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def wait_quiet(limit, settle=3.0, timeout=300.0):
    """Waits until avg10 <= limit has held for `settle` seconds (or timeout); returns avg10."""
    t0 = time.time()
    ok_since = None
    while True:
        a, _ = psi()
        if a is None:
            return None
        now = time.time()
        if a <= limit:
            ok_since = ok_since or now
            if now - ok_since >= settle:
                return a
        else:
            ok_since = None
        if now - t0 > timeout:
            return a
        time.sleep(0.5)


def run_json(cmd, env=None):
    """Runs cmd, returns (last JSON line of its stdout as dict, wall s, stall percent, avg10 before,
    avg10 after, the other processes' CPU in percent of one core)."""
    a0, t0 = psi()
    b0, c0 = busy_s(), children_cpu()
    w0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.time() - w0
    a1, t1 = psi()
    oth = others_pct(b0, busy_s(), children_cpu() - c0, wall)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {p.stderr.strip()[-400:]}")
    rows = [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]
    stall = None if t0 is None else 100.0 * (t1 - t0) / 1e6 / wall
    return rows[-1], wall, stall, a0, a1, oth


def llama_info():
    p = os.path.join(ROOT, "bench", "bin", "llama-cpp.txt")
    if not os.path.exists(p):
        return "llama.cpp: bench/bin/llama-cpp.txt missing (make llama-cpp)"
    return open(p).read().strip()


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def measure(a):
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    out = open(a.out, "w")

    def emit(d):
        out.write(json.dumps(d) + "\n")
        out.flush()

    neigh = []
    for _ in range(a.neighbours):
        neigh.append(subprocess.Popen(["sh", "-c", "while :; do :; done"]))
    contended = a.neighbours > 0
    try:
        emit({"meta": {"cpu": cpu_name(), "threads": a.threads, "pp": a.pp, "tg": a.tg, "batch": a.batch,
                       "neighbours": a.neighbours, "max_stall": a.max_stall, "quiet": a.quiet,
                       "llama": llama_info(), "start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                       "load1": load1(), "psi_avg10": psi()[0]}})

        def gated(kind, cmd, env, extra):
            for attempt in range(1, a.tries + 1):
                if not contended:
                    wait_quiet(a.quiet)
                try:
                    d, wall, stall, a0, a1, oth = run_json(cmd, env)
                except RuntimeError as ex:  # one failed engine does not end the benchmark
                    emit(dict(kind="error", error=str(ex), **extra))
                    print(f"  {ex}", file=sys.stderr)
                    return None
                ok = contended or stall is None or stall <= a.max_stall or (oth is not None and oth <= a.max_others)
                rec = dict(d, kind=kind, attempt=attempt, wall_s=round(wall, 2),
                           stall_pct=None if stall is None else round(stall, 2),
                           others_pct=None if oth is None else round(oth, 2), psi_before=a0, psi_after=a1, load1=load1(), accepted=ok, **extra)
                emit(rec)
                print(f"  {kind} {extra.get('model', '')} {extra.get('engine_key', '')}: "
                      f"stall {rec['stall_pct']}%{'' if ok else ' -> redo'}", file=sys.stderr)
                if ok:
                    return rec
            return None

        triad = [os.path.join(ROOT, "bench", "bin", "triad"), str(a.threads), "256", "5"]
        gated("triad", triad, None, {})
        for r in range(1, a.rounds + 1):
            for pair in a.pairs.split():
                m, g = pair.split(":")
                d = os.path.join(ROOT, "bench", "models", m)
                wb = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if f.endswith(".safetensors"))
                for eng in a.engines.split(","):
                    extra = {"model": m, "round": r, "weight_bytes": wb, "engine_key": eng}
                    if eng in ("float", "int8"):
                        env = dict(os.environ, MT_QMATH=eng)
                        cmd = [os.path.join(ROOT, "bench", "bin", "bench_gen"), d, str(a.threads), str(a.pp),
                               str(a.tg), str(a.batch)]
                        gated("run", cmd, env, extra)
                    elif eng == "llama":
                        gg = os.path.join(ROOT, "bench", "models", f"{m.split('-')[0]}-{g}.gguf")
                        if not os.path.exists(gg):
                            print(f"  no {gg}: llama.cpp skipped", file=sys.stderr)
                            continue
                        cmd = [sys.executable, os.path.join(ROOT, "bench", "peer_llamabench.py"), gg,
                               str(a.threads), str(a.pp), str(a.tg), "1"]
                        gated("run", cmd, None, dict(extra, gguf=g))
        gated("triad", triad, None, {})
        emit({"end": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "load1": load1(), "psi_avg10": psi()[0]})
    finally:
        for p in neigh:
            p.kill()
    out.close()


def fmt(v, nd=1):
    return "-" if v is None else f"{v:.{nd}f}"


def mmm(xs, nd=1):
    """"min/median/max" of xs with nd decimals (the benchmark tables' cells)."""
    xs = sorted(xs)
    return f"{xs[0]:.{nd}f}/{statistics.median(xs):.{nd}f}/{xs[-1]:.{nd}f}"


def stats(xs):
    xs = sorted(x for x in xs if x)
    if not xs:
        return None
    return xs[0], statistics.median(xs), xs[-1]


def load(path):
    meta, runs, triad, rejected, end = {}, {}, [], [], {}
    for line in open(path):
        if not line.startswith("{"):
            continue
        d = json.loads(line)
        if "meta" in d:
            meta = d["meta"]
        elif "end" in d:
            end = d
        elif d.get("kind") == "triad" and d.get("accepted"):
            triad.append(d["triad_gbs"])
        elif d.get("kind") == "run":
            if not d.get("accepted"):
                rejected.append(d)
                continue
            runs.setdefault(d["model"], {}).setdefault(d["engine_key"], []).append(d)
    return meta, runs, triad, rejected, end


def table(path, contended_path=None):
    meta, runs, triad, rejected, end = load(path)
    cont = load(contended_path)[1] if contended_path else {}
    title = "CONTENDED" if meta.get("neighbours") else "quiet-gated"
    print(f"# mlx-gen vs llama.cpp, {title} ({path})")
    print(f"CPU: {meta.get('cpu')}; threads {meta.get('threads')}; pp {meta.get('pp')}, tg {meta.get('tg')} "
          f"(decode at depth pp), batch {meta.get('batch')}; {meta.get('start')} .. {end.get('end')}")
    if meta.get("neighbours"):
        print(f"neighbours: {meta['neighbours']} busy shell loop(s) on the same cores for the whole run; no gating")
    else:
        print(f"gate: a run is kept when its CPU stall (/proc/pressure/cpu some) <= {meta.get('max_stall')}% of its "
              f"wall time, started after avg10 <= {meta.get('quiet')}%; {len(rejected)} run(s) redone")
    st = [d["stall_pct"] for m in runs.values() for e in m.values() for d in e if d.get("stall_pct") is not None]
    if st:
        print(f"stall of kept runs: min {min(st):.2f}% median {statistics.median(st):.2f}% max {max(st):.2f}%; "
              f"avg10 at start {meta.get('psi_avg10')}%, at end {end.get('psi_avg10')}%")
    bw = max(triad) if triad else None
    print(f"STREAM triad: {', '.join(f'{b:.1f}' for b in triad)} GB/s")
    for line in meta.get("llama", "").splitlines():
        if line.startswith(("llama.cpp", "cmake flags", "compiler")):
            print(f"llama.cpp build: {line}")
    names = {"float": "ours float", "int8": "ours int8", "llama": "llama.cpp"}
    print()
    hdr = f"{'model':<15} {'engine':<11} {'pp tok/s min/med/max':>24} {'tg tok/s min/med/max':>24} {'pp x':>6} {'tg x':>6} {'tg roof':>8} {'b8/tg':>6}"
    if cont:
        hdr += f" {'tg contended':>13} {'slowdown':>9}"
    print(hdr)
    print("-" * len(hdr))
    for m, r in runs.items():
        ll = r.get("llama", [])
        lpp = stats([d["pp_tps"] for d in ll])
        ltg = stats([d["tg_tps"] for d in ll])
        for e in ("float", "int8", "llama"):
            if e not in r:
                continue
            ds = r[e]
            pp = stats([d["pp_tps"] for d in ds])
            tg = stats([d["tg_tps"] for d in ds])
            rpp = pp[1] / lpp[1] if pp and lpp and e != "llama" else None
            rtg = tg[1] / ltg[1] if tg and ltg and e != "llama" else None
            roof = None
            kv = next((d["kv_pos_bytes"] for d in r.get("float", []) + r.get("int8", []) if d.get("kv_pos_bytes")), 0)
            if bw and tg:
                per_tok = ds[0]["weight_bytes"] + kv * (meta["pp"] + (meta["tg"] - 1) / 2)
                roof = 100.0 * tg[1] * per_tok / (bw * 1e9)
            b8 = stats([d.get("batch_tps") for d in ds])
            b8r = b8[1] / tg[1] if b8 and tg else None
            line = (f"{m:<15} {names[e]:<11} {fmt(pp[0]) + '/' + fmt(pp[1]) + '/' + fmt(pp[2]) if pp else '-':>24} "
                    f"{fmt(tg[0], 2) + '/' + fmt(tg[1], 2) + '/' + fmt(tg[2], 2) if tg else '-':>24} "
                    f"{fmt(rpp, 2):>6} {fmt(rtg, 2):>6} {fmt(roof, 0) + '%' if roof else '-':>8} {fmt(b8r, 2):>6}")
            if cont:
                ctg = stats([d["tg_tps"] for d in cont.get(m, {}).get(e, [])])
                line += f" {fmt(ctg[1], 2) if ctg else '-':>13} {fmt(tg[1] / ctg[1], 1) + 'x' if ctg and tg else '-':>9}"
            print(line)
        print(f"{'':<15} ({len(ds)} kept runs per engine; weights {ds[0]['weight_bytes'] / 1e6:.0f} MB)")
    print("pp x / tg x: our median over llama.cpp's median (> 1: ours faster).  tg roof: decode's share of the "
          "triad roofline counting weights + K/V read per step.  b8/tg: our batch-8 decode tokens/s over our "
          "single-sequence decode.")


def record(path, stdout, info):
    """--record: appends each JSON object line of a try's stdout to path, with the try's gate
    information merged in as "gate" (rejected tries too, marked accepted: false)."""
    with open(path, "a") as f:
        for line in stdout.splitlines():
            if line.startswith("{"):
                d = json.loads(line)
                d["gate"] = info["gate"]
                f.write(json.dumps(d) + "\n")


def gate_cmd(a, cmd):
    """--gate: runs cmd (any benchmark command) until one run has a stall <= --max-stall, waiting
    for a quiet CPU before each try; passes its stdout through and prints one JSON line
    {"gate": {...}} (stall, tries, avg10 before/after, load) on stderr.  Exit status: cmd's, or 3
    when no try was quiet (the last try's output is still printed, marked).  With --record FILE,
    every try's JSON stdout lines are appended to FILE with the gate line merged in."""
    for attempt in range(1, a.tries + 1):
        wait_quiet(a.quiet)
        a0, t0 = psi()
        b0, c0 = busy_s(), children_cpu()
        w0 = time.time()
        p = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.time() - w0
        a1, t1 = psi()
        oth = others_pct(b0, busy_s(), children_cpu() - c0, wall)
        stall = None if t0 is None else 100.0 * (t1 - t0) / 1e6 / wall
        ok = stall is None or stall <= a.max_stall or (oth is not None and oth <= a.max_others)
        info = {"gate": {"cmd": " ".join(cmd), "try": attempt, "wall_s": round(wall, 2),
                         "stall_pct": None if stall is None else round(stall, 2),
                         "others_pct": None if oth is None else round(oth, 2), "psi_before": a0,
                         "psi_after": a1, "load1": load1(), "accepted": ok}}
        print(json.dumps(info), file=sys.stderr)
        if a.record and p.returncode == 0:
            record(a.record, p.stdout, info)
        if ok or attempt == a.tries or p.returncode != 0:
            sys.stdout.write(p.stdout)
            sys.stderr.write(p.stderr)
            if not ok:
                print(f"quiet.py: no quiet run of {cmd[0]} in {a.tries} tries (last stall {stall:.1f}%)",
                      file=sys.stderr)
                return 3
            return p.returncode
    return 3


def main():
    if "--gate" in sys.argv:
        i = sys.argv.index("--gate")
        ap = argparse.ArgumentParser()
        ap.add_argument("--max-stall", type=float, default=3.0)
        ap.add_argument("--max-others", type=float, default=5.0)
        ap.add_argument("--quiet", type=float, default=2.0)
        ap.add_argument("--tries", type=int, default=4)
        ap.add_argument("--record", default=None)
        a = ap.parse_args(sys.argv[1:i])
        cmd = sys.argv[i + 1:]
        if cmd and cmd[0] == "--":
            cmd = cmd[1:]
        sys.exit(gate_cmd(a, cmd))
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", default="llama1b-q4g64:Q4_0 qwen06b-q4g64:Q4_0")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pp", type=int, default=512)
    ap.add_argument("--tg", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--engines", default="float,int8,llama")
    ap.add_argument("--max-stall", type=float, default=3.0)
    ap.add_argument("--max-others", type=float, default=5.0)
    ap.add_argument("--quiet", type=float, default=2.0)
    ap.add_argument("--tries", type=int, default=4)
    ap.add_argument("--neighbours", type=int, default=0)
    ap.add_argument("--out", default=None)
    ap.add_argument("--table", nargs="+", default=None)
    a = ap.parse_args()
    if a.table:
        table(a.table[0], a.table[1] if len(a.table) > 1 else None)
        return
    if a.out is None:
        a.out = os.path.join(ROOT, "bench", "out", "contended.jsonl" if a.neighbours else "quiet.jsonl")
    measure(a)
    table(a.out)


if __name__ == "__main__":
    main()
