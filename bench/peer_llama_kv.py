#!/usr/bin/env python3
"""peer_llama_kv.py - llama.cpp (through llama-cpp-python) beside bench/bench_kv.c:
one JSON line per measurement, the same prompt ids, the same CPU-pressure rule
(wait while /proc/pressure/cpu "some avg10" > $KV_QUIET, redo a span whose stall
exceeded $KV_STALL percent, up to $KV_RETRIES times).

  peer_llama_kv.py ttft  MODEL.gguf [threads=2] [prefix=2000] [suffix=20] [rounds=3] [dir=bench/out]
      time to first token: the prefix's state file (llama_state_load_file, the
      file-based form of Llama.save_state/load_state) + the suffix, against the whole
      prompt computed
  peer_llama_kv.py depth MODEL.gguf [threads=2] [depth=4096] [tg=32] [types=f16,q8_0,q4_0]
      decode speed of tg greedy tokens after a depth-token prefill, per cache type
      (-ctk/-ctv; flash attention on for every type, as llama.cpp needs it for a
      quantized V cache); KV bytes counted from the types' block sizes
  peer_llama_kv.py ppl   MODEL.gguf IDS.jsonl [threads=2] [types=f16,q8_0,q4_0]
      perplexity over the windows in IDS.jsonl (bench_kv ppl ... ids_out), every token
      after the first of a window predicted, logits_all; KL divergence from the f16
      cache's distribution and top-1 agreement
  peer_llama_kv.py gguf-f32 MLX_DIR OUT.gguf
      a float32 GGUF of an MLX llama folder's weights (quantized tensors dequantized by
      mlx, exactly the weights mlx-gen computes with): for the bundled tinydocs model,
      whose q4 group-64 weights have no lossless GGUF type and whose config keeps
      rope_theta under rope_parameters
"""
import json
import os
import resource
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prompt_ids import prompt_ids  # noqa: E402

QUIET = float(os.environ.get("KV_QUIET", 5))
STALL = float(os.environ.get("KV_STALL", 5))
RETRIES = int(os.environ.get("KV_RETRIES", 3))
MAXWAIT = float(os.environ.get("KV_MAXWAIT", 600))


def psi():
    try:
        line = open("/proc/pressure/cpu").readline().split()
        d = dict(x.split("=") for x in line[1:])
        return float(d["avg10"]), int(d["total"])
    except OSError:
        return -1.0, 0


def measure(fn):
    """fn(start) -> result; calls start() where the timed span begins; returns (secs, result, info)."""
    tries = 0
    while True:
        tries += 1
        w0 = time.perf_counter()
        while psi()[0] > QUIET and time.perf_counter() - w0 < MAXWAIT:
            time.sleep(20)
        waited = time.perf_counter() - w0
        st = {}

        def start():
            st["a10"], st["tot"] = psi()
            st["t0"] = time.perf_counter()

        res = fn(start)
        t = time.perf_counter() - st["t0"]
        a10, tot = psi()
        stall = 100.0 * (tot - st["tot"]) * 1e-6 / t if t > 0 else 0.0
        info = {"avg10_before": st["a10"], "avg10_after": a10, "stall_pct": round(stall, 2),
                "waited_s": round(waited), "tries": tries}
        if stall <= STALL or tries > RETRIES:
            return t, res, info


def seeded_ids(n, seed):
    x, out = seed, []
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out.append(1000 + x % 20000)
    return out


def emit(d):
    print(json.dumps(d), flush=True)


def name_of(path):
    return os.path.basename(path).rsplit(".", 1)[0]


TYPES = {"f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 8}
BYTES_PER_VALUE = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32, "q4_1": 20 / 32}


def open_llm(path, threads, n_ctx, n_batch, kv="f16", logits_all=False):
    from llama_cpp import Llama
    kw = dict(model_path=path, n_threads=threads, n_threads_batch=threads, n_ctx=n_ctx, n_batch=n_batch,
              n_ubatch=min(n_batch, 512), verbose=False, logits_all=logits_all, type_k=TYPES[kv], type_v=TYPES[kv])
    try:
        return Llama(flash_attn=True, **kw)
    except TypeError:  # newer releases: flash_attn_type
        import llama_cpp
        return Llama(flash_attn_type=llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED, **kw)


def clear(llm):
    llm.reset()
    import llama_cpp
    try:
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(llm._ctx.ctx), True)
    except AttributeError:
        llm._ctx.kv_cache_clear()


def last_logits(llm):
    import llama_cpp
    ptr = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
    return np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),))


def cmd_ttft(a):
    import ctypes
    import llama_cpp
    path = a[0]
    threads = int(a[1]) if len(a) > 1 else 2
    npf = int(a[2]) if len(a) > 2 else 2000
    ns = int(a[3]) if len(a) > 3 else 20
    rounds = int(a[4]) if len(a) > 4 else 3
    d = a[5] if len(a) > 5 else "bench/out"
    n = npf + ns
    ids = prompt_ids(n)
    llm = open_llm(path, threads, n + 64, 2048)
    name = name_of(path)
    sfile = os.path.join(d, f"llama-state-{name}-p{npf}.bin")
    clear(llm)
    llm.eval(ids[:npf])
    arr = (llama_cpp.llama_token * npf)(*ids[:npf])
    llama_cpp.llama_state_save_file(llm._ctx.ctx, sfile.encode(), arr, npf)
    emit({"bench": "ttft_file", "engine": "llama.cpp", "model": name, "tokens": npf, "kv": "f16",
          "raw_bytes": os.path.getsize(sfile)})
    want = None
    for r in range(rounds):
        def full(start):
            clear(llm)
            start()
            llm.eval(ids)
            return int(np.argmax(last_logits(llm)))
        t, want, info = measure(full)
        emit({"bench": "ttft", "engine": "llama.cpp", "model": name, "case": "recompute", "round": r, "s": t,
              "prompt": n, "computed": n, "token": want, **info})

        def from_file(start):
            clear(llm)
            start()
            out = (llama_cpp.llama_token * (n + 64))()
            cnt = ctypes.c_size_t(0)
            ok = llama_cpp.llama_state_load_file(llm._ctx.ctx, sfile.encode(), out, n + 64, ctypes.byref(cnt))
            assert ok and cnt.value == npf, "llama_state_load_file failed"
            llm.n_tokens = npf
            llm.input_ids[:npf] = ids[:npf]
            t1 = time.perf_counter()
            llm.eval(ids[npf:])
            tok = int(np.argmax(last_logits(llm)))
            return tok, time.perf_counter() - t1
        t, (tok, tf), info = measure(from_file)
        emit({"bench": "ttft", "engine": "llama.cpp", "model": name, "case": "file", "round": r, "s": t,
              "prompt": n, "computed": ns, "load_s": round(t - tf, 4), "forward_s": round(tf, 4),
              "token": tok, "same_token": tok == want, **info})


def cmd_depth(a):
    path = a[0]
    threads = int(a[1]) if len(a) > 1 else 2
    depth = int(a[2]) if len(a) > 2 else 4096
    tg = int(a[3]) if len(a) > 3 else 32
    types = (a[4] if len(a) > 4 else "f16,q8_0,q4_0").split(",")
    ids = prompt_ids(depth)
    name = name_of(path)
    for kv in types:
        llm = open_llm(path, threads, depth + tg + 64, 512, kv)
        nl = llm._model.n_layer() if hasattr(llm._model, "n_layer") else None
        clear(llm)
        t0 = time.perf_counter()
        llm.eval(ids)
        tp = time.perf_counter() - t0
        first = int(np.argmax(last_logits(llm)))
        state_n = llm.n_tokens

        def dec(start):
            # decode from the same state each try: drop what an earlier try appended
            import llama_cpp
            if llm.n_tokens > state_n:
                llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(llm._ctx.ctx), -1, state_n, -1)
                llm.n_tokens = state_n
            tok = first
            start()
            for _ in range(tg):
                llm.eval([tok])
                tok = int(np.argmax(last_logits(llm)))
            return tok
        t, _, info = measure(dec)
        meta = llm.metadata
        arch = meta.get("general.architecture", "llama")
        L = int(meta[f"{arch}.block_count"])
        kvh = int(meta[f"{arch}.attention.head_count_kv"])
        hd = int(meta.get(f"{arch}.attention.key_length", int(meta[f"{arch}.embedding_length"]) // int(meta[f"{arch}.attention.head_count"])))
        kvb = 2 * L * depth * kvh * hd * BYTES_PER_VALUE[kv]
        emit({"bench": "decode", "engine": "llama.cpp", "model": name, "case": kv, "round": 0, "s": t, "kv": kv,
              "depth": depth, "tg": tg, "tg_tps": round(tg / t, 3), "kv_bytes": int(kvb), "prefill_s": round(tp, 3),
              **info})
        del llm, nl


def cmd_ppl(a):
    path, idsf = a[0], a[1]
    threads = int(a[2]) if len(a) > 2 else 2
    types = (a[3] if len(a) > 3 else "f16,q8_0,q4_0").split(",")
    wins = [json.loads(x) for x in open(idsf) if x.strip()]
    W = len(wins[0])
    name = name_of(path)
    ref = []
    for kv in types:
        llm = open_llm(path, threads, W, W, kv, logits_all=True)
        nll, kl, agree, npred = 0.0, 0.0, 0, 0
        t = 0.0
        for wi, w in enumerate(wins):
            clear(llm)
            t0 = time.perf_counter()
            llm.eval(w)
            t += time.perf_counter() - t0
            lg = np.array(llm.scores[: W - 1], dtype=np.float64)
            m = lg.max(axis=1, keepdims=True)
            lp = lg - (np.log(np.exp(lg - m).sum(axis=1, keepdims=True)) + m)
            tgt = np.array(w[1:])
            nll -= lp[np.arange(W - 1), tgt].sum()
            npred += W - 1
            if kv == types[0]:
                ref.append(lp.astype(np.float32))
                agree += W - 1
            else:
                r = ref[wi].astype(np.float64)
                kl += (np.exp(r) * (r - lp)).sum()
                agree += int((r.argmax(axis=1) == lp.argmax(axis=1)).sum())
        emit({"bench": "ppl", "engine": "llama.cpp", "model": name, "case": kv, "round": 0, "s": t,
              "window": W, "windows": len(wins), "predicted": npred, "ppl": round(float(np.exp(nll / npred)), 4),
              "kl_vs_f16": round(kl / npred, 6), "top1_agree": round(agree / npred, 4)})
        del llm


def cmd_gguf_f32(a):
    import mlx.core as mx
    import gguf
    from make_gguf import gguf_name, tokenizer_meta
    mdir, out = a[0], a[1]
    cfg = json.load(open(os.path.join(mdir, "config.json")))
    assert cfg["model_type"] == "llama", "llama folders only"
    W = {}
    for f in sorted(os.listdir(mdir)):
        if f.endswith(".safetensors"):
            W.update(mx.load(os.path.join(mdir, f)))
    q = cfg.get("quantization") or {}
    H, nh, nkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or H // nh
    theta = cfg.get("rope_theta") or (cfg.get("rope_parameters") or {}).get("rope_theta", 10000.0)
    w = gguf.GGUFWriter(out, "llama")
    w.add_context_length(cfg.get("max_position_embeddings", 4096))
    w.add_embedding_length(H)
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(nh)
    w.add_head_count_kv(nkv)
    w.add_key_length(hd)
    w.add_value_length(hd)
    w.add_rope_dimension_count(hd)
    w.add_rope_freq_base(theta)
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_vocab_size(cfg["vocab_size"])
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    tokenizer_meta(w, mdir, cfg["vocab_size"], "default")  # GPT-2 regex; ids are fed directly
    w.add_bos_token_id(cfg.get("bos_token_id", 0))
    w.add_eos_token_id(cfg.get("eos_token_id", 0))
    for k in sorted(W):
        if not k.endswith(".weight"):
            continue
        base = k[: -len(".weight")]
        if base + ".scales" in W:
            f = mx.dequantize(W[k], W[base + ".scales"], W[base + ".biases"], group_size=q["group_size"], bits=q["bits"])
        else:
            f = W[k]
        f = np.array(f.astype(mx.float32))
        if base.endswith("q_proj") or base.endswith("k_proj"):
            n = nh if base.endswith("q_proj") else nkv
            f = f[np.arange(f.shape[0]).reshape(n, 2, hd // 2).swapaxes(1, 2).reshape(-1)]
        w.add_tensor(gguf_name(k), np.ascontiguousarray(f))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print("wrote", out, flush=True)


def main():
    cmd, a = sys.argv[1], sys.argv[2:]
    {"ttft": cmd_ttft, "depth": cmd_depth, "ppl": cmd_ppl, "gguf-f32": cmd_gguf_f32}[cmd](a)
    print(json.dumps({"bench": "peer_rss", "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}),
          file=sys.stderr)


if __name__ == "__main__":
    main()
