#!/usr/bin/env python3
"""Tiny random-weight decoder LLM fixtures and their goldens, made with mlx-lm.

For each family in FAMILIES it writes tests/data/models/<name>/ (float32), <name>-4bit
(affine, group 32) and <name>-8bit (affine, group 64), each in mlx-community layout
(config.json, model.safetensors + index, tokenizer files), plus golden.json holding:
  prompt: token ids; logits: float32 logits of every prompt position (mlx-lm forward of
  the model as loaded from disk); greedy: 32 tokens from mlx_lm generate_step at
  temperature 0; min_margin: the smallest top-1/top-2 logit gap on the greedy path
  (seeds are tried until it is comfortable, so float rounding cannot flip a token).

More families live beside this script, one module per mechanism in tests/gen/llm_families/
(each defines FAMILIES like the one below and may define MODULE (model_type -> mlx_lm module),
SPREAD(cfg, key, value) -> value or None (None: the default weight spread below), QUANT
(name -> [(bits, group_size, mode), ...] replacing the affine 4-bit and 8-bit forms; the
directory of a form is <name>-<bits>bit for affine, <name>-<mode> otherwise) and
BUILD(cfg, seed) -> model or None (a model made another way, e.g. from transformers),
PENDING (names generated only when asked for by name)) and
MARGIN (name -> the smallest greedy margin accepted, in place of 0.05, for a family whose
architecture crowds the top logits, e.g. a soft-cap) and CACHED_LOGITS (names whose golden logits
come from a forward with the model's own cache, as generation runs it, for a model whose
cache-less call computes something else: gemma3n's KV-shared layers then use their own K/V).

usage: tests/gen/gen_llm_fixtures.py [NAME...]
"""
import json, os, shutil, sys
import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten
from mlx_lm.utils import load_model, save_model, save_config, quantize_model
from mlx_lm.generate import generate_step
from mlx_lm.models import cache as cache_mod

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "data", "models")
TOK = os.path.join(OUT, "tiny-tokenizer")
VOCAB = 384

BASE = dict(hidden_size=64, num_hidden_layers=2, intermediate_size=128, num_attention_heads=4,
            num_key_value_heads=2, rms_norm_eps=1e-5, vocab_size=VOCAB, rope_theta=10000.0,
            max_position_embeddings=512, torch_dtype="float32", bos_token_id=1, eos_token_id=2)
FAMILIES = {
    "llama-tiny": dict(BASE, model_type="llama", tie_word_embeddings=False),
    "llama-tied": dict(BASE, model_type="llama", tie_word_embeddings=True, head_dim=24,
                       rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                     "high_freq_factor": 4.0, "original_max_position_embeddings": 64}),
    "qwen3-tiny": dict(BASE, model_type="qwen3", tie_word_embeddings=True, head_dim=16),
    "llama-swa": dict(BASE, model_type="llama", tie_word_embeddings=False, sliding_window=5,
                      layer_types=["sliding_attention", "full_attention"]),
    "llama-dynrope": dict(BASE, model_type="llama", tie_word_embeddings=False, max_position_embeddings=8,
                          rope_scaling={"type": "dynamic", "factor": 2.0}),
    "qwen2-tiny": dict(BASE, model_type="qwen2", tie_word_embeddings=False),
    "mistral-tiny": dict(BASE, model_type="mistral", tie_word_embeddings=False, rope_theta=1000000.0,
                         sliding_window=5),
    "gemma-tiny": dict(BASE, model_type="gemma", head_dim=16),
    "gemma2-tiny": dict(BASE, model_type="gemma2", head_dim=16, attn_logit_softcapping=50.0,
                        final_logit_softcapping=30.0, query_pre_attn_scalar=16),
    "gemma3-tiny": dict(BASE, model_type="gemma3_text", head_dim=16, sliding_window=4, sliding_window_pattern=2,
                        query_pre_attn_scalar=16, rope_local_base_freq=10000.0, rope_theta=1000000.0,
                        rope_scaling={"rope_type": "linear", "factor": 2.0}),
    "phi3-tiny": dict(BASE, model_type="phi3", partial_rotary_factor=0.5, max_position_embeddings=4096,
                      original_max_position_embeddings=256, tie_word_embeddings=False,
                      rope_scaling={"type": "longrope", "long_factor": [1.0, 1.5, 2.0, 4.0],
                                    "short_factor": [1.0, 1.0, 1.0, 1.0]}),
    "granite-tiny": dict(BASE, model_type="granite", logits_scaling=1.5, attention_multiplier=0.25,
                         embedding_multiplier=2.0, residual_multiplier=0.8, attention_bias=False,
                         mlp_bias=False, tie_word_embeddings=False),
    "olmo2-tiny": dict(BASE, model_type="olmo2", tie_word_embeddings=False),
    "starcoder2-tiny": dict(BASE, model_type="starcoder2", norm_epsilon=1e-5, rope_theta=100000.0,
                            tie_word_embeddings=True),
    "smollm3-tiny": dict(BASE, model_type="smollm3", no_rope_layer_interval=2, tie_word_embeddings=False),
    "mixtral-tiny": dict(BASE, model_type="mixtral", num_local_experts=4, num_experts_per_tok=2,
                         tie_word_embeddings=False),
    "qwen3moe-tiny": dict(BASE, model_type="qwen3_moe", head_dim=16, num_experts=4, num_experts_per_tok=2,
                          decoder_sparse_step=1, mlp_only_layers=[1], moe_intermediate_size=32,
                          norm_topk_prob=True, tie_word_embeddings=False),
}
MODULE = {"mistral": "llama"}  # mlx_lm.utils.MODEL_REMAPPING
PROMPT = [1, 17, 200, 45, 99, 3, 250, 7, 128, 64, 300, 5]
OWNER = {}  # family name -> the llm_families module that defines it


def load_family_modules():
    import importlib.util, glob
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "llm_families")
    for f in sorted(glob.glob(os.path.join(here, "*.py"))):
        spec = importlib.util.spec_from_file_location("llm_families_" + os.path.basename(f)[:-3], f)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        for name, cfg in getattr(mod, "FAMILIES", {}).items():
            if name in FAMILIES:
                sys.exit(f"{f}: family {name} defined twice")
            FAMILIES[name] = cfg
            OWNER[name] = mod
        MODULE.update(getattr(mod, "MODULE", {}))


load_family_modules()


def make_tokenizer():
    """A tiny byte-level BPE trained on local text (only for CLI tests; not a quality model)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers, processors
    if os.path.exists(os.path.join(TOK, "tokenizer.json")):
        return
    os.makedirs(TOK, exist_ok=True)
    import glob
    text = []
    for f in sorted(glob.glob(os.path.join(os.path.dirname(json.__file__), "*.py")))[:40]:
        text.append(open(f, encoding="utf-8", errors="ignore").read())
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tr = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=["<|pad|>", "<|bos|>", "<|eos|>"],
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(text, tr)
    tok.post_processor = processors.TemplateProcessing(single="<|bos|> $A", pair="<|bos|> $A <|bos|> $B",
                                                       special_tokens=[("<|bos|>", 1)])
    tok.save(os.path.join(TOK, "tokenizer.json"))
    cfg = {"bos_token": "<|bos|>", "eos_token": "<|eos|>", "pad_token": "<|pad|>",
           "tokenizer_class": "PreTrainedTokenizerFast",
           "chat_template": "{% for m in messages %}<|bos|>{{ m['role'] }}\n{{ m['content'] }}<|eos|>\n{% endfor %}"
                            "{% if add_generation_prompt %}<|bos|>assistant\n{% endif %}"}
    json.dump(cfg, open(os.path.join(TOK, "tokenizer_config.json"), "w"), indent=2)


def build(cfg, seed, name=None):
    own = OWNER.get(name)
    if own is not None and hasattr(own, "BUILD"):
        model = own.BUILD(cfg, seed)
        if model is not None:
            return model
    tied = cfg.get("tie_word_embeddings", True)
    emb_scale, lin_scale = (1.0, 5.0) if tied else (12.0, 2.0)
    if cfg["model_type"].startswith("gemma"):
        emb_scale = 1.0  # these models scale embeddings by sqrt(hidden) themselves
    mx.random.seed(seed)
    mod = __import__("mlx_lm.models." + MODULE.get(cfg["model_type"], cfg["model_type"]),
                     fromlist=["Model", "ModelArgs"])
    model = mod.Model(mod.ModelArgs.from_dict(cfg))
    # spread the weights so that logits are far from ties
    params = tree_flatten(model.parameters())
    def spread(k, v):
        if own is not None and hasattr(own, "SPREAD"):
            r = own.SPREAD(cfg, k, v)
            if r is not None:
                return r
        if k == "model.norm.weight" and tied:
            f = {"gemma": 30.0, "gemma2": 3.0, "gemma3_text": 30.0}.get(cfg["model_type"], 8.0)
            return v * f + 0.1 * mx.random.normal(v.shape)
        if "norm" in k:
            return v + 0.1 * mx.random.normal(v.shape)
        if "lm_head" in k or "embed_tokens" in k:
            return v * emb_scale
        return v * lin_scale
    model.load_weights([(k, spread(k, v)) for k, v in params])
    mx.eval(model.parameters())
    return model


CLI_PROMPT = "def main():\n    return"
CLI_CHAT = [{"role": "user", "content": "Say hello in JSON."}]


def cli_golden(model, path):
    """What `mlx-gen -m DIR` must print: greedy ids and text for a text prompt and a chat,
    through mlx-lm's generate loop, detokenizer and chat template.  The prompt is encoded
    with HF `tokenizers` from tokenizer.json (add special tokens unless the text starts
    with BOS, mlx-lm's rule): transformers 5 would swap in the pre-tokenizer of the class
    its model_type implies, which these tiny fixtures (one shared tokenizer) do not have."""
    from mlx_lm.utils import load_tokenizer
    from mlx_lm.generate import stream_generate
    from tokenizers import Tokenizer
    import pathlib
    tok = load_tokenizer(pathlib.Path(path))
    raw = Tokenizer.from_file(os.path.join(path, "tokenizer.json"))
    out = {}
    for key in ("text", "chat"):
        if key == "text":
            bos = tok.bos_token
            prompt = raw.encode(CLI_PROMPT, add_special_tokens=not (bos and CLI_PROMPT.startswith(bos))).ids
        else:
            text = tok.apply_chat_template(CLI_CHAT, add_generation_prompt=True, tokenize=False)
            prompt = raw.encode(text, add_special_tokens=False).ids
        ids, text = [], ""
        for r in stream_generate(model, tok, prompt, max_tokens=16):
            text += r.text
            if r.finish_reason != "stop":
                ids.append(int(r.token))
        out[key] = ids
        out[key + "_out"] = text
    out["text_prompt"] = CLI_PROMPT
    out["chat_messages"] = CLI_CHAT
    return out


def golden(path, name=None):
    model, _ = load_model(__import__("pathlib").Path(path))
    if name in getattr(OWNER.get(name), "CACHED_LOGITS", ()):
        logits = model(mx.array([PROMPT]), cache=cache_mod.make_prompt_cache(model))[0].astype(mx.float32)
    else:
        logits = model(mx.array([PROMPT]))[0].astype(mx.float32)
    toks, margin = [], 1e9
    sampler = lambda lp: mx.argmax(lp, axis=-1)
    gen = generate_step(mx.array(PROMPT), model, max_tokens=32, sampler=sampler)
    # recompute margins on the greedy path with a full forward per step
    for t, lp in gen:
        toks.append(int(t))
        top = mx.sort(lp.reshape(-1))[-2:]
        margin = min(margin, float(top[1] - top[0]))
    if len(set(toks)) < 8:
        margin = 0.0  # a degenerate (repetitive) greedy path tests little: reject the seed
    cli = cli_golden(model, path)
    return {"cli": cli, "prompt": PROMPT, "logits": [[float(x) for x in row] for row in logits.tolist()],
            "greedy": toks, "min_margin": margin}


def save_dir(model, cfg, path, name=None):
    if os.path.exists(path):
        shutil.rmtree(path)
    os.makedirs(path)
    save_model(path, model)
    save_config(dict(cfg), os.path.join(path, "config.json"))
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(TOK, f), path)
    g = golden(path, name)
    json.dump(g, open(os.path.join(path, "golden.json"), "w"))
    return g["min_margin"]


def main():
    make_tokenizer()
    only = sys.argv[1:]
    for name, cfg in FAMILIES.items():
        if only and name not in only:
            continue
        if not only and name in getattr(OWNER.get(name), "PENDING", []):
            continue  # a module's fixtures that wait for something: generated only by name
        forms = getattr(OWNER.get(name), "QUANT", {}).get(name, [(4, 32, "affine"), (8, 64, "affine")])
        least = getattr(OWNER.get(name), "MARGIN", {}).get(name, 0.05)
        for seed in range(20):
            model = build(cfg, seed, name)
            m = save_dir(model, cfg, os.path.join(OUT, name), name)
            if m < least:
                continue
            ok = True
            for bits, gs, mode in forms:
                qm = build(cfg, seed, name)
                qm, qcfg = quantize_model(qm, dict(cfg), gs, bits, mode=mode)
                sfx = f"{bits}bit" if mode == "affine" else mode
                mq = save_dir(qm, qcfg, os.path.join(OUT, f"{name}-{sfx}"), name)
                if mq < least:
                    ok = False
            if ok:
                print(name, "seed", seed, "float margin", round(m, 4))
                break
        else:
            sys.exit(f"{name}: no seed gave comfortable margins")


if __name__ == "__main__":
    main()
