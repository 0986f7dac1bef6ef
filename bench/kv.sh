#!/bin/sh
# bench/kv.sh - the benchmarks of KV-state files, shared-prefix reuse and KV
# quantization (issue "mlx-kvpack and prompt caches") in one command: builds the
# library and bench/bench_kv, makes the random-weight models of the Qwen3-0.6B and
# Llama-3.2-1B shapes if missing (bench/make_models.py, bench/make_gguf.py), then per
# model:
#   1. time to first token, 2,000-token cached prefix + 20-token suffix: the prefix's
#      KV-state file (raw and zstd) against computing the whole prompt
#   2. 100 records sharing a 1,000-token prefix (own 20-token suffixes, 4 generated
#      tokens each) with shared-prefix reuse (gp.store) and without
#   3. decode at depth 4,096: float16 KV against 8 / 4-bit affine (group 64) and the
#      4 / 3-bit rotation scheme; KV bytes
#   4. KV-state files of a 4,096-token cache: raw f16 safetensors, zstd, 8-bit + zstd,
#      4-bit + zstd; size and load time (mt_kvfile_read + mt_kvfile_to_cache)
#   5. perplexity with f16 / f32 / 8 / 4-bit / rotation 4 / 3-bit KV on real text (the
#      bzip2 manual from /usr/share/doc, else the GPL-3 text) for the bundled
#      models/tinydocs-22m-4bit and the Qwen3-0.6B shape (q4 g32, lossless as GGUF Q4_1)
# and, with PEERS=llama, llama.cpp through llama-cpp-python (bench/peer_llama_kv.py) for
# 1, 3 and 5 (-ctk/-ctv f16 / q8_0 / q4_0).  Prints the table (min / median / max over
# the rounds, the ratios against the goals).
#
# Each timed span waits for a quiet CPU (/proc/pressure/cpu "some avg10" <= KV_QUIET,
# default 5) and is redone when the stall during it exceeded KV_STALL percent (default
# 5; KV_RETRIES times at most, default 3; waiting KV_MAXWAIT s at most, default 300);
# every line of bench/out/kv.jsonl keeps the readings, and kv.sh logs the pressure line
# before and after each program.
# Environment: BUILD (build-kvbench), THREADS (2), MODELS ("qwen06b llama1b"),
# PY (python with mlx-lm, gguf, llama-cpp-python: /work/venv-mlx/bin/python),
# PEERS ("llama"; empty = ours only), ROUNDS (3), PREFIX (2000), SUFFIX (20),
# RECORDS (100), RPREFIX (1000), GEN (4), NONE_RECORDS (10: records timed without
# reuse, each the same work, scaled to RECORDS), PREFIX_ROUNDS (2), DEPTH (4096), TG (32),
# PEER_TYPES (f16,q8_0,q4_0), PPL_WINDOW (512), PPL_TINY (16 windows), PPL_REAL (2),
# STEPS ("ttft prefix depth ppl"), OUT (bench/out/kv.jsonl; TABLE_ONLY=1 prints it only).
set -e
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-kvbench}
THREADS=${THREADS:-2}
MODELS=${MODELS:-"qwen06b llama1b"}
PY=${PY:-/work/venv-mlx/bin/python}
PEERS=${PEERS-llama}
ROUNDS=${ROUNDS:-3}
PREFIX=${PREFIX:-2000}
SUFFIX=${SUFFIX:-20}
RECORDS=${RECORDS:-100}
RPREFIX=${RPREFIX:-1000}
GEN=${GEN:-4}
NONE_RECORDS=${NONE_RECORDS:-10}
PREFIX_ROUNDS=${PREFIX_ROUNDS:-2}
DEPTH=${DEPTH:-4096}
TG=${TG:-32}
PEER_TYPES=${PEER_TYPES:-f16,q8_0,q4_0}
PPL_WINDOW=${PPL_WINDOW:-512}
PPL_TINY=${PPL_TINY:-16}
PPL_REAL=${PPL_REAL:-2}
STEPS=${STEPS:-"ttft prefix depth ppl"}
OUT=${OUT:-bench/out/kv.jsonl}
export KV_QUIET=${KV_QUIET:-5} KV_STALL=${KV_STALL:-5} KV_RETRIES=${KV_RETRIES:-3} KV_MAXWAIT=${KV_MAXWAIT:-300}

table() {
    "$PY" - "$OUT" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def eng(r): return r.get("engine", "ours")
def grp(bench, key="s"):
    g = {}
    for r in rows:
        if r.get("bench") == bench and key in r:
            g.setdefault((eng(r), r["model"], r["case"]), []).append(r)
    return g
def mmm(v, f="%.3f"):
    return "/".join(f % x for x in (min(v), statistics.median(v), max(v)))
def med(rs, k): return statistics.median(r[k] for r in rs)
def meta(bench):
    return {(eng(r), r["model"]): r for r in rows if r.get("bench") == bench}
stall = [r["stall_pct"] for r in rows if "stall_pct" in r and r.get("bench") != "ppl"]
if stall:
    print("CPU pressure during the timed spans: stall %% min/median/max %s (%d spans), redone spans: %d"
          % (mmm(stall, "%.1f"), len(stall), sum(1 for r in rows if r.get("tries", 1) > 1)))
    a10 = [r["avg10_before"] for r in rows if "avg10_before" in r]
    print("\"some avg10\" before the spans: min/median/max %s" % mmm(a10, "%.1f"))
g = grp("ttft")
if g:
    print("\n1. time to first token, %s-token prompt = cached prefix + suffix (s, min/median/max)" %
          next(iter(g.values()))[0]["prompt"])
    print("| engine | model | recompute | prefix file + suffix | ratio (median) | zstd file + suffix | ratio | same token |")
    print("|---|---|---|---|---|---|---|---|")
    for (e, m) in sorted({(k[0], k[1]) for k in g}):
        rc, fl, fz = g.get((e, m, "recompute")), g.get((e, m, "file")), g.get((e, m, "file_zstd"))
        if not rc or not fl: continue
        s = lambda rs: [r["s"] for r in rs]
        same = all(r.get("same_token") for r in fl + (fz or []))
        print("| %s | %s | %s | %s | **%.1fx** | %s | %s | %s |" % (e, m, mmm(s(rc)), mmm(s(fl)), med(rc, "s") / med(fl, "s"),
              mmm(s(fz)) if fz else "-", "%.1fx" % (med(rc, "s") / med(fz, "s")) if fz else "-", same))
    fm = meta("ttft_file")
    for (e, m), r in sorted(fm.items()):
        print("   %s %s: prefix file %d tokens, %.1f MB raw%s" % (e, m, r["tokens"], r["raw_bytes"] / 1e6,
              ", %.1f MB zstd" % (r["zstd_bytes"] / 1e6) if "zstd_bytes" in r else ""))
    for (e, m, c), rs in sorted(g.items()):
        if "read_s" in rs[0]:
            print("   %s %s %s: read %.3f, to_cache %.3f, suffix forward %.3f s (medians)" % (e, m, c,
                  med(rs, "read_s"), med(rs, "to_cache_s"), med(rs, "forward_s")))
g = grp("prefix")
if g:
    r0 = next(iter(g.values()))[0]
    print("\n2. %d records, %d-token shared prefix + own suffix, %d generated tokens each (total s, min/median/max)" %
          (r0["records"], r0["prompt"] - 20, r0["gen_tokens"] // max(r0["timed_records"], 1)))
    print("| model | with reuse (store) | without | timed without | ratio store/none (median) | cached tokens |")
    print("|---|---|---|---|---|---|")
    for m in sorted({k[1] for k in g}):
        st, no = g.get(("ours", m, "store")), g.get(("ours", m, "none"))
        if not st or not no: continue
        s = lambda rs: [r["s"] for r in rs]
        print("| %s | %s | %s | %d records, scaled | **%.3fx** | %d |" % (m, mmm(s(st), "%.2f"), mmm(s(no), "%.2f"),
              no[0]["timed_records"], med(st, "s") / med(no, "s"), st[0]["cached_tokens"]))
g = grp("decode")
if g:
    print("\n3. decode at depth %d, %d greedy tokens (tok/s min/median/max; KV bytes at the depth)" %
          (next(iter(g.values()))[0]["depth"], next(iter(g.values()))[0]["tg"]))
    print("| engine | model | KV | tok/s | speed vs f16 (median) | KV MB | bytes vs f16 |")
    print("|---|---|---|---|---|---|---|")
    order = {"base": 0, "f16": 0, "q8": 1, "q8_0": 1, "q4": 2, "q4_0": 2, "t4": 3, "t3": 4}
    for (e, m) in sorted({(k[0], k[1]) for k in g}):
        cases = sorted([k[2] for k in g if k[:2] == (e, m)], key=lambda c: order.get(c, 9))
        b = g.get((e, m, "base")) or g.get((e, m, "f16"))
        for c in cases:
            rs = g[(e, m, c)]
            tps = [r["tg_tps"] for r in rs]
            label = {"base": rs[0]["kv"], "t4": "rot4", "t3": "rot3"}.get(c, rs[0]["kv"])
            sp = statistics.median(tps) / statistics.median(r["tg_tps"] for r in b) if b else float("nan")
            by = rs[0]["kv_bytes"] / b[0]["kv_bytes"] if b else float("nan")
            print("| %s | %s | %s | %s | %s | %.1f | %s |" % (e, m, label, mmm(tps, "%.2f"),
                  ("**%.2fx**" if c in ("q4", "q4_0") else "%.2fx") % sp, rs[0]["kv_bytes"] / 1e6,
                  ("**%.3f**" if c in ("q4", "q4_0") else "%.3f") % by))
g = grp("load")
if g:
    print("\n4. KV-state file of a %d-token cache: size and load (mt_kvfile_read + mt_kvfile_to_cache; ms, min/median/max)" %
          next(iter(g.values()))[0]["tokens"])
    print("| model | file | MB | load ms | read ms (median) | to_cache ms (median) |")
    print("|---|---|---|---|---|---|")
    for (e, m, c), rs in sorted(g.items(), key=lambda kv: (kv[0][1], ["raw", "zstd", "q8_zstd", "q4_zstd"].index(kv[0][2]))):
        print("| %s | %s | %.1f | %s | %.1f | %.1f |" % (m, c, rs[0]["bytes"] / 1e6, mmm([1e3 * r["s"] for r in rs], "%.1f"),
              1e3 * med(rs, "read_s"), 1e3 * med(rs, "to_cache_s")))
g = grp("ppl")
if g:
    print("\n5. perplexity with a quantized KV cache (quantized as written, every row)")
    print("| engine | model | KV | ppl | KL vs f16 (nats/token) | top-1 = f16 | windows x tokens |")
    print("|---|---|---|---|---|---|---|")
    order = {"f32": 0, "f16": 1, "q8": 2, "q8_0": 2, "q4": 3, "q4_0": 3, "t4": 4, "t3": 5}
    for (e, m, c), rs in sorted(g.items(), key=lambda kv: (kv[0][1], kv[0][0], order.get(kv[0][2], 9))):
        r = rs[-1]
        lab = {"q8": "q8 g64", "q4": "q4 g64", "t4": "rot4", "t3": "rot3"}.get(c, c)
        print("| %s | %s | %s | %.3f | %.5f | %.4f | %d x %d |" % (e, m, lab, r["ppl"], r["kl_vs_f16"], r["top1_agree"],
              r["windows"], r["window"]))
EOF
}

if [ -n "${TABLE_ONLY:-}" ]; then table; exit 0; fi

psi_log() { echo "{\"bench\":\"psi\",\"when\":\"$1\",\"cpu\":\"$(head -1 /proc/pressure/cpu)\",\"load\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >>"$OUT"; }
run() {   # run LABEL CMD...: one program, its JSON lines to $OUT, the pressure before and after
    psi_log "before $1"
    shift
    "$@" | tee -a "$OUT"
    psi_log after
}

PKGS="jansson libpcre2-8 libutf8proc libzstd libcurl openblas"
make -j2 BUILD="$BUILD" "$BUILD/libmlxtools.a" >/dev/null
mkdir -p bench/bin bench/out
cc -std=c17 -D_GNU_SOURCE -O3 -march=x86-64-v3 -Ilib $(pkg-config --cflags $PKGS) bench/bench_kv.c \
    "$BUILD/libmlxtools.a" $(pkg-config --libs $PKGS) -lm -lpthread -o bench/bin/bench_kv

for m in $MODELS; do
    [ -f "bench/models/$m-q4g64/config.json" ] || "$PY" bench/make_models.py --models "$m" --variants q4g64
done
case "$STEPS" in *ppl*)
    [ -f bench/models/qwen06b-q4g32/config.json ] || "$PY" bench/make_models.py --models qwen06b --variants q4g32 ;;
esac
if [ -n "$PEERS" ]; then
    "$PY" bench/make_gguf.py --models "$(echo $MODELS | tr ' ' ,)" --types Q4_0
    case "$STEPS" in *ppl*)
        "$PY" bench/make_gguf.py --models qwen06b --types Q4_1
        [ -f bench/models/tinydocs-22m-4bit-F32.gguf ] ||
            "$PY" bench/peer_llama_kv.py gguf-f32 models/tinydocs-22m-4bit bench/models/tinydocs-22m-4bit-F32.gguf ;;
    esac
fi

# the text for perplexity: real English documentation shipped by Debian
TEXT=bench/out/kv_text.txt
if [ ! -s "$TEXT" ]; then
    if [ -f /usr/share/doc/bzip2/manual.html ]; then
        "$PY" -c 'import html, re, sys; t = open(sys.argv[1], encoding="utf-8", errors="replace").read()
t = re.sub(r"(?is)<(script|style)[^>]*>.*?</\1>", "", t); t = html.unescape(re.sub(r"<[^>]+>", "", t))
sys.stdout.write(re.sub(r"\n\s*\n+", "\n\n", t).strip() + "\n")' /usr/share/doc/bzip2/manual.html >"$TEXT"
    else
        cp /usr/share/common-licenses/GPL-3 "$TEXT"
    fi
fi

: >"$OUT"
echo "{\"bench\":\"machine\",\"cpu\":\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')\",\"nproc\":$(nproc),\"threads\":$THREADS}" >>"$OUT"
for step in $STEPS; do
    for m in $MODELS; do
        dir=bench/models/$m-q4g64
        case $step in
        ttft)
            run "ttft $m" bench/bin/bench_kv ttft "$dir" "$THREADS" "$PREFIX" "$SUFFIX" "$ROUNDS" bench/out
            case "$PEERS" in *llama*)
                run "ttft $m llama.cpp" "$PY" bench/peer_llama_kv.py ttft "bench/models/$m-Q4_0.gguf" "$THREADS" \
                    "$PREFIX" "$SUFFIX" "$ROUNDS" bench/out ;;
            esac ;;
        prefix)
            run "prefix $m" bench/bin/bench_kv prefix "$dir" "$THREADS" "$RECORDS" "$RPREFIX" "$SUFFIX" "$GEN" \
                "$PREFIX_ROUNDS" "$NONE_RECORDS" ;;
        depth)
            run "depth $m" bench/bin/bench_kv depth "$dir" "$THREADS" "$DEPTH" "$TG" "$ROUNDS" bench/out
            rm -f bench/out/kv-"$m"-q4g64-d"$DEPTH"-*
            case "$PEERS" in *llama*)
                run "depth $m llama.cpp" "$PY" bench/peer_llama_kv.py depth "bench/models/$m-Q4_0.gguf" "$THREADS" \
                    "$DEPTH" "$TG" "$PEER_TYPES" ;;
            esac ;;
        esac
    done
    if [ "$step" = ppl ]; then
        run "ppl tinydocs" bench/bin/bench_kv ppl models/tinydocs-22m-4bit "$TEXT" "$THREADS" "$PPL_WINDOW" "$PPL_TINY" \
            bench/out/kv_ids_tiny.jsonl
        run "ppl qwen06b-q4g32" bench/bin/bench_kv ppl bench/models/qwen06b-q4g32 "$TEXT" "$THREADS" "$PPL_WINDOW" \
            "$PPL_REAL" bench/out/kv_ids_qwen.jsonl
        case "$PEERS" in *llama*)
            run "ppl tinydocs llama.cpp" "$PY" bench/peer_llama_kv.py ppl bench/models/tinydocs-22m-4bit-F32.gguf \
                bench/out/kv_ids_tiny.jsonl "$THREADS" "$PEER_TYPES"
            run "ppl qwen06b llama.cpp" "$PY" bench/peer_llama_kv.py ppl bench/models/qwen06b-Q4_1.gguf \
                bench/out/kv_ids_qwen.jsonl "$THREADS" "$PEER_TYPES" ;;
        esac
    fi
done
rm -f bench/out/kv-*-p"$PREFIX".safetensors bench/out/kv-*-p"$PREFIX".kv.zst bench/out/llama-state-*-p"$PREFIX".bin
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $(nproc) cores, threads $THREADS"
table
