#!/usr/bin/env python3
"""Goldens that tie our prompt-cache files to mlx-lm's (mlx_lm.models.cache
save_prompt_cache / load_prompt_cache, as written by `mlx_lm.cache_prompt`).

Two modes.

gen (the default)
    usage: tests/gen/gen_kv_goldens.py [gen] [--remake-models]

    For every case in CASES: build a prompt cache exactly as mlx_lm.cache_prompt
    does (make_prompt_cache(model, max_kv_size), then generate_step(prefix,
    max_tokens=0, prompt_cache=cache, kv_bits, kv_group_size, quantized_kv_start))
    and save it with save_prompt_cache(path, cache, metadata={"model": <model
    folder relative to the repo root>, "tokenizer_config": json.dumps(
    {"trust_remote_code": False})}) to tests/data/kv/<case>.safetensors.  The file
    is saved twice and must be byte-identical.  Then the file is loaded back with
    load_prompt_cache and continued greedily with the case's suffix ids
    (generate_step(suffix, prompt_cache=loaded, max_tokens=16, argmax sampler, and
    for quantized caches the same kv_bits / kv_group_size / quantized_kv_start so
    the cache stays quantized): "continued".  "fresh" is a plain greedy run on
    prefix+suffix with no prompt cache, no max_kv_size and no kv_bits;
    "fresh_same" is one greedy run on prefix+suffix with the case's max_kv_size /
    kv_bits settings (no file in between).  tests/data/kv/golden.json holds one
    entry per case:
      case, model (folder relative to the repo root, also the "model" metadata
      string), cls (class name per layer), max_kv_size, kv_bits, kv_group_size,
      quantized_kv_start, prefix, suffix, continued, fresh, fresh_same, offset
      (per layer, as loaded), file, size, sha256, header_len, header (the exact
      header JSON text of the file, to compare byte for byte), tensors ({key:
      [dtype, shape]}), continued_eq_fresh, continued_eq_fresh_same.
    Every fixture model here has head_dim 16, too small for mx.quantize (group
    32 or 64 needs head_dim divisible by it), so the quantized cases use two tiny
    random-weight models with head_dim 64 kept under tests/data/kv/models/
    (qwen3-hd64-bf16: bfloat16 weights, llama-hd64-f16: float16 weights; made once
    with gen_llm_fixtures.build, then cast; --remake-models rebuilds them).  The
    first one doubles as the 16-bit KVCache case (a plain KVCache file is 256
    padded rows per layer, so one 16-bit KVCache case is kept to save space).

check-ours DIR
    usage: tests/gen/gen_kv_goldens.py check-ours DIR [--golden FILE]

    DIR holds files written by our C tool, one per golden case, named
    <case>.kv.zst or <case>.safetensors (or <case>.kv / <case>.safetensors.zst),
    e.g. made with
        build/bin/mlx-kvpack build -m <golden model> -o DIR/<case>.kv.zst
    fed the record {"ids": <golden prefix>} on stdin (and the case's
    --max-kv-size / --kv-bits / --kv-group-size / --quantized-kv-start 0).
    For each case found: zstd files are decompressed (zstandard module, else the
    `zstd -d` program), the file is loaded with load_prompt_cache(return_metadata
    =True), re-saved with save_prompt_cache(same metadata) and compared byte for
    byte with the decompressed file, then loaded again and continued with the
    case's suffix exactly as in gen mode.  Writes DIR/mlx_check.json:
      {"golden": path, "cases": {case: {file, loaded, error, classes, offset,
       metadata, continued, golden_continued, continued_eq_golden,
       resave_identical, resave_first_diff, equal_golden_file,
       golden_first_diff, header_eq_golden, tensors}}, "summary": {...}}
    A case whose file is missing is listed under summary.missing; a failure in
    one case (unreadable file, class mlx-lm does not know, ...) is recorded in
    its "error" and does not stop the others.  Exit status 0 when every found
    case loaded and continued like the golden, 1 otherwise, 2 on bad usage.
    Byte identity needs the same data-section order as mlx: MLX writes tensors in
    the iteration order of a libstdc++ std::unordered_map filled in
    save_prompt_cache's tree_flatten order ("0.0", "0.1", "0.2", "1.0", ...), so
    a file whose tensors are in another order still loads and continues the
    same but is not byte-identical (resave_identical false, first diff in the
    header's data_offsets).  Rows past "offset" (zero padding up to the 256-row
    capacity in mlx's own files) are not read by mlx; a file cut to offset
    rows also loads and continues the same.
    Self-test: copy a few tests/data/kv/*.safetensors (optionally `zstd` them to
    <case>.kv.zst) into a temporary folder and point check-ours at it.
"""
import hashlib, json, os, shutil, struct, subprocess, sys, tempfile
import pathlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "data", "kv")
GOLDEN = os.path.join(OUT, "golden.json")
FIX = "tests/data/models"
OWN = "tests/data/kv/models"
MAX_TOKENS = 16
TOKCFG = json.dumps({"trust_remote_code": False})

PREFIX = [1, 17, 200, 45, 99, 3, 250, 7, 128, 64, 300, 5, 77, 150, 9, 31, 222, 18, 41, 260, 12, 333, 90, 8]
SUFFIX = [55, 140, 23, 301, 6, 199]

# (case, model folder relative to ROOT, max_kv_size, kv_bits, kv_group_size)
CASES = [
    ("kv_llama", f"{FIX}/llama-tiny", None, None, 64),
    ("kv_qwen3", f"{FIX}/qwen3-tiny", None, None, 64),
    ("kv_qwen3_4bit", f"{FIX}/qwen3-tiny-4bit", None, None, 64),
    ("kv_qwen3_hd64_bf16", f"{OWN}/qwen3-hd64-bf16", None, None, 64),
    ("rot16_qwen3", f"{FIX}/qwen3-tiny", 16, None, 64),
    ("rot64_qwen3", f"{FIX}/qwen3-tiny", 64, None, 64),
    ("mixed_gemma3", f"{FIX}/gemma3-tiny", None, None, 64),  # its make_cache: rotating + plain layers
    ("q8g32_qwen3", f"{OWN}/qwen3-hd64-bf16", None, 8, 32),
    ("q8g64_qwen3", f"{OWN}/qwen3-hd64-bf16", None, 8, 64),
    ("q4g32_qwen3", f"{OWN}/qwen3-hd64-bf16", None, 4, 32),
    ("q4g64_qwen3", f"{OWN}/qwen3-hd64-bf16", None, 4, 64),
    ("q8g32_llama", f"{OWN}/llama-hd64-f16", None, 8, 32),
    ("q8g64_llama", f"{OWN}/llama-hd64-f16", None, 8, 64),
    ("q4g32_llama", f"{OWN}/llama-hd64-f16", None, 4, 32),
    ("q4g64_llama", f"{OWN}/llama-hd64-f16", None, 4, 64),
]
QUANTIZED_KV_START = 0

# head_dim 64 models (hidden 32, 2 query heads over 1 KV head, 2 layers)
HD64 = dict(hidden_size=32, num_hidden_layers=2, intermediate_size=64, num_attention_heads=2,
            num_key_value_heads=1, head_dim=64, rms_norm_eps=1e-5, vocab_size=384, rope_theta=10000.0,
            max_position_embeddings=512, bos_token_id=1, eos_token_id=2)
OWN_MODELS = {
    "qwen3-hd64-bf16": (dict(HD64, model_type="qwen3", tie_word_embeddings=True, torch_dtype="bfloat16"), "bfloat16"),
    "llama-hd64-f16": (dict(HD64, model_type="llama", tie_word_embeddings=False, torch_dtype="float16"), "float16"),
}


def mlx():
    import mlx.core as mx
    from mlx_lm.utils import load_model
    from mlx_lm.generate import generate_step
    from mlx_lm.models import cache as C
    return mx, load_model, generate_step, C


_models = {}


def get_model(folder):
    _, load_model, _, _ = mlx()
    if folder not in _models:
        _models[folder] = load_model(pathlib.Path(ROOT) / folder)[0]
    return _models[folder]


def greedy(model, ids, cache=None, max_kv_size=None, kv_bits=None, kv_group_size=64):
    mx, _, generate_step, _ = mlx()
    kw = dict(max_tokens=MAX_TOKENS, sampler=lambda lp: mx.argmax(lp, axis=-1))
    if cache is not None:
        kw["prompt_cache"] = cache
    if max_kv_size is not None:
        kw["max_kv_size"] = max_kv_size
    if kv_bits is not None:
        kw.update(kv_bits=kv_bits, kv_group_size=kv_group_size, quantized_kv_start=QUANTIZED_KV_START)
    return [int(t) for t, _ in generate_step(mx.array(ids), model, **kw)]


def header_of(data):
    n = struct.unpack("<Q", data[:8])[0]
    return n, data[8:8 + n].decode("utf-8")


def tensors_of(header):
    h = json.loads(header)
    return {k: [v["dtype"], v["shape"]] for k, v in sorted(h.items()) if k != "__metadata__"}


def first_diff(a, b):
    for i in range(min(len(a), len(b))):
        if a[i] != b[i]:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def make_own_models(force):
    import mlx.core as mx
    from mlx_lm.utils import save_model, save_config
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import gen_llm_fixtures as fx
    for name, (cfg, dt) in OWN_MODELS.items():
        d = os.path.join(ROOT, OWN, name)
        if os.path.exists(os.path.join(d, "model.safetensors")) and not force:
            continue
        for seed in range(20):
            model = fx.build(cfg, seed)
            model.set_dtype(getattr(mx, dt))
            if os.path.exists(d):
                shutil.rmtree(d)
            os.makedirs(d)
            save_model(d, model)
            save_config(dict(cfg), os.path.join(d, "config.json"))
            for f in ("tokenizer.json", "tokenizer_config.json"):
                shutil.copy(os.path.join(fx.TOK, f), d)
            _models.pop(f"{OWN}/{name}", None)
            toks = greedy(get_model(f"{OWN}/{name}"), PREFIX + SUFFIX)
            if len(set(toks)) >= 8:  # not a degenerate repetition
                print(name, "seed", seed)
                break
        else:
            sys.exit(f"{name}: every seed gave a repetitive greedy path")


def build_cache(model, prefix, max_kv_size, kv_bits, kv_group_size):
    """mlx_lm.cache_prompt's calls, minus the tokenizer."""
    mx, _, generate_step, C = mlx()
    cache = C.make_prompt_cache(model, max_kv_size)
    for _ in generate_step(mx.array(prefix), model, max_tokens=0, prompt_cache=cache, kv_bits=kv_bits,
                           kv_group_size=kv_group_size, quantized_kv_start=QUANTIZED_KV_START):
        pass
    return cache


def continue_cache(model, cache, suffix, kv_bits, kv_group_size):
    return greedy(model, suffix, cache=cache, kv_bits=kv_bits, kv_group_size=kv_group_size)


def gen(force_models):
    mx, _, _, C = mlx()
    os.makedirs(OUT, exist_ok=True)
    make_own_models(force_models)
    out = []
    for case, folder, max_kv, bits, gs in CASES:
        model = get_model(folder)
        cache = build_cache(model, PREFIX, max_kv, bits, gs)
        meta = {"model": folder, "tokenizer_config": TOKCFG}
        path = os.path.join(OUT, case + ".safetensors")
        C.save_prompt_cache(path, cache, metadata=meta)
        data = open(path, "rb").read()
        with tempfile.TemporaryDirectory() as td:
            p2 = os.path.join(td, "again.safetensors")
            C.save_prompt_cache(p2, cache, metadata=meta)
            again = open(p2, "rb").read()
        assert data == again, f"{case}: two saves of one cache differ"
        loaded, lmeta = C.load_prompt_cache(path, return_metadata=True)
        assert lmeta == meta, (case, lmeta)
        with tempfile.TemporaryDirectory() as td:  # load + save is the identity on the bytes
            p3 = os.path.join(td, "resaved.safetensors")
            C.save_prompt_cache(p3, loaded, metadata=lmeta)
            assert open(p3, "rb").read() == data, f"{case}: re-saving a loaded file changes its bytes"
        cls = [type(c).__name__ for c in loaded]
        offset = [int(c.offset) for c in loaded]
        cont = continue_cache(model, loaded, SUFFIX, bits, gs)
        fresh = greedy(model, PREFIX + SUFFIX)
        fresh_same = greedy(model, PREFIX + SUFFIX, max_kv_size=max_kv, kv_bits=bits, kv_group_size=gs)
        hlen, header = header_of(data)
        e = {"case": case, "model": folder, "cls": cls, "max_kv_size": max_kv, "kv_bits": bits,
             "kv_group_size": gs, "quantized_kv_start": QUANTIZED_KV_START, "prefix": PREFIX, "suffix": SUFFIX,
             "continued": cont, "fresh": fresh, "fresh_same": fresh_same, "offset": offset,
             "continued_eq_fresh": cont == fresh, "continued_eq_fresh_same": cont == fresh_same,
             "file": os.path.relpath(path, ROOT), "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
             "header_len": hlen, "header": header, "tensors": tensors_of(header)}
        out.append(e)
        print(f"{case:22s} {len(data):7d} B  cls={cls} offset={offset} cont==fresh {cont == fresh}"
              f"  cont==fresh_same {cont == fresh_same}")
    with open(GOLDEN, "w") as f:
        json.dump({"mlx_lm": __import__("mlx_lm").__version__, "mlx": mx.__version__,
                   "max_tokens": MAX_TOKENS, "cases": out}, f, indent=1)
        f.write("\n")


def read_maybe_zst(path):
    raw = open(path, "rb").read()
    if raw[:4] != b"\x28\xb5\x2f\xfd":
        return raw
    try:
        import zstandard
        return zstandard.ZstdDecompressor().decompressobj().decompress(raw)
    except ImportError:
        return subprocess.run(["zstd", "-d", "-c", "-q"], input=raw, stdout=subprocess.PIPE, check=True).stdout


def check_ours(d, golden_path):
    mx, _, _, C = mlx()
    g = json.load(open(golden_path))
    res, missing, bad = {}, [], []
    gdir = os.path.dirname(os.path.abspath(golden_path))
    for e in g["cases"]:
        case = e["case"]
        found = None
        for suf in (".kv.zst", ".safetensors", ".kv", ".safetensors.zst"):
            if os.path.exists(os.path.join(d, case + suf)):
                found = os.path.join(d, case + suf)
                break
        if found is None:
            missing.append(case)
            continue
        r = {"file": os.path.basename(found), "loaded": False, "error": None, "golden_continued": e["continued"]}
        res[case] = r
        try:
            data = read_maybe_zst(found)
            r["size"] = len(data)
            hlen, header = header_of(data)
            r["header_eq_golden"] = header == e["header"]
            r["tensors"] = tensors_of(header)
            gfile = os.path.join(gdir, case + ".safetensors")
            if os.path.exists(gfile):
                gdata = open(gfile, "rb").read()
                r["equal_golden_file"] = data == gdata
                r["golden_first_diff"] = first_diff(data, gdata)
            with tempfile.TemporaryDirectory() as td:
                p = os.path.join(td, "ours.safetensors")
                open(p, "wb").write(data)
                cache, meta = C.load_prompt_cache(p, return_metadata=True)
                r["loaded"] = True
                r["metadata"] = meta
                r["classes"] = [type(c).__name__ for c in cache]
                r["offset"] = [int(c.offset) for c in cache]
                p2 = os.path.join(td, "resaved.safetensors")
                C.save_prompt_cache(p2, cache, metadata=meta)
                again = open(p2, "rb").read()
                r["resave_identical"] = again == data
                r["resave_first_diff"] = first_diff(again, data)
                cache = C.load_prompt_cache(p)  # fresh copy: the resave must not see a continued cache
            bits, gs = e["kv_bits"], e["kv_group_size"]
            if bits is None and hasattr(cache[0], "bits"):  # a quantized file for an unquantized case
                bits, gs = cache[0].bits, cache[0].group_size
            r["continued"] = continue_cache(get_model(e["model"]), cache, e["suffix"], bits, gs)
            r["continued_eq_golden"] = r["continued"] == e["continued"]
            r["classes_eq_golden"] = r["classes"] == e["cls"]
            r["offset_eq_golden"] = r["offset"] == e["offset"]
        except Exception as ex:  # keep going: one bad file must not hide the others
            r["error"] = f"{type(ex).__name__}: {ex}"
        if r["error"] or not r.get("continued_eq_golden"):
            bad.append(case)
    summary = {"checked": sorted(res), "missing": missing, "failed": bad,
               "resave_identical": sorted(c for c, r in res.items() if r.get("resave_identical")),
               "equal_golden_file": sorted(c for c, r in res.items() if r.get("equal_golden_file"))}
    out = os.path.join(d, "mlx_check.json")
    with open(out, "w") as f:
        json.dump({"golden": os.path.abspath(golden_path), "cases": res, "summary": summary}, f, indent=1)
        f.write("\n")
    for c, r in res.items():
        print(f"{c:22s} loaded={r['loaded']} cont==golden={r.get('continued_eq_golden')} "
              f"resave_identical={r.get('resave_identical')} equal_golden_file={r.get('equal_golden_file')}"
              + (f" error={r['error']}" if r["error"] else ""))
    print(f"{len(res)} checked, {len(missing)} missing, {len(bad)} failed -> {out}")
    return 1 if bad or not res else 0


def main(argv):
    if argv and argv[0] == "check-ours":
        args = argv[1:]
        golden = GOLDEN
        if "--golden" in args:
            i = args.index("--golden")
            if i + 1 >= len(args):
                sys.exit(2)
            golden = args[i + 1]
            del args[i:i + 2]
        if len(args) != 1 or not os.path.isdir(args[0]):
            print(__doc__, file=sys.stderr)
            return 2
        return check_ours(args[0], golden)
    if argv and argv[0] == "gen":
        argv = argv[1:]
    if any(a != "--remake-models" for a in argv):
        print(__doc__, file=sys.stderr)
        return 2
    gen("--remake-models" in argv)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
