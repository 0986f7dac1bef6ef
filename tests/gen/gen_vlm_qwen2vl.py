#!/usr/bin/env python3
"""gen_vlm_qwen2vl.py - tiny random-weight Qwen2-VL and Qwen2.5-VL model folders made
with the real mlx-vlm package, plus goldens for the C mlx-vlm port.

Run from the repo root with the mlx-vlm venv:
    HF_HUB_OFFLINE=1 /work/venv-mlxvlm/bin/python tests/gen/gen_vlm_qwen2vl.py

Versions: mlx 0.32.4 + mlx-cpu 0.32.4, mlx-vlm 0.7.10, transformers 5.25.0, tokenizers 0.23.3,
Pillow 13.0.0 (no torch).  The images are tests/data/vlm/images (gen_vlm_idefics3.py makes them).

What it does (tests/data/vlm/README.md documents the outputs), per family:
 1. a byte-level BPE tokenizer (HF `tokenizers`, trained on tests/data/tokenizers/corpus.txt,
    400 ids) followed by the Qwen special tokens in Qwen's order (<|endoftext|> 400 ...
    <|image_pad|> 412, <|video_pad|> 413), and Qwen2-VL's chat template;
 2. an HF-layout float32 folder (config.json with the text keys at the top level,
    preprocessor_config.json, tokenizer files, model.safetensors with HF names "visual.*",
    "model.*", torch Conv3d layout) whose random weights are drawn (fixed seed) for every
    parameter of the mlx-vlm model;
 3. mlx_vlm.convert.convert() of it -> float32, 4-bit and 8-bit (group 64);
 4. goldens computed with mlx-vlm as mlx_vlm.generate does (prefill of all but the last
    token, then the last alone; M-RoPE positions from get_rope_index, decode steps at
    cache offset + rope_delta).
"""
import json
import math
import os
import shutil
import sys
import tempfile

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DATA = os.path.join(ROOT, "tests", "data", "vlm")
IMG_DIR = os.path.join(DATA, "images")
CORPUS = os.path.join(ROOT, "tests", "data", "tokenizers", "corpus.txt")

SEED = 20261208
MAX_TOKENS = 32
BASE_VOCAB = 400

# Qwen2-VL-2B-Instruct's chat template (the same in Qwen2.5-VL-3B-Instruct)
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
            "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
            "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]
VOCAB = 414   # 400 BPE + 14 specials (no unreachable ids: mlx-vlm's detokenizer fails on them)


def build_tokenizer():
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    lines = [json.loads(l) for l in open(CORPUS, encoding="utf-8")]
    lines += open(os.path.join(ROOT, "README.md"), encoding="utf-8").read().splitlines()
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(pattern=__import__("tokenizers").Regex(
            r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"),
            behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tr = trainers.BpeTrainer(vocab_size=BASE_VOCAB, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                             show_progress=False)
    tok.train_from_iterator(lines, tr)
    assert tok.get_vocab_size() == BASE_VOCAB, tok.get_vocab_size()
    tok.add_special_tokens([AddedToken(s, normalized=False, special=True) for s in SPECIALS])
    for i, s in enumerate(SPECIALS):
        assert tok.token_to_id(s) == BASE_VOCAB + i, s
    return tok


def write_tokenizer_files(tok, out):
    tok.save(os.path.join(out, "tokenizer.json"))
    added = {str(tok.token_to_id(s)): {"content": s, "lstrip": False, "normalized": False, "rstrip": False,
                                       "single_word": False, "special": True} for s in SPECIALS}
    cfg = {
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "additional_special_tokens": SPECIALS[1:],
        "bos_token": None,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 32768,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }
    json.dump(cfg, open(os.path.join(out, "tokenizer_config.json"), "w"), indent=2)
    json.dump({"chat_template": CHAT_TEMPLATE}, open(os.path.join(out, "chat_template.json"), "w"), indent=2)


def hf_config(kind, heads=False):
    """heads: the real checkpoints' head sizes (vision head_dim 80, text head_dim 128 with
    mrope_section [16, 24, 24]) and max_pixels 448^2, widths otherwise small (local-models/)."""
    ids = {s: BASE_VOCAB + i for i, s in enumerate(SPECIALS)}
    text = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                num_key_value_heads=1, rms_norm_eps=1e-6, rope_theta=1000000.0, max_position_embeddings=32768,
                vocab_size=VOCAB, tie_word_embeddings=False, hidden_act="silu", sliding_window=32768,
                use_sliding_window=False, max_window_layers=2, attention_dropout=0.0, use_cache=True,
                rope_scaling={"type": "mrope", "mrope_section": [4, 6, 6]},   # head_dim 32: 16 pairs
                bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], torch_dtype="float32")
    if kind == "qwen2_vl":   # Qwen2-VL-2B-Instruct, reduced
        vision = dict(depth=2, embed_dim=32, hidden_size=64, hidden_act="quick_gelu", mlp_ratio=4, num_heads=2,
                      in_chans=3, in_channels=3, patch_size=14, spatial_merge_size=2, spatial_patch_size=14,
                      temporal_patch_size=2, model_type="qwen2_vl")
        arch = "Qwen2VLForConditionalGeneration"
    else:                    # Qwen2.5-VL-3B-Instruct, reduced (window 112 px = 4x4 merged tokens)
        vision = dict(depth=4, hidden_size=32, intermediate_size=48, out_hidden_size=64, hidden_act="silu",
                      num_heads=2, in_chans=3, in_channels=3, patch_size=14, spatial_merge_size=2,
                      spatial_patch_size=14, temporal_patch_size=2, window_size=112, fullatt_block_indexes=[1, 3],
                      tokens_per_second=2, model_type="qwen2_5_vl")
        arch = "Qwen2_5_VLForConditionalGeneration"
    if heads:
        text.update(hidden_size=256, num_attention_heads=2, intermediate_size=512,
                    rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]})
        if kind == "qwen2_vl":
            vision.update(depth=4, embed_dim=160, hidden_size=256)
        else:
            vision.update(depth=8, hidden_size=160, intermediate_size=432, out_hidden_size=256,
                          fullatt_block_indexes=[3, 7])
    return dict(architectures=[arch], model_type=kind, vision_config=vision,
                image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
                vision_token_id=ids["<|vision_pad|>"], **text)


def preprocessor_config(kind, heads=False):
    return {
        "do_convert_rgb": True, "do_normalize": True, "do_rescale": True, "do_resize": True,
        "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
        "image_processor_type": "Qwen2VLImageProcessor", "merge_size": 2, "patch_size": 14,
        "temporal_patch_size": 2, "resample": 3, "rescale_factor": 1 / 255,
        "min_pixels": 3136, "max_pixels": 448 * 448 if heads else 50176,
        "processor_class": "Qwen2VLProcessor" if kind == "qwen2_vl" else "Qwen2_5_VLProcessor",
    }


def make_mlx_model(config):
    from mlx_vlm.utils import get_model_and_args, update_module_configs
    model_class, _ = get_model_and_args(config=config)
    cfg = json.loads(json.dumps(config))
    mc = model_class.ModelConfig.from_dict(cfg)
    mc = update_module_configs(mc, model_class, cfg, ["text", "vision"])
    return model_class.Model(mc)


def random_weights(model, seed):
    """Every parameter (names sorted, one numpy Generator): norm weights 1+0.1N, biases 0.02N,
    token embeddings N(0,1), lm_head N(0, 9/fan_in) (untied, unlike the 2B/3B checkpoints: a tied
    random head only repeats its input token), linears / patch conv N(0, 1/fan_in)."""
    from mlx.utils import tree_flatten
    rng = np.random.default_rng(seed)
    out = {}
    for name, p in sorted(tree_flatten(model.parameters()), key=lambda kv: kv[0]):
        shape = tuple(p.shape)
        z = rng.standard_normal(shape)
        leaf = name.rsplit(".", 2)
        if name.endswith(".bias"):
            w = 0.02 * z
        elif ("norm" in leaf[-2] or "ln_q" in leaf[-2]) and name.endswith(".weight"):
            w = 1.0 + 0.1 * z
        elif "embed_tokens" in name:
            w = z
        elif "lm_head" in name:
            w = 3.0 * z / math.sqrt(shape[-1])
        elif "patch_embed" in name:
            w = z / math.sqrt(np.prod(shape[1:]))
        else:
            assert len(shape) == 2, name
            w = z / math.sqrt(shape[-1])
        out[name] = w.astype(np.float32)
    return out


def to_hf_names(weights):
    hf = {}
    for k, v in weights.items():
        if k.startswith("vision_tower."):
            nk = "visual." + k[len("vision_tower."):]
        elif k.startswith("language_model.model."):
            nk = "model." + k[len("language_model.model."):]
        elif k.startswith("language_model.lm_head"):
            nk = k[len("language_model."):]
        else:
            raise ValueError(k)
        if k.endswith("patch_embed.proj.weight"):   # mlx [D, t, p, p, C] -> torch [D, C, t, p, p]
            v = np.ascontiguousarray(v.transpose(0, 4, 1, 2, 3))
        hf[nk] = v
    return hf


def build(kind, outs, tmp, heads=False):
    from safetensors.numpy import save_file
    from mlx_vlm.convert import convert
    tok = build_tokenizer()
    config = hf_config(kind, heads)
    model = make_mlx_model(json.loads(json.dumps(config)))
    weights = random_weights(model, SEED + (0 if kind == "qwen2_vl" else 1))
    del model
    hf = os.path.join(tmp, kind)
    os.makedirs(hf, exist_ok=True)
    write_tokenizer_files(tok, hf)
    json.dump(config, open(os.path.join(hf, "config.json"), "w"), indent=2)
    json.dump(preprocessor_config(kind, heads), open(os.path.join(hf, "preprocessor_config.json"), "w"), indent=2)
    json.dump({"processor_class": preprocessor_config(kind)["processor_class"]},
              open(os.path.join(hf, "processor_config.json"), "w"), indent=2)
    json.dump({"bos_token_id": BASE_VOCAB, "eos_token_id": [BASE_VOCAB + 2, BASE_VOCAB], "pad_token_id": BASE_VOCAB},
              open(os.path.join(hf, "generation_config.json"), "w"), indent=2)
    save_file(to_hf_names(weights), os.path.join(hf, "model.safetensors"), metadata={"format": "pt"})
    for path, bits in outs:
        if os.path.exists(path):
            shutil.rmtree(path)
        if bits is None:
            convert(hf, mlx_path=path, dtype="float32")
        else:
            convert(hf, mlx_path=path, quantize=True, q_group_size=64, q_bits=bits, dtype="float32")
        readme = os.path.join(path, "README.md")
        if os.path.exists(readme):
            os.remove(readme)
    import mlx.core as mx
    w = mx.load(os.path.join(outs[0][0], "model.safetensors"))
    assert sorted(w) == sorted(weights), sorted(set(w) ^ set(weights))
    for k, v in weights.items():
        assert np.array_equal(np.array(w[k]), v), k


CASES = [
    {"images": ["tiny_grey.png"], "prompt": "Describe this image."},
    {"images": ["gradient.png"], "prompt": "What shapes are in this picture?"},
    {"images": ["portrait_exif6.jpg"], "prompt": "Describe this image."},
    {"images": ["rgba.png", "gradient.png"], "prompt": "Compare these two images."},
]


def run_case(model, processor, ci, case, want_tower):
    import mlx.core as mx
    from mlx_vlm import generate
    from mlx_vlm.models import cache as mcache
    from mlx_vlm.prompt_utils import apply_chat_template
    from mlx_vlm.utils import prepare_inputs

    cfg = model.config
    tokenizer = processor.tokenizer
    paths = [os.path.join(IMG_DIR, f) for f in case["images"]]
    templated = apply_chat_template(processor, cfg, case["prompt"], num_images=len(paths))
    inputs = prepare_inputs(processor, images=paths, prompts=templated, image_token_index=cfg.image_token_id,
                            add_special_tokens=False)
    input_ids = inputs["input_ids"]
    pixel_values = inputs["pixel_values"]
    grid = inputs["image_grid_thw"]
    ids = np.array(input_ids[0]).astype(np.int32)
    extra = {k: v for k, v in inputs.items() if k not in ("input_ids", "pixel_values", "attention_mask")}
    out = model.get_input_embeddings(input_ids, pixel_values, mask=inputs.get("attention_mask"), **extra)
    emb = out.inputs_embeds
    mx.eval(emb)
    img_pos = ids == cfg.image_token_id
    features = np.array(emb[0])[img_pos].astype(np.float32)
    feats2 = np.array(model.vision_tower(pixel_values, grid, output_hidden_states=False))
    assert np.array_equal(feats2, features), np.abs(feats2 - features).max()
    pos_ids = np.array(out.position_ids)[:, 0, :].T.astype(np.int32)   # [n, 3]
    delta = int(np.array(out.rope_deltas).reshape(-1)[0])

    # prefill as generate_step: all but the last token, then the last alone
    lm = model.language_model
    c = mcache.make_prompt_cache(lm)
    n = ids.shape[0]
    kw = {"position_ids": out.position_ids, "rope_deltas": out.rope_deltas}
    lm(input_ids[:, :n - 1], inputs_embeds=emb[:, :n - 1], cache=c, **kw)
    o = lm(input_ids[:, n - 1:], inputs_embeds=emb[:, n - 1:], cache=c, **kw)
    logits0 = np.array(o.logits[0, -1]).astype(np.float32)
    eos = list(tokenizer.stopping_criteria.eos_token_ids)
    greedy, margins, lg = [], [], logits0
    for _ in range(MAX_TOKENS):
        s = np.sort(lg)
        margins.append(float(s[-1] - s[-2]))
        t = int(np.argmax(lg))
        if t in eos:
            break
        greedy.append(t)
        lg = np.array(lm(mx.array([[t]]), cache=c).logits[0, -1])
    res = generate(model, processor, templated, image=paths, max_tokens=MAX_TOKENS, temperature=0.0, verbose=False)
    tok_ids = [int(t) for t in res.token_ids]
    stopped = res.finish_reason == "stop"
    if stopped:
        tok_ids = tok_ids[:-1]
    assert tok_ids == greedy, (tok_ids, greedy)
    t = {
        f"c{ci}.input_ids": ids,
        f"c{ci}.features": np.ascontiguousarray(features),
        f"c{ci}.logits0": logits0,
        f"c{ci}.tokens": np.array(tok_ids, dtype=np.int32),
        f"c{ci}.position_ids": np.ascontiguousarray(pos_ids),
        f"c{ci}.rope_delta": np.array([delta], dtype=np.int32),
        f"c{ci}.grid_thw": np.array(grid).astype(np.int32),
        f"c{ci}.pixel_sum": np.array(pixel_values).astype(np.float64).sum(axis=1),
    }
    meta = {
        "case": ci, "images": [f"images/{f}" for f in case["images"]], "prompt": case["prompt"],
        "templated_prompt": templated, "grid_thw": np.array(grid).tolist(), "n_input_ids": int(n),
        "n_image_tokens": int(img_pos.sum()), "rope_delta": delta, "tokens": tok_ids, "n_tokens": len(tok_ids),
        "stopped_at_eos": stopped, "text": tokenizer.decode(tok_ids).replace("\0", "\ufffd"),
        "greedy_top2_margins": [round(m, 5) for m in margins],
    }
    return t, meta


def goldens_for(folder, label):
    import mlx.core as mx
    import mlx_vlm
    import transformers
    from mlx_vlm import load
    from safetensors.numpy import save_file
    model, processor = load(folder)
    tensors, metas = {}, []
    for ci, case in enumerate(CASES):
        t, m = run_case(model, processor, ci, case, want_tower=False)
        tensors.update(t)
        metas.append(m)
        print(f"  {label} c{ci}: grid {m['grid_thw']} ids {m['n_input_ids']} delta {m['rope_delta']} tokens "
              f"{m['tokens']} eos={m['stopped_at_eos']} min-margin {min(m['greedy_top2_margins']):.4f}",
              file=sys.stderr)
    save_file(tensors, os.path.join(folder, "goldens.safetensors"))
    cfg = json.load(open(os.path.join(folder, "config.json")))
    doc = {
        "generator": "tests/gen/gen_vlm_qwen2vl.py",
        "versions": {"mlx": mx.__version__, "mlx_vlm": mlx_vlm.__version__, "transformers": transformers.__version__},
        "folder": label, "quantization": cfg.get("quantization"), "image_token_id": model.config.image_token_id,
        "eos_token_ids": list(processor.tokenizer.stopping_criteria.eos_token_ids),
        "sampling": {"temperature": 0.0, "max_tokens": MAX_TOKENS, "prefill_step_size": 2048},
        "tensors": {
            "cI.input_ids": "int32 [n_input_ids]",
            "cI.features": "float32 [n_image_tokens, text_hidden] vision tower + merger rows, in <|image_pad|> order",
            "cI.logits0": "float32 [vocab] logits at the last prompt position",
            "cI.tokens": "int32 [k] greedy tokens from mlx_vlm.generate, eos excluded",
            "cI.position_ids": "int32 [n_input_ids, 3] get_rope_index (t, h, w) per token",
            "cI.rope_delta": "int32 [1]",
            "cI.grid_thw": "int32 [n_images, 3]",
            "cI.pixel_sum": "float64 [n_patches] sum of each pixel_values row",
        },
        "cases": metas,
    }
    json.dump(doc, open(os.path.join(folder, "goldens.json"), "w"), indent=1, ensure_ascii=False)


def main():
    os.chdir(ROOT)
    tmp = tempfile.mkdtemp(prefix="gen_vlm_qwen2vl_")
    heads = "--heads" in sys.argv   # real head sizes, larger images: local-models/ (not committed)
    kinds = [a for a in sys.argv[1:] if not a.startswith("--")]
    try:
        for kind, base in (("qwen2_vl", "qwen2-vl-tiny"), ("qwen2_5_vl", "qwen2.5-vl-tiny")):
            if kinds and kind not in kinds:
                continue
            if heads:
                p = os.path.join(ROOT, "local-models", base.replace("tiny", "heads"))
                build(kind, [(p, None)], tmp, heads=True)
                goldens_for(p, os.path.basename(p))
                continue
            names = [base, base + "-q4", base + "-q8"]
            paths = [os.path.join(DATA, n) for n in names]
            build(kind, [(paths[0], None), (paths[1], 4), (paths[2], 8)], tmp)
            for p, n in zip(paths, names):
                goldens_for(p, n)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
