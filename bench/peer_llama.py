#!/usr/bin/env python3
"""peer_llama.py - times llama.cpp (through llama-cpp-python) like bench_gen
times the library: load, load-to-first-token (16-token prompt), prefill
tokens/s on the pp-token prompt, greedy decode tokens/s over tg tokens, peak
RSS; one JSON line.  Also the process CPU seconds of prefill and decode
(pp_cpu_s, tg_cpu_s; all threads).  Same prompt ids as bench_gen.c.

usage: peer_llama.py MODEL.gguf [threads=2] [pp=512] [tg=128]
"""
import json
import resource
import sys
import time

import numpy as np

from prompt_ids import prompt_ids


def main():
    path = sys.argv[1]
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    pp = int(sys.argv[3]) if len(sys.argv) > 3 else 512
    tg = int(sys.argv[4]) if len(sys.argv) > 4 else 128
    t0 = time.perf_counter()
    from llama_cpp import Llama
    llm = Llama(model_path=path, n_threads=threads, n_threads_batch=threads, n_ctx=max(1024, pp + tg + 32),
                n_batch=max(pp, 16), n_ubatch=max(pp, 16), verbose=False, logits_all=False)
    t_load = time.perf_counter() - t0
    import llama_cpp
    nv = llm.n_vocab()

    def last_logits():
        ptr = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(nv,))

    ids = prompt_ids(max(pp, 16))
    llm.eval(ids[:16])
    int(np.argmax(last_logits()))
    t_first = time.perf_counter() - t0
    llm.reset()
    llm._ctx.kv_cache_clear() if hasattr(llm._ctx, "kv_cache_clear") else None
    t1, c1 = time.perf_counter(), time.process_time()
    llm.eval(ids[:pp])
    t_pp, c_pp = time.perf_counter() - t1, time.process_time() - c1
    tok = int(np.argmax(last_logits()))
    t1, c1 = time.perf_counter(), time.process_time()
    for _ in range(tg):
        llm.eval([tok])
        tok = int(np.argmax(last_logits()))
    t_tg, c_tg = time.perf_counter() - t1, time.process_time() - c1
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"engine": "llama.cpp", "threads": threads, "load_s": round(t_load, 3),
                      "ttft_s": round(t_first, 3), "pp": pp, "pp_tps": round(pp / t_pp, 2),
                      "pp_cpu_s": round(c_pp, 3), "tg": tg, "tg_tps": round(tg / t_tg, 3), "tg_cpu_s": round(c_tg, 3), "rss_mb": round(rss, 1)}))


if __name__ == "__main__":
    main()
