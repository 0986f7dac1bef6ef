#!/usr/bin/env python3
"""Goldens for mlx-gen's numerics modes: 16-bit models run by mlx-lm on mlx's CPU backend.

mlx-lm computes a float16 / bfloat16 model in that dtype.  This script runs such models
with mlx-lm (the same calls mlx_lm.generate makes) and records what came out, for
tests/unit/test_numerics.c, which runs the same models with --numerics mlx (must match
bit for bit) and f32 (agreement measured and reported).

Models:
  tiny   every float32 fixture of gen_llm_fixtures.FAMILIES (tests/data/models/<name>),
         converted with mlx_lm.convert to bfloat16 and float16, plain and 4-bit (group 64):
         the test converts them again with mlx-quant's library (byte-identical: it checks
         the FNV-1a 64 of model.safetensors recorded here)
  real   models as committed: tinydocs-22m-4bit (trained weights, bfloat16 scales; text
         prompts) and the 16-bit KV fixtures tests/data/kv/models/llama-hd64-f16 and
         qwen3-hd64-bf16 (random ids), 32 tokens each
Per model and prompt (token ids; the tiny prompts are random ids after BOS, of lengths
LENGTHS): "tokens", the greedy ids of generate_step(prompt, max_tokens=N) (argmax of
its log-probabilities, mlx_lm.generate's greedy sampler; no stop at EOS), and "fnv", the
FNV-1a 64 (hex) of the 16-bit words of the logits at the prompt's last position (the
model's own output dtype); for the first prompt also "logits": those words, little-endian,
base64, and "ref": the logits of the same weights in float32
arithmetic (every float parameter cast to float32; a quantized embedding's rows still
dequantized in the 16-bit type, as the model defines them), float32 words, base64: the
accuracy reference of both modes.  A form mlx-lm cannot run records its error instead ("mlx_error":
mlx's CPU gather_mm is float32 only, so a dense 16-bit mixture of experts fails).  Four forms
(ROTATING) add "rotating": greedy ids with generate_step's max_kv_size (MAX_KV), a
RotatingKVCache that the prompts and the generation outgrow.  Plus "ops": single ops on random 16-bit inputs (exp, sin, cos,
erf in float32; the others in the dtype), inputs and outputs as base64 words, for the
unit test of tensor/mlxnum.c.

Writes tests/data/numerics/goldens.json (with the mlx and mlx-lm versions).
usage: tests/gen/gen_numerics_goldens.py [--work DIR] [NAME...]
  DIR keeps the converted models between runs; NAMEs limit the tiny families (for a look
  at a few; the committed file holds them all)
"""
import base64, json, math, os, shutil, sys, tempfile
import numpy as np
import mlx.core as mx
import mlx.nn as nn
import mlx_lm
from mlx_lm.convert import convert
from mlx_lm.generate import generate_step
from mlx_lm.utils import load_model
from mlx.utils import tree_map

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from gen_llm_fixtures import FAMILIES  # noqa: E402

OUT = os.path.join(ROOT, "tests", "data", "numerics")
LENGTHS = (6, 13, 24, 40)
N = 24
FORMS = [("bfloat16", 0), ("float16", 0), ("bfloat16", 4), ("float16", 4)]
# forms also run with a RotatingKVCache (generate_step's max_kv_size: families that build no
# cache of their own, unlike llama and gemma3_text) of these sizes, which the prompts outgrow
ROTATING = {("qwen3-tiny", "bfloat16", 0), ("qwen2-tiny", "float16", 4), ("phi3-tiny", "bfloat16", 4),
            ("starcoder2-tiny", "bfloat16", 0)}
MAX_KV = (8, 16)
# fixture families left out: their mlx-gen family refuses --numerics mlx (mt_model.no_mlx: parallel
# blocks, grouped wqkv, a scaled head input, [up | gate] rows)
SKIP = {"phi-tiny", "cohere-tiny", "cohere2-tiny", "internlm2-tiny", "minicpm-tiny", "olmo-tiny"}
# where a model keeps its embedding, when not at model.embed_tokens
EMBED = {"exaone": ("transformer", "wte")}
# models run as they are: prompts of text (encoded with tokenizers), or None: random ids
REAL = [("models/tinydocs-22m-4bit", ["The apt command installs packages", "To configure the network on Debian,",
                                      "A systemd unit file has sections", "Debian releases are named after"]),
        ("tests/data/kv/models/llama-hd64-f16", None), ("tests/data/kv/models/qwen3-hd64-bf16", None)]


def fnv(words):
    h = 0xcbf29ce484222325
    for b in words.astype("<u2").tobytes():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def words(a):
    """the 16-bit words of an mlx float16/bfloat16 array"""
    return np.array(a.view(mx.uint16)).reshape(-1)


def b64(w):
    return base64.b64encode(np.asarray(w).astype("<u2").tobytes()).decode()


def st_fnv(path):
    h = 0xcbf29ce484222325
    data = open(os.path.join(path, "model.safetensors"), "rb").read()
    arr = np.frombuffer(data, dtype=np.uint8)
    # FNV-1a over bytes, in numpy chunks would reorder; do it in pure Python on the bytes
    for b in arr.tobytes():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def run_model(path, prompts, ngen=N, nlog=1):
    model, _ = load_model(__import__("pathlib").Path(path))
    runs = []
    for i, p in enumerate(prompts):
        logits = model(mx.array([p]))[0, -1]
        w = words(logits)
        toks = [int(t) for t, _ in generate_step(mx.array(p), model, max_tokens=ngen,
                                                 sampler=lambda lp: mx.argmax(lp, axis=-1))]
        r = {"prompt": p, "tokens": toks, "fnv": fnv(w)}
        if i < nlog:
            r["logits"] = b64(w)
        runs.append(r)
    # the same weights in float32 arithmetic (the accuracy reference of both numerics modes):
    # every float parameter cast to float32, except that a quantized embedding's rows are still
    # dequantized in its 16-bit type, the one rounding that defines the model's embedding values
    # (mx.dequantize's; mlx-gen's float32 path keeps it); last-position logits of the first prompt
    ref_model, _ = load_model(__import__("pathlib").Path(path))
    owner, attr = EMBED.get(ref_model.model_type, ("model", "embed_tokens"))
    emb16 = getattr(getattr(ref_model, owner), attr)
    ref_model.update(tree_map(lambda a: a.astype(mx.float32) if a.dtype in (mx.bfloat16, mx.float16) else a,
                              ref_model.parameters()))
    if isinstance(emb16, nn.QuantizedEmbedding):
        class Rows(nn.Module):   # rows as the 16-bit model has them; as_linear (tied heads) in float32
            def __init__(self, e16, e32):
                super().__init__()
                self.e32 = e32
                self._rows = lambda x: e16(x).astype(mx.float32)
            def __call__(self, x):
                return self._rows(x)
            def as_linear(self, x):
                return self.e32.as_linear(x)
        e16, _ = load_model(__import__("pathlib").Path(path))
        setattr(getattr(ref_model, owner), attr, Rows(getattr(getattr(e16, owner), attr),
                                                      getattr(getattr(ref_model, owner), attr)))
    ref = ref_model(mx.array([prompts[0]]))[0, -1].astype(mx.float32)
    runs[0]["ref"] = base64.b64encode(np.array(ref).astype("<f4").tobytes()).decode()
    return runs


def prompts_for(vocab, seed):
    rng = np.random.default_rng(seed)
    return [[1] + [int(x) for x in rng.integers(3, vocab, n - 1)] for n in LENGTHS]


def ops_goldens():
    """single ops on random inputs: what tensor/mlxnum.c reproduces"""
    mx.random.seed(7)
    out = {}
    x32 = mx.random.normal((512,)) * 6
    t32 = mx.random.uniform(-3000, 3000, (512,))
    w = lambda a: b64(np.array(a.view(mx.uint32)).astype(np.uint32).view(np.uint16)) if a.dtype == mx.float32 else b64(words(a))
    out["f32"] = {"x": w(x32), "t": w(t32), "exp": w(mx.exp(x32)), "sin": w(mx.sin(t32)), "cos": w(mx.cos(t32)),
                  "erf": w(mx.erf(x32 / 4))}
    for name, dt in (("bfloat16", mx.bfloat16), ("float16", mx.float16)):
        x = (mx.random.normal((8, 96)) * 3).astype(dt)
        u = mx.random.normal((8, 96)).astype(dt)
        wn = (1 + 0.2 * mx.random.normal((96,))).astype(dt)
        bn = (0.2 * mx.random.normal((96,))).astype(dt)
        s = (mx.random.normal((8, 37)) * 4).astype(dt)
        q = mx.random.normal((1, 4, 5, 16)).astype(dt)
        k = mx.random.normal((1, 2, 12, 16)).astype(dt)
        v = mx.random.normal((1, 2, 12, 16)).astype(dt)
        r = (mx.random.normal((1, 4, 7, 16)) * 2).astype(dt)
        wd = mx.random.normal((40, 96)).astype(dt)
        bd = mx.random.normal((40,)).astype(dt)
        wq, sq, bq = mx.quantize(mx.random.normal((40, 128)).astype(dt), 64, 4)
        xq = mx.random.normal((3, 128)).astype(dt)
        from mlx_lm.models.activations import swiglu
        out[name] = {
            "x": b64(words(x)), "u": b64(words(u)), "w": b64(words(wn)), "b": b64(words(bn)), "s": b64(words(s)),
            "q": b64(words(q)), "k": b64(words(k)), "v": b64(words(v)), "r": b64(words(r)),
            "wd": b64(words(wd)), "bd": b64(words(bd)), "xq": b64(words(xq)),
            "wq": base64.b64encode(np.array(wq).astype("<u4").tobytes()).decode(),
            "sq": b64(words(sq)), "bq": b64(words(bq)),
            "silu": b64(words(nn.silu(x))), "swiglu": b64(words(swiglu(x, u))), "gelu": b64(words(nn.gelu(x))),
            "gelu_approx": b64(words(nn.gelu_approx(x))), "tanh": b64(words(mx.tanh(x))),
            "rms_norm": b64(words(mx.fast.rms_norm(x, wn, 1e-5))),
            "layer_norm": b64(words(mx.fast.layer_norm(x, wn, bn, 1e-5))),
            "softmax": b64(words(mx.softmax(s, axis=-1, precise=True))),
            "logsumexp": b64(words(mx.logsumexp(s, axis=-1))),
            # rope: dims 16, base 10000, scale 0.5, offset 37; and frequencies given, offset 100
            "rope": b64(words(mx.fast.rope(r, 16, traditional=False, base=10000.0, scale=0.5, offset=37))),
            "rope_trad": b64(words(mx.fast.rope(r, 16, traditional=True, base=10000.0, scale=1.0, offset=3))),
            "rope_freqs": b64(words(mx.fast.rope(r, 16, traditional=False, base=None, scale=1.0, offset=100,
                                                 freqs=mx.array([1, 1.5, 2, 3, 4, 5, 6, 8.0]) * 10.0))),
            "sdpa": b64(words(mx.fast.scaled_dot_product_attention(q, k, v, scale=24 ** -0.5, mask="causal"))),
            "matmul": b64(words(x @ wd.T)), "addmm": b64(words(mx.addmm(bd, x, wd.T))),
            "qmm": b64(words(mx.quantized_matmul(xq, wq, sq, bq, transpose=True, group_size=64, bits=4))),
        }
    return out


def main():
    args, work = sys.argv[1:], None
    if "--work" in args:
        work = args[args.index("--work") + 1]
        args = [a for a in args if a not in ("--work", work)]
    tmp = work or tempfile.mkdtemp()
    os.makedirs(OUT, exist_ok=True)
    mx.set_default_device(mx.cpu)
    g = {"versions": {"mlx": mx.__version__, "mlx_lm": mlx_lm.__version__},
         "lengths": list(LENGTHS), "n": N, "forms": [[d, q] for d, q in FORMS], "tiny": [], "real": []}
    for i, name in enumerate(FAMILIES):
        if (args and name not in args) or name in SKIP:
            continue
        src = os.path.join(ROOT, "tests", "data", "models", name)
        vocab = json.load(open(os.path.join(src, "config.json")))["vocab_size"]
        prompts = prompts_for(vocab, 1000 + i)
        for dtype, bits in FORMS:
            dst = os.path.join(tmp, f"{name}-{dtype}-{bits}")
            if not os.path.exists(dst):
                kw = dict(quantize=True, q_bits=bits, q_group_size=64) if bits else {}
                convert(src, dst, dtype=dtype, **kw)
            ent = {"name": name, "dtype": dtype, "bits": bits, "st_fnv": st_fnv(dst)}
            try:
                ent["runs"] = run_model(dst, prompts)
            except RuntimeError as e:   # mlx's CPU GatherMM is float32 only: no dense 16-bit MoE
                ent["mlx_error"] = str(e)
            if (name, dtype, bits) in ROTATING:
                model, _ = load_model(__import__("pathlib").Path(dst))
                ent["rotating"] = [{"prompt": p, "max_kv_size": mk, "tokens": [
                    int(t) for t, _ in generate_step(mx.array(p), model, max_tokens=N, max_kv_size=mk,
                                                     sampler=lambda lp: mx.argmax(lp, axis=-1))]}
                    for p in prompts[:3] for mk in MAX_KV]
            g["tiny"].append(ent)
            print(name, dtype, bits, flush=True)
    from tokenizers import Tokenizer
    for k, (rel, texts) in enumerate(REAL):
        path = os.path.join(ROOT, rel)
        if texts:
            tok = Tokenizer.from_file(os.path.join(path, "tokenizer.json"))
            prompts = [tok.encode(t).ids for t in texts]
        else:
            prompts = prompts_for(json.load(open(os.path.join(path, "config.json")))["vocab_size"], 2000 + k)
        g["real"].append({"path": rel, "runs": run_model(path, prompts, ngen=32)})
        print(rel, flush=True)
    g["ops"] = ops_goldens()
    with open(os.path.join(OUT, "goldens.json"), "w") as f:
        json.dump(g, f, separators=(",", ":"))
        f.write("\n")
    if not work:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
