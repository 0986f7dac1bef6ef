#!/usr/bin/env python3
"""Configs written by transformers >= 5 for the tiny decoder fixtures, and what mlx-lm makes of them.

transformers 5 writes config.json differently from transformers 4: rope_theta and rope_scaling
move under "rope_parameters" (gemma3_text: one entry per layer type, rope_local_base_freq
becoming rope_parameters.sliding_attention.rope_theta), qwen3_moe's num_experts becomes
num_local_experts, and layer_types / sliding_window / head_dim appear where the class has them.
mlx_lm.convert copies config.json as it finds it, so MLX folders made from repositories saved
with transformers 5 carry that form.  Each case below takes a fixture of
tests/data/models/ (tests/gen/gen_llm_fixtures.py), lets transformers 5 itself rewrite its
config.json (AutoConfig.from_pretrained + save_pretrained, as a repository re-saved with
transformers 5 has it; `edit` changes the transformers-4 config first, `after` the written one),
and runs mlx-lm on the fixture's weights with that config:
  - mlx-lm refuses it: "mlx_lm_error" (its message);
  - same logits as the fixture's golden.json (max |diff| <= 1e-6 * (1 + |x|)): "same_as_fixture";
  - else "rows" (two prompt positions, the middle one and the last) with their "logits" (7
    significant digits), "greedy" (32 tokens from generate_step at temperature 0) and "margins"
    (the top-1/top-2 logit gap of each greedy step: the weights were not chosen for these
    configs, so some steps are near ties that float rounding may flip, and the test compares
    the tokens up to the first such step).
Writes tests/data/tf5/golden.json; tests/unit/test_config5.c builds each folder at test time
(the fixture's files linked, config.json from here) and checks mlx-gen against it.

usage: tests/gen/gen_tf5_configs.py [NAME...]   (needs transformers >= 5, mlx, mlx-lm 0.32; NAMEs: only those
       cases are recomputed, the others kept from the existing golden.json)
"""
import copy, json, os, pathlib, shutil, sys, tempfile
import mlx.core as mx
import mlx_lm
import transformers
from transformers import AutoConfig
from mlx_lm.utils import load_model
from mlx_lm.generate import generate_step

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_llm_fixtures  # noqa: E402,F401  (the family modules' set-up: e.g. mlx-lm's olmo needs theirs)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MODELS = os.path.join(ROOT, "tests", "data", "models")
OUT = os.path.join(ROOT, "tests", "data", "tf5")


def drop(*keys):
    def f(c):
        for k in keys:
            c.pop(k, None)
    return f


def setv(**kv):
    return lambda c: c.update(kv)


# name: (fixture, edit of the transformers-4 config or None, edit of the written config or None, why)
CASES = {
    "llama": ("llama-tiny", None, None, "theta 10000 moves to rope_parameters; mlx-lm's llama default is 10000"),
    "llama-llama3": ("llama-tied", None, None, "llama3 scaling moves to rope_parameters: mlx-lm's llama ignores it"),
    "llama-dynamic": ("llama-dynrope", None, None, "dynamic scaling moves to rope_parameters: ignored"),
    "llama-swa": ("llama-swa", None, None, "layer_types / sliding_window stay top-level"),
    "mistral": ("mistral-tiny", None, None, "theta 1e6 moves to rope_parameters: mlx-lm (llama) uses 10000"),
    "qwen2": ("qwen2-tiny", None, None, "theta 10000 moves to rope_parameters: mlx-lm's qwen2 default is 1e6"),
    "qwen3": ("qwen3-tiny", None, None, "mlx-lm's qwen3 reads rope_parameters.rope_theta (10000)"),
    "qwen3-theta1e6": ("qwen3-tiny", setv(rope_theta=1000000.0), None,
                       "only rope_parameters.rope_theta = 1e6: must not run as 10000"),
    "qwen3-yarn": ("qwen3-tiny", setv(rope_theta=1000000.0, rope_scaling={
        "rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 128}), None,
                   "mlx-lm's qwen3 takes rope_parameters as the scaling config (yarn)"),
    "qwen3-noparams": ("qwen3-tiny", None, drop("rope_parameters"),
                       "no rope_theta anywhere: mlx-lm's qwen3 refuses"),
    "qwen3_moe": ("qwen3moe-tiny", None, None,
                  "num_experts -> num_local_experts, rope_theta -> rope_parameters: mlx-lm's qwen3_moe requires both"),
    "mixtral": ("mixtral-tiny", None, None, "theta 10000 moves to rope_parameters: mlx-lm's mixtral default is 1e6"),
    "gemma": ("gemma-tiny", None, None, "theta 10000 moves: mlx-lm's gemma default is 10000"),
    "gemma2": ("gemma2-tiny", None, None, "layer_types and sliding_window 4096 appear: mlx-lm's gemma2 ignores them"),
    "gemma4_text": ("gemma4-tiny", None, None,
                    "transformers 5 writes per_layer_config instead of global_head_dim, which mlx-lm does not "
                    "read: its default 512 does not fit the full layers' weights"),
    "gemma4_text-nolayertypes": ("gemma4-tiny", drop("layer_types"), None,
                                 "transformers 5 writes its own layer_types (sliding but the last), leaving the "
                                 "KV-shared full layer no earlier full layer: mlx-lm fails (KeyError)"),
    "gemma3_text": ("gemma3-tiny", None, None,
                    "rope_theta / rope_local_base_freq / rope_scaling move to rope_parameters.{full,sliding}_attention"),
    "gemma3_text-native": ("gemma3-tiny", None, drop("sliding_window_pattern"),
                           "as Gemma3TextConfig writes it when built anew: _sliding_window_pattern only (mlx-lm: 6)"),
    "phi3": ("phi3-tiny", None, None, "longrope moves to rope_parameters: mlx-lm's phi3 runs plain RoPE"),
    "granite": ("granite-tiny", None, None, "rope_theta moves to rope_parameters: mlx-lm's granite requires it"),
    "olmo2": ("olmo2-tiny", None, None, "theta 10000 moves: mlx-lm's olmo2 default is 10000"),
    "starcoder2": ("starcoder2-tiny", None, None, "theta 1e5 moves: mlx-lm's starcoder2 default is 1e5"),
    "smollm3": ("smollm3-tiny", None, None, "layer_types and no_rope_layers appear"),
    "smollm3-swa": ("smollm3-tiny", setv(use_sliding_window=True, sliding_window=5), None,
                    "layer_types marks the no-RoPE layers sliding: mlx-lm (llama's model) uses the window"),
    # gated DeltaNet
    "qwen3_next": ("qwen3next-tiny", None, None,
                   "rope_theta and partial_rotary_factor move to rope_parameters: mlx-lm's qwen3_next requires them"),
    "qwen3_next-top": ("qwen3next-tiny", None, setv(rope_theta=10000.0, partial_rotary_factor=0.5,
                                                    full_attention_interval=2),
                       "with the keys transformers 5 moved or dropped back at the top level: runs"),
    "qwen3_5": ("qwen3_5-tiny", None, None,
                "the nested text_config as Qwen3_5Config writes it: layer_types, no full_attention_interval "
                "(mlx-lm's default 4 puts a linear layer where the weights hold attention)"),
    "qwen3_5-interval": ("qwen3_5-tiny", None, lambda c: c["text_config"].update(full_attention_interval=2),
                         "the same with full_attention_interval back: runs, rope_parameters as before"),
    # dense group A (lib/models/dense_a.c)
    "phi": ("phi-tiny", None, None, "partial_rotary_factor / rope_theta may move: mlx-lm's phi reads the top level"),
    "cohere": ("cohere-tiny", None, None, "rope_theta moves: mlx-lm's cohere default is 8e6"),
    "cohere2": ("cohere2-tiny", None, None, "rope_theta moves (mlx-lm: 5e4), layer_types appear"),
    "internlm2": ("internlm2-tiny", None, None, "no transformers class (remote code): the config as it is"),
    "internlm3": ("internlm3-tiny", None, None, "rope_scaling moves to rope_parameters"),
    "glm4": ("glm4-tiny", None, None, "rope_theta / partial_rotary_factor move: mlx-lm's glm4 requires rope_theta"),
    "exaone4": ("exaone4-tiny", None, None, "rope_theta moves: mlx-lm's exaone4 requires it"),
    "ernie4_5": ("ernie45-tiny", None, None, "rope_theta moves: mlx-lm's ernie4_5 requires it"),
    "olmo3": ("olmo3-tiny", None, None, "rope_theta / rope_scaling move: mlx-lm's olmo3 requires rope_theta"),
    "minicpm": ("minicpm-tiny", None, None, "no transformers class (remote code): the config as it is"),
    "exaone": ("exaone-tiny", None, None, "rope_theta moves: mlx-lm's exaone requires it"),
    "helium": ("helium-tiny", None, None, "rope_theta moves: mlx-lm's helium requires it"),
    "glm": ("glm-tiny", None, None, "rope_theta moves: mlx-lm's glm default is 10000"),
    "olmo": ("olmo-tiny", None, None, "transformers' OlmoConfig (the HF layout) rewrites the ai2 keys"),
    # multi-head latent attention and the DeepSeek-style mixture of experts (kimi_k2 and deepseek v1
    # have no config class in transformers: only their own remote code writes their config.json)
    "deepseek_v3": ("deepseek_v3-tiny", None, None,
                    "yarn moves to rope_parameters: mlx-lm's deepseek_v3 runs plain RoPE without the mscale"),
    "deepseek_v2": ("deepseek_v2-tiny", None, None,
                    "rope_scaling moves to rope_parameters: mlx-lm's deepseek_v2 needs rope_scaling (refused)"),
    "glm4_moe": ("glm4_moe-tiny", None, None, "theta 10000 moves to rope_parameters: mlx-lm's glm4_moe requires rope_theta"),
    "dots1": ("dots1-tiny", None, None, "theta 10000 moves to rope_parameters: mlx-lm's dots1 requires rope_theta"),
    "minicpm3": ("minicpm3-tiny", None, None, "longrope moves to rope_parameters: mlx-lm's minicpm3 needs rope_scaling"),
    "mistral4": ("mistral4-tiny", None, None, "mlx-lm's mistral4 reads rope_parameters (already there)"),
    # mixture-of-experts families (lib/models/moe.c)
    "qwen2_moe": ("qwen2moe-tiny", None, None, "theta 1e6 moves to rope_parameters: mlx-lm's qwen2_moe default is 1e6"),
    "olmoe": ("olmoe-tiny", None, None, "theta 10000 moves to rope_parameters: mlx-lm's olmoe default is 10000"),
    "granitemoe": ("granitemoe-tiny", None, None, "rope_theta moves to rope_parameters: mlx-lm's granitemoe requires it"),
    "phimoe": ("phimoe-tiny", None, None, "longrope moves to rope_parameters: mlx-lm's phimoe runs plain RoPE"),
    "ernie4_5_moe": ("ernie45moe-tiny", None, None, "rope_theta moves to rope_parameters: mlx-lm's ernie4_5_moe requires it"),
    "bailing_moe": ("bailing-tiny", None, None, "no transformers class (remote code): the config stays as written"),
    "hunyuan": ("hunyuan-tiny", None, None, "no transformers class (remote code): the config stays as written"),
    "hunyuan_v1_dense": ("hunyuandense-tiny", None, None,
                         "rope_theta and the alpha scaling move to rope_parameters: mlx-lm reads neither"),
    "minimax": ("minimax-tiny", None, None, "rope_theta moves to rope_parameters: mlx-lm's minimax requires it"),
    "dbrx": ("dbrx-tiny", None, None, "transformers 5's DbrxConfig rewrite of attn_config / ffn_config"),
    "llama4_text": ("llama4text-tiny", None, None, "rope_theta moves to rope_parameters: mlx-lm's llama4_text requires it"),
    # GPT-style dense decoders (lib/models/dense_b.c)
    "gpt_neox": ("gptneox-tiny", None, None, "rotary_emb_base / rotary_pct as transformers 5 writes them"),
    "stablelm": ("stablelm-tiny", None, None, "rope_theta / partial_rotary_factor as transformers 5 writes them"),
    "gpt2": ("gpt2-tiny", None, None, "GPT-2 key names kept"),
    "gpt_bigcode": ("gptbigcode-tiny", None, None, "GPT-2 key names, multi_query"),
    "gptj": ("gptj-tiny", None, None, "rotary_dim, n_positions"),
    "nemotron": ("nemotron-tiny", None, None, "partial_rotary_factor and linear scaling as transformers 5 writes them"),
    "seed_oss": ("seedoss-tiny", None, None, "rope_theta moves to rope_parameters: mlx-lm's seed_oss default is 10000"),
    "apertus": ("apertus-tiny", None, None, "rope_theta moves to rope_parameters: mlx-lm's apertus requires it"),
    "bitnet": ("bitnet-tiny", None, None, "rope_theta moves to rope_parameters: mlx-lm's bitnet default is 10000"),
    "nanochat": ("nanochat-tiny", None, None, "rope_theta as transformers 5 writes it"),
    "openelm": ("openelm-tiny", None, None, "remote code: transformers 5 does not rewrite its config"),
    # recurrent-state families
    "lfm2": ("lfm2-tiny", None, None, "rope_theta moves to rope_parameters: mlx-lm's lfm2 reads it there"),
    "mamba2": ("mamba2-tiny", None, None, "Mamba2Config rewrites the mamba2 keys"),
    "mamba": ("mamba-tiny", None, None, "MambaConfig rewrites the mamba keys"),
    "falcon_mamba": ("falcon-mamba-tiny", None, None, "FalconMambaConfig rewrites the keys"),
    "nemotron_h": ("nemotron-h-tiny", None, None, "the block pattern as transformers 5 writes it"),
    "nemotron_h-moe": ("nemotron-h-moe", None, None, "the routed experts' keys as transformers 5 writes them"),
    "granitemoehybrid-moe": ("granitemoehybrid-moe", None, None, "the MoE variant's layer_types as transformers 5 writes them"),
    "falcon_h1": ("falcon-h1-tiny", None, None, "FalconH1Config: rope_theta moves to rope_parameters"),
    "granitemoehybrid": ("granitemoehybrid-tiny", None, None, "rope_theta moves to rope_parameters"),
    "jamba": ("jamba-tiny", None, None, "JambaConfig rewrites the keys"),
    # several residual streams, per-layer inputs, KV sharing (lib/models/gemma3n.c)
    "gemma3n": ("gemma3n-tiny", None, None,
                "rope_theta / rope_local_base_freq move to text_config.rope_parameters: mlx-lm's TextConfig refuses"),
    "gemma3n-keys": ("gemma3n-tiny", None, lambda c: c["text_config"].update(rope_theta=1000000.0,
                                                                            rope_local_base_freq=10000.0),
                     "Gemma3nConfig's form (vision / audio configs, rope_parameters) with the two bases back: runs"),
}


def auto_cases():
    """A case for every fixture family of tests/gen/llm_families/ whose model_type CASES lacks:
    the fixture's config as transformers 5 writes it, no edits."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import gen_llm_fixtures as g
    have = {json.load(open(os.path.join(MODELS, f, "config.json")))["model_type"]
            for f, *_ in CASES.values() if os.path.exists(os.path.join(MODELS, f, "config.json"))}
    out = {}
    for name in g.OWNER:
        p = os.path.join(MODELS, name, "config.json")
        if not os.path.exists(p):
            continue
        mt = json.load(open(p))["model_type"]
        if mt in have or mt in out:
            continue
        out[mt] = (name, None, None, "as transformers 5 writes the fixture's config")
    return out


def tf5_config(cfg):
    """config.json as transformers 5 writes the transformers-4 config cfg (a model_type it has no
    class for, a remote-code model, keeps the config as written)."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
    if cfg["model_type"] not in CONFIG_MAPPING_NAMES:
        return copy.deepcopy(cfg)
    d, o = tempfile.mkdtemp(), tempfile.mkdtemp()
    try:
        json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
        try:
            AutoConfig.from_pretrained(d).save_pretrained(o)
        except ValueError as e:  # a remote-code model (openelm): transformers leaves its config as it is
            if "does not recognize this architecture" not in str(e):
                raise
            return copy.deepcopy(cfg)
        return json.load(open(os.path.join(o, "config.json")))
    finally:
        shutil.rmtree(d)
        shutil.rmtree(o)


def run(folder, prompt, fixture=None):
    model, _ = load_model(pathlib.Path(folder))
    own = gen_llm_fixtures.OWNER.get(fixture)
    if fixture in getattr(own, "CACHED_LOGITS", ()):   # as the fixture's golden logits (gen_llm_fixtures)
        from mlx_lm.models.cache import make_prompt_cache
        logits = model(mx.array([prompt]), cache=make_prompt_cache(model))[0].astype(mx.float32)
    else:
        logits = model(mx.array([prompt]))[0].astype(mx.float32)
    toks, margins = [], []
    for t, lp in generate_step(mx.array(prompt), model, max_tokens=32, sampler=lambda lp: mx.argmax(lp, axis=-1)):
        toks.append(int(t))
        top = mx.sort(lp.reshape(-1))[-2:]
        margins.append(float(f"{float(top[1] - top[0]):.4g}"))
    return logits.tolist(), toks, margins


def main():
    if int(transformers.__version__.split(".")[0]) < 5:
        sys.exit(f"transformers >= 5 is needed (have {transformers.__version__})")
    out = {"transformers": transformers.__version__, "mlx_lm": mlx_lm.__version__, "cases": {}}
    cases = dict(CASES)
    cases.update(auto_cases())
    only = sys.argv[1:]   # names: recompute only these, keep the other cases as written
    if only:
        out["cases"] = json.load(open(os.path.join(OUT, "golden.json")))["cases"]
    for name, (fixture, edit, after, why) in cases.items():
        if only and name not in only:
            continue
        src = os.path.join(MODELS, fixture)
        cfg = json.load(open(os.path.join(src, "config.json")))
        if edit:
            edit(cfg)
        try:
            new = tf5_config(cfg)
        except Exception as e:   # a model_type transformers has no class for: no other form exists
            out["cases"][name] = {"fixture": fixture, "config": cfg, "no_transformers": f"{type(e).__name__}: {e}"[:300],
                                  "why": "transformers 5 cannot read it, so writes no other form"}
            print(f"{name:20s} transformers: {type(e).__name__}")
            continue
        new.pop("transformers_version", None)
        if after:
            after(new)
        gold = json.load(open(os.path.join(src, "golden.json")))
        case = {"fixture": fixture, "why": why, "config": new}
        tmp = tempfile.mkdtemp()
        try:
            for f in os.listdir(src):
                if f not in ("config.json", "golden.json", "maxkv.json"):
                    os.symlink(os.path.join(src, f), os.path.join(tmp, f))
            json.dump(new, open(os.path.join(tmp, "config.json"), "w"), indent=2)
            try:
                logits, toks, margins = run(tmp, gold["prompt"], fixture)
            except Exception as e:  # what mlx-lm says when it cannot load the folder
                case["mlx_lm_error"] = f"{type(e).__name__}: {e}"
                logits = None
        finally:
            shutil.rmtree(tmp)
        if logits is not None:
            ref = gold["logits"]
            worst = max(abs(a - b) / (1 + abs(b)) for ra, rb in zip(logits, ref) for a, b in zip(ra, rb))
            case["max_rel_diff_to_fixture"] = worst
            if worst <= 1e-6 and toks == gold["greedy"]:
                case["same_as_fixture"] = True
            else:
                rows = [len(logits) // 2, len(logits) - 1]
                case["rows"] = rows
                case["logits"] = [[float(f"{x:.7g}") for x in logits[r]] for r in rows]
                case["greedy"] = toks
                case["margins"] = margins
        out["cases"][name] = case
        state = case.get("mlx_lm_error") or ("same as fixture" if case.get("same_as_fixture") else
                                              f"differs (max rel {case['max_rel_diff_to_fixture']:.3g}, "
                                              f"min margin {min(case['margins']):.3g})")
        print(f"{name:20s} {state}")
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "golden.json"), "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
