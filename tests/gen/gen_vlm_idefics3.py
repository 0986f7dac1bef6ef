#!/usr/bin/env python3
"""gen_vlm_idefics3.py - tiny random-weight SmolVLM/Idefics3 model folders made
with the real mlx-vlm package, plus goldens for the C mlx-vlm port.

Run from the repo root with the mlx-vlm venv:
    /work/venv-mlxvlm/bin/python tests/gen/gen_vlm_idefics3.py          # tests/data/vlm/
    /work/venv-mlxvlm/bin/python tests/gen/gen_vlm_idefics3.py --full   # + local-models/ (not committed)

Venv (python3 -m venv /work/venv-mlxvlm; pip install mlx==0.32.4 mlx-cpu==0.32.4 mlx-vlm),
pip freeze of the packages that matter:
    mlx==0.32.4  mlx-cpu==0.32.4  mlx-vlm==0.7.10  transformers==5.25.0
    tokenizers==0.23.3  safetensors==0.8.0  numpy==2.4.6  pillow==13.0.0
    huggingface_hub==2.4.0  Jinja2==3.1.6  (no torch, no torchvision)

What it does (tests/data/vlm/README.md documents the outputs):
 1. a byte-level BPE tokenizer (HF `tokenizers`, trained on tests/data/tokenizers/
    corpus.txt) with the SmolVLM special tokens, in the SmolVLM id order;
 2. an HF-layout float32 folder (config.json idefics3, preprocessor/processor
    configs, chat_template.json, tokenizer files, model.safetensors with HF names)
    whose random weights are drawn (fixed seed) for every parameter of
    mlx_vlm.models.idefics3.Model and written back under the HF names;
 3. mlx_vlm.convert.convert() of that folder -> float32, 4-bit and 8-bit (group 64);
 4. deterministic PIL test images;
 5. goldens computed with mlx-vlm exactly as mlx_vlm.generate does.
"""
import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DATA = os.path.join(ROOT, "tests", "data", "vlm")
IMG_DIR = os.path.join(DATA, "images")
CORPUS = os.path.join(ROOT, "tests", "data", "tokenizers", "corpus.txt")
FULL_DIR = os.path.join(ROOT, "local-models")

SEED = 20261207
MAX_TOKENS = 32
HEAD_GAIN = 3.0   # lm_head std = HEAD_GAIN / sqrt(hidden)
EOS_GAIN = 1.45   # extra gain on the <end_of_utterance> row of lm_head (tiny: c0, c1 stop at eos)

# SmolVLM-256M-Instruct's chat template (HF chat_template.json of the checkpoint).
CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}"
    "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

BASE_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]  # ids 0, 1, 2 as in SmolLM2


def image_specials():
    """Added tokens after the base vocab, in SmolVLM's order (49152.. in the real one)."""
    toks = ["<global-img>"]
    toks += [f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)]
    toks += ["<fake_token_around_image>", "<image>"]
    return toks


# --------------------------------------------------------------------------- tokenizer
def build_tokenizer(base_vocab, n_reserved):
    """Byte-level BPE like SmolLM2's (Digits(individual) + ByteLevel(no prefix space),
    ByteLevel decoder, no post-processor).  base_vocab = ids before <global-img>;
    if the corpus gives fewer, the BPE vocab is padded with unreachable filler
    entries "<unused_N>" (used for the full-size 49280 vocab).  n_reserved special
    "<|reserved_N|>" tokens sit between <image> and <end_of_utterance> (88 in the
    real SmolVLM vocab, so <end_of_utterance> = 49279 there)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

    # only the committed corpus (a file other workers edit, e.g. README.md, would
    # change the merges); BpeTrainer is deterministic for a fixed corpus
    lines = [json.loads(l) for l in open(CORPUS, encoding="utf-8")]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)])
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    tr = trainers.BpeTrainer(vocab_size=min(base_vocab, 400), special_tokens=BASE_SPECIALS,
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(lines, tr)
    j = json.loads(tok.to_str())
    vocab = j["model"]["vocab"]
    n = len(vocab)
    assert n <= base_vocab, (n, base_vocab)
    for i in range(n, base_vocab):
        vocab[f"<unused_{i}>"] = i
    tok = Tokenizer.from_str(json.dumps(j))
    assert tok.get_vocab_size() == base_vocab
    specials = image_specials() + [f"<|reserved_{k}|>" for k in range(n_reserved)] + ["<end_of_utterance>"]
    tok.add_special_tokens([AddedToken(s, normalized=False, special=True) for s in specials])
    for i, s in enumerate(specials):
        assert tok.token_to_id(s) == base_vocab + i, s
    return tok


def write_tokenizer_files(tok, out, base_vocab):
    tok.save(os.path.join(out, "tokenizer.json"))
    added = {}
    for s in BASE_SPECIALS + image_specials() + [t for t in tok.get_vocab() if t.startswith("<|reserved_")] \
            + ["<end_of_utterance>"]:
        added[str(tok.token_to_id(s))] = {"content": s, "lstrip": False, "normalized": False, "rstrip": False,
                                          "single_word": False, "special": True}
    added = dict(sorted(added.items(), key=lambda kv: int(kv[0])))
    cfg = {
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "additional_special_tokens": ["<fake_token_around_image>", "<image>", "<end_of_utterance>"],
        "bos_token": "<|im_start|>",
        "clean_up_tokenization_spaces": False,
        "eos_token": "<end_of_utterance>",
        "legacy": False,
        "model_max_length": 8192,
        "pad_token": "<|im_end|>",
        "processor_class": "Idefics3Processor",
        "tokenizer_class": "GPT2Tokenizer",
        "truncation_side": "left",
        "unk_token": "<|endoftext|>",
        "vocab_size": base_vocab,
    }
    json.dump(cfg, open(os.path.join(out, "tokenizer_config.json"), "w"), indent=2)
    smap = {"additional_special_tokens": ["<fake_token_around_image>", "<image>", "<end_of_utterance>"],
            "bos_token": "<|im_start|>", "eos_token": "<end_of_utterance>", "pad_token": "<|im_end|>",
            "unk_token": "<|endoftext|>"}
    json.dump(smap, open(os.path.join(out, "special_tokens_map.json"), "w"), indent=2)
    json.dump({"chat_template": CHAT_TEMPLATE}, open(os.path.join(out, "chat_template.json"), "w"), indent=2)


# --------------------------------------------------------------------------- configs
def hf_config(vocab, image_token_id, full):
    if full:  # SmolVLM-256M-Instruct: SigLIP-B/16-512 + SmolLM2-135M
        vis = dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12)
        txt = dict(hidden_size=576, num_attention_heads=9, num_key_value_heads=3, head_dim=64,
                   intermediate_size=1536, num_hidden_layers=30)
        longest = 2048
    else:
        vis = dict(hidden_size=64, intermediate_size=128, num_attention_heads=2, num_hidden_layers=2)
        txt = dict(hidden_size=128, num_attention_heads=2, num_key_value_heads=1, head_dim=64,
                   intermediate_size=256, num_hidden_layers=2)
        longest = 1024
    vision_config = dict(model_type="idefics3_vision", patch_size=16, image_size=512, layer_norm_eps=1e-6,
                         num_channels=3, hidden_act="gelu_pytorch_tanh", attention_dropout=0.0,
                         max_image_size={"longest_edge": 512}, size={"longest_edge": longest},
                         tie_word_embeddings=False, use_base_siglip=False, **vis)
    text_config = dict(model_type="llama", architectures=["VLlama3ForCausalLM"], rms_norm_eps=1e-5,
                       rope_theta=100000.0, rope_interleaved=False, rope_scaling=None, hidden_act="silu",
                       max_position_embeddings=8192, vocab_size=vocab, tie_word_embeddings=False,
                       attention_bias=False, mlp_bias=False, bos_token_id=1, eos_token_id=2, pad_token_id=2,
                       qk_layer_norms=False, use_resampler=False, pixel_shuffle_factor=4,
                       torch_dtype="float32", **txt)
    return {
        "architectures": ["Idefics3ForConditionalGeneration"],
        "image_token_id": image_token_id,
        "model_type": "idefics3",
        "scale_factor": 4,
        "text_config": text_config,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "use_cache": True,
        "vision_config": vision_config,
        "vocab_size": vocab,
    }


def preprocessor_config(longest):
    return {
        "do_convert_rgb": True,
        "do_image_splitting": True,
        "do_normalize": True,
        "do_pad": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": [0.5, 0.5, 0.5],
        "image_processor_type": "Idefics3ImageProcessor",
        "image_std": [0.5, 0.5, 0.5],
        "max_image_size": {"longest_edge": 512},
        "processor_class": "Idefics3Processor",
        "resample": 1,
        "rescale_factor": 1 / 255,
        "size": {"longest_edge": longest},
    }


# --------------------------------------------------------------------------- weights
def make_mlx_model(config):
    from mlx_vlm.utils import get_model_and_args, update_module_configs
    model_class, _ = get_model_and_args(config=config)
    cfg = json.loads(json.dumps(config))
    mc = model_class.ModelConfig.from_dict(cfg)
    mc = update_module_configs(mc, model_class, cfg, ["text", "vision", "perceiver", "projector", "audio"])
    return model_class.Model(mc)


def random_weights(model, seed, eos_id=None, eos_gain=1.0, head_gain=2.0):
    """Draw every parameter of the mlx-vlm model (names sorted, one numpy
    Generator): norm weights 1+0.1N, biases 0.02N, position embeddings 0.2N,
    token embeddings N(0,1), linears / patch conv N(0, 1/fan_in), lm_head
    N(0, head_gain^2/fan_in) (sharper logits, bigger top-2 margins) with the
    <end_of_utterance> row times eos_gain (so that some cases stop at eos)."""
    from mlx.utils import tree_flatten
    rng = np.random.default_rng(seed)
    out = {}
    for name, p in sorted(tree_flatten(model.parameters()), key=lambda kv: kv[0]):
        shape = tuple(p.shape)
        z = rng.standard_normal(shape)
        leaf = name.rsplit(".", 2)
        if name.endswith(".bias"):
            w = 0.02 * z
        elif "norm" in leaf[-2] and name.endswith(".weight"):
            w = 1.0 + 0.1 * z
        elif "position_embedding" in name:
            w = 0.2 * z
        elif "embed_tokens" in name:
            w = z
        elif "patch_embedding" in name:
            w = z / math.sqrt(shape[1] * shape[2] * shape[3])
        elif "lm_head" in name:
            w = head_gain * z / math.sqrt(shape[-1])
            if eos_id is not None:
                w[eos_id] *= eos_gain
        else:
            assert len(shape) == 2, name
            w = z / math.sqrt(shape[-1])
        out[name] = w.astype(np.float32)
    return out


def to_hf_names(weights):
    """Inverse of Idefics3 Model/VisionModel.sanitize: HF checkpoint names and the
    torch conv layout [out, in, kh, kw]."""
    hf = {}
    for k, v in weights.items():
        if k.startswith("vision_model.") or k.startswith("connector."):
            nk = "model." + k
        elif k == "language_model.lm_head.weight":
            nk = "lm_head.weight"
        elif k.startswith("language_model."):
            nk = "model.text_model." + k[len("language_model."):]
        else:
            raise ValueError(k)
        if k.endswith("patch_embedding.weight"):
            v = np.ascontiguousarray(v.transpose(0, 3, 1, 2))
        hf[nk] = v
    return hf


def write_hf_folder(out, tok, base_vocab, config, longest, weights):
    from safetensors.numpy import save_file
    os.makedirs(out, exist_ok=True)
    write_tokenizer_files(tok, out, base_vocab)
    json.dump(config, open(os.path.join(out, "config.json"), "w"), indent=2)
    json.dump(preprocessor_config(longest), open(os.path.join(out, "preprocessor_config.json"), "w"), indent=2)
    json.dump({"image_seq_len": 64, "processor_class": "Idefics3Processor"},
              open(os.path.join(out, "processor_config.json"), "w"), indent=2)
    eou = tok.token_to_id("<end_of_utterance>")
    json.dump({"bos_token_id": 1, "eos_token_id": eou, "pad_token_id": 2},
              open(os.path.join(out, "generation_config.json"), "w"), indent=2)
    save_file(to_hf_names(weights), os.path.join(out, "model.safetensors"), metadata={"format": "pt"})


def convert_folders(hf_dir, outs):
    """outs: list of (path, bits or None)."""
    from mlx_vlm.convert import convert
    for path, bits in outs:
        if os.path.exists(path):
            shutil.rmtree(path)
        if bits is None:
            convert(hf_dir, mlx_path=path, dtype="float32")
        else:
            convert(hf_dir, mlx_path=path, quantize=True, q_group_size=64, q_bits=bits, dtype="float32")
        # the model card names the temporary source folder; drop it (nothing reads it)
        readme = os.path.join(path, "README.md")
        if os.path.exists(readme):
            os.remove(readme)


def check_float_roundtrip(path, weights):
    import mlx.core as mx
    w = mx.load(os.path.join(path, "model.safetensors"))
    assert sorted(w) == sorted(weights), (sorted(set(w) ^ set(weights)))
    for k, v in weights.items():
        assert np.array_equal(np.array(w[k]), v), k


# --------------------------------------------------------------------------- images
def make_images():
    from PIL import Image, ImageDraw
    os.makedirs(IMG_DIR, exist_ok=True)
    # 640x400 RGB: gradient + shapes -> 1024x640 -> 1024x1024 -> 2x2 tiles + global
    w, h = 640, 400
    x = np.arange(w)[None, :].repeat(h, 0)
    y = np.arange(h)[:, None].repeat(w, 1)
    a = np.stack([(x * 255) // (w - 1), (y * 255) // (h - 1), ((x + y) * 255) // (w + h - 2)], -1).astype(np.uint8)
    im = Image.fromarray(a, "RGB")
    d = ImageDraw.Draw(im)
    d.rectangle([40, 40, 200, 160], fill=(250, 30, 30), outline=(0, 0, 0), width=4)
    d.ellipse([300, 80, 520, 300], fill=(20, 200, 40), outline=(255, 255, 255), width=3)
    d.polygon([(80, 360), (220, 220), (330, 380)], fill=(30, 40, 220))
    for i in range(0, w, 32):
        d.line([(i, 0), (i, 12)], fill=(0, 0, 0), width=2)
    im.save(os.path.join(IMG_DIR, "gradient.png"), optimize=True)
    # JPEG stored 800x300 with EXIF Orientation=6 (rotate 90 CW to display):
    # mlx-vlm's load_image applies exif_transpose -> 300x800 -> 2 rows x 1 col
    w, h = 800, 300
    x = np.arange(w)[None, :].repeat(h, 0)
    y = np.arange(h)[:, None].repeat(w, 1)
    a = np.stack([128 + 100 * np.sin(x / 37.0), 128 + 100 * np.cos(y / 23.0), (x ^ y) & 255], -1)
    im = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(im)
    d.rectangle([20, 20, 120, 80], fill=(255, 255, 0))  # marks the stored top-left corner
    d.ellipse([500, 100, 700, 280], fill=(0, 0, 0))
    ex = Image.Exif()
    ex[0x0112] = 6
    im.save(os.path.join(IMG_DIR, "portrait_exif6.jpg"), quality=85, exif=ex.tobytes())
    # 48x16 greyscale (mode L): upscaled to 1024x342 -> 1024x512 -> 1x2 tiles + global
    w, h = 48, 16
    x = np.arange(w)[None, :].repeat(h, 0)
    y = np.arange(h)[:, None].repeat(w, 1)
    a = ((x * 5 + y * 11) % 256).astype(np.uint8)
    a[4:12, 8:20] = 255
    a[6:10, 30:44] = 0
    Image.fromarray(a, "L").save(os.path.join(IMG_DIR, "tiny_grey.png"))
    # 120x300 RGBA with varying alpha (mlx-vlm drops alpha: convert("RGB")) -> 2x1
    w, h = 120, 300
    x = np.arange(w)[None, :].repeat(h, 0)
    y = np.arange(h)[:, None].repeat(w, 1)
    a = np.stack([(x * 2) % 256, 255 - (y * 255) // (h - 1), (x * y) % 256, (y * 255) // (h - 1)], -1)
    a = a.astype(np.uint8)
    a[100:160, 30:90] = (255, 0, 255, 0)  # fully transparent magenta: RGB kept as is
    Image.fromarray(a, "RGBA").save(os.path.join(IMG_DIR, "rgba.png"))
    for f in sorted(os.listdir(IMG_DIR)):
        sz = os.path.getsize(os.path.join(IMG_DIR, f))
        assert sz < 60_000, (f, sz)
        print(f"  image {f}: {sz} bytes", file=sys.stderr)


CASES = [
    {"images": ["tiny_grey.png"], "prompt": "Describe this image."},
    {"images": ["gradient.png"], "prompt": "What shapes are in this picture?"},
    {"images": ["portrait_exif6.jpg"], "prompt": "Describe this image."},
    {"images": ["rgba.png", "portrait_exif6.jpg"], "prompt": "Compare these two images."},
]


# --------------------------------------------------------------------------- goldens
def vision_tower_out(model, pixel_values, pixel_attention_mask):
    """The vision half of Idefics3 Model.get_input_embeddings, returning the
    post_layernorm last hidden state [n_tiles, 1024, D]."""
    import mlx.core as mx
    b, n, c, h, w = pixel_values.shape
    pv = pixel_values.reshape(b * n, c, h, w)
    real = np.where(np.array((pv == 0.0).sum(axis=(-1, -2, -3)) != c * h * w))[0].tolist()
    pv = pv[real, ...]
    pam = pixel_attention_mask.reshape(b * n, h, w)[real]
    p = model.config.vision_config.patch_size
    ph, pw = h // p, w // p
    patch_mask = pam[:, :ph * p, :pw * p].reshape(len(real), ph, p, pw, p).transpose(0, 1, 3, 2, 4).sum(axis=(-1, -2)) > 0
    out, *_ = model.vision_model(pv.transpose(0, 2, 3, 1), patch_attention_mask=patch_mask, output_hidden_states=True)
    out = out.astype(pv.dtype)
    mx.eval(out)
    return out


def run_case(model, processor, ci, case, want_vision, timing=False):
    import mlx.core as mx
    from mlx_vlm import generate
    from mlx_vlm.models import cache as mcache
    from mlx_vlm.models.idefics3.processing_idefics3 import get_image_prompt_string
    from mlx_vlm.prompt_utils import apply_chat_template
    from mlx_vlm.utils import prepare_inputs, process_image, should_add_special_tokens

    cfg = model.config
    tokenizer = processor.tokenizer
    paths = [os.path.join(IMG_DIR, f) for f in case["images"]]
    templated = apply_chat_template(processor, cfg, case["prompt"], num_images=len(paths))
    inputs = prepare_inputs(processor, images=paths, prompts=templated, image_token_index=cfg.image_token_index,
                            add_special_tokens=should_add_special_tokens(cfg.model_type, processor))
    input_ids = inputs["input_ids"]
    pixel_values = inputs["pixel_values"]
    pam = inputs["pixel_attention_mask"]
    extra = {k: v for k, v in inputs.items() if k not in ("input_ids", "pixel_values", "attention_mask")}
    ids = np.array(input_ids[0]).astype(np.int32)

    # rows/cols per image (the processor pops them before returning)
    pil = [process_image(p, None, processor.image_processor) for p in paths]
    rc = processor.image_processor([pil], return_row_col_info=True)
    rows, cols = [int(r) for r in rc["rows"][0]], [int(c) for c in rc["cols"][0]]
    tiles = [r * c + 1 if r or c else 1 for r, c in zip(rows, cols)]
    parts = templated.split("<image>")
    expanded = parts[0]
    for i in range(len(paths)):
        expanded += get_image_prompt_string(rows[i], cols[i], processor.image_seq_len,
                                            fake_token_around_image="<fake_token_around_image>",
                                            image_token="<image>", global_img_token="<global-img>") + parts[i + 1]
    re_ids = tokenizer(expanded, add_special_tokens=True)["input_ids"]
    assert list(re_ids) == ids.tolist(), "expanded prompt does not re-tokenize to input_ids"

    pv32 = np.array(pixel_values).astype(np.float32)
    pv_flat = pv32.reshape((-1,) + pv32.shape[2:])
    assert pv_flat.shape[0] == sum(tiles), (pv_flat.shape, tiles)
    assert np.array(pam).all(), "unexpected pixel padding"

    # the real thing: mlx_vlm.generate, with model.get_input_embeddings wrapped
    # to capture the merged embeddings it computes (and time the image encode)
    captured = {}
    orig = model.get_input_embeddings

    def capture(*a, **k):
        t0 = time.perf_counter()
        r = orig(*a, **k)
        mx.eval(r.inputs_embeds)
        captured["t"] = time.perf_counter() - t0
        captured["emb"] = r.inputs_embeds
        captured["ids"] = np.array(a[0] if a else k["input_ids"]).reshape(-1)
        return r

    object.__setattr__(model, "get_input_embeddings", capture)
    try:
        t0 = time.perf_counter()
        res = generate(model, processor, templated, image=paths, max_tokens=MAX_TOKENS, temperature=0.0,
                       verbose=timing)
        t_gen = time.perf_counter() - t0
    finally:
        object.__delattr__(model, "get_input_embeddings")
    assert captured["ids"].tolist() == ids.tolist()
    emb = captured["emb"]
    t_embed = captured["t"]
    emb_np = np.array(emb[0])
    img_pos = ids == cfg.image_token_index
    features = emb_np[img_pos].astype(np.float32)
    assert features.shape[0] == 64 * sum(tiles)

    if want_vision:  # (skipped otherwise: the full-size tower is slow on CPU)
        vout = vision_tower_out(model, pixel_values, pam)
        feat2 = np.array(model.connector(vout).reshape(-1, cfg.text_config.hidden_size))
        assert np.array_equal(feat2, features), np.abs(feat2 - features).max()

    # prefill as generate_step does it: all but the last token (prefill_step_size
    # 2048 > prompt), then the last token alone with logits_to_keep=1
    lm = model.language_model
    c = mcache.make_prompt_cache(lm)
    n = ids.shape[0]
    lm(input_ids[:, :n - 1], inputs_embeds=emb[:, :n - 1], cache=c)
    out = lm(input_ids[:, n - 1:], inputs_embeds=emb[:, n - 1:], cache=c)
    logits0 = np.array(out.logits[0, -1]).astype(np.float32)
    full = np.array(lm(input_ids, inputs_embeds=emb).logits[0, -1])
    chunk_diff = float(np.abs(full - logits0).max())

    # own greedy loop on that cache, to record top-2 margins per step
    eos = list(tokenizer.stopping_criteria.eos_token_ids)
    greedy, margins, lg = [], [], logits0
    for _ in range(MAX_TOKENS):
        s = np.sort(lg)
        margins.append(float(s[-1] - s[-2]))
        t = int(np.argmax(lg))
        if t in eos:
            break
        greedy.append(t)
        o = lm(mx.array([[t]]), cache=c)
        lg = np.array(o.logits[0, -1])

    tok_ids = [int(t) for t in res.token_ids]
    stopped = res.finish_reason == "stop"
    if stopped:
        assert tok_ids[-1] in eos
        tok_ids = tok_ids[:-1]
    if tok_ids != greedy:
        print(f"  WARNING case {ci}: mlx_vlm.generate {tok_ids} != own greedy {greedy}", file=sys.stderr)

    t = {
        f"c{ci}.input_ids": ids,
        f"c{ci}.features": np.ascontiguousarray(features),
        f"c{ci}.logits0": logits0,
        f"c{ci}.tokens": np.array(tok_ids, dtype=np.int32),
        f"c{ci}.pixel_sum": pv_flat.astype(np.float64).sum(axis=(1, 2, 3)),
        f"c{ci}.pixel_shape": np.array(pv_flat.shape, dtype=np.int32),
    }
    if want_vision:
        t[f"c{ci}.vision_out"] = np.ascontiguousarray(np.array(vout).astype(np.float32))
    meta = {
        "case": ci,
        "images": [f"images/{f}" for f in case["images"]],
        "loaded_image_sizes_wh": [list(im.size) for im in pil],
        "prompt": case["prompt"],
        "templated_prompt": templated,
        "expanded_prompt": expanded,
        "rows": rows, "cols": cols, "tiles_per_image": tiles, "n_tiles": int(sum(tiles)),
        "pixel_shape": list(pv_flat.shape),
        "n_input_ids": int(n),
        "n_image_tokens": int(img_pos.sum()),
        "tokens": tok_ids,
        "n_tokens": len(tok_ids),
        "stopped_at_eos": stopped,
        "finish_reason": res.finish_reason,
        "text": tokenizer.decode(tok_ids),
        "logits0_argmax": int(np.argmax(logits0)),
        "greedy_top2_margins": [round(m, 5) for m in margins],
        "chunked_vs_unchunked_logits0_maxdiff": chunk_diff,
        "has_vision_out": bool(want_vision),
    }
    tm = {"embed_s": t_embed, "generate_s": t_gen, "prompt_tps": res.prompt_tps,
          "generation_tps": res.generation_tps, "prompt_tokens": res.prompt_tokens,
          "generation_tokens": res.generation_tokens, "peak_memory_gb": res.peak_memory}
    return t, meta, tm


def goldens_for(folder, label, vision_case0, timing=False, case_ids=None):
    import mlx.core as mx
    import mlx_vlm
    import transformers
    from mlx_vlm import load
    from safetensors.numpy import save_file
    model, processor = load(folder)
    tensors, metas, timings = {}, [], []
    for ci, case in enumerate(CASES):
        if case_ids is not None and ci not in case_ids:
            continue
        t, m, tm = run_case(model, processor, ci, case, want_vision=(vision_case0 and ci == 0), timing=timing)
        tensors.update(t)
        metas.append(m)
        timings.append(tm)
        print(f"  {label} c{ci}: tiles {m['n_tiles']} ids {m['n_input_ids']} tokens {m['tokens']} "
              f"eos={m['stopped_at_eos']} min-margin {min(m['greedy_top2_margins']):.4f}", file=sys.stderr)
    save_file(tensors, os.path.join(folder, "goldens.safetensors"))
    cfg = json.load(open(os.path.join(folder, "config.json")))
    doc = {
        "generator": "tests/gen/gen_vlm_idefics3.py",
        "versions": {"mlx": mx.__version__, "mlx_vlm": mlx_vlm.__version__,
                     "transformers": transformers.__version__},
        "folder": label,
        "quantization": cfg.get("quantization"),
        "image_token_id": model.config.image_token_index,
        "eos_token_ids": list(processor.tokenizer.stopping_criteria.eos_token_ids),
        "sampling": {"temperature": 0.0, "max_tokens": MAX_TOKENS, "prefill_step_size": 2048},
        "tensors": {
            "cI.input_ids": "int32 [n_input_ids]",
            "cI.pixel_shape": "int32 [4] = [n_tiles, 3, 512, 512]",
            "cI.pixel_sum": "float64 [n_tiles] sum of each tile's normalized pixel_values (float32 values summed in float64)",
            "cI.vision_out": "float32 [n_tiles, 1024, vision_hidden] post_layernorm output (only where has_vision_out)",
            "cI.features": "float32 [n_image_tokens, text_hidden] connector output rows, in <image>-token order",
            "cI.logits0": "float32 [vocab] logits at the last prompt position",
            "cI.tokens": "int32 [k] greedy tokens from mlx_vlm.generate, eos excluded",
        },
        "cases": metas,
    }
    json.dump(doc, open(os.path.join(folder, "goldens.json"), "w"), indent=1, ensure_ascii=False)
    return timings


# --------------------------------------------------------------------------- main
def build(out_float, out_q, base_vocab, n_reserved, full, tmp):
    tok = build_tokenizer(base_vocab, n_reserved)
    vocab = tok.get_vocab_size()
    image_id = tok.token_to_id("<image>")
    config = hf_config(vocab, image_id, full)
    model = make_mlx_model(json.loads(json.dumps(config)))
    weights = random_weights(model, SEED + (1 if full else 0), eos_id=tok.token_to_id("<end_of_utterance>"),
                             eos_gain=EOS_GAIN, head_gain=HEAD_GAIN)
    del model
    hf_dir = os.path.join(tmp, "hf")
    write_hf_folder(hf_dir, tok, base_vocab, config, 2048 if full else 1024, weights)
    convert_folders(hf_dir, [(out_float, None)] + out_q)
    check_float_roundtrip(out_float, weights)
    print(f"vocab {vocab}, <image> {image_id}, <end_of_utterance> {tok.token_to_id('<end_of_utterance>')}",
          file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", action="store_true",
                    help="also build the full-depth SmolVLM-256M-shaped random model under local-models/")
    ap.add_argument("--only-full", action="store_true", help="skip the tiny folders")
    ap.add_argument("--full-cases", default="0",
                    help="comma-separated case numbers for the full-depth goldens (default 0: its 9 tiles of "
                         "the 12-layer 768-wide tower take minutes on 2 CPU cores; 'all' for c0..c3)")
    ap.add_argument("--goldens-for", metavar="FOLDER",
                    help="only (re)compute the goldens of an existing full-depth folder (with --full-cases)")
    args = ap.parse_args()
    os.chdir(ROOT)
    if args.goldens_for:
        ids = list(range(len(CASES))) if args.full_cases == "all" else [int(x) for x in args.full_cases.split(",")]
        tms = goldens_for(args.goldens_for, os.path.basename(os.path.normpath(args.goldens_for)), vision_case0=False,
                          timing=True, case_ids=ids)
        for ci, tm in zip(ids, tms):
            print(f"TIMING {args.goldens_for} c{ci}: {tm}")
        return
    tmp = tempfile.mkdtemp(prefix="gen_vlm_idefics3_")
    try:
        if not args.only_full:
            make_images()
            names = ["smolvlm-tiny", "smolvlm-tiny-q4", "smolvlm-tiny-q8"]
            paths = [os.path.join(DATA, n) for n in names]
            build(paths[0], [(paths[1], 4), (paths[2], 8)], base_vocab=400, n_reserved=0, full=False,
                  tmp=os.path.join(tmp, "tiny"))
            for p, n in zip(paths, names):
                goldens_for(p, n, vision_case0=(n == "smolvlm-tiny"))
        if args.full or args.only_full:
            f32 = os.path.join(FULL_DIR, "smolvlm-256m-random")
            q4 = os.path.join(FULL_DIR, "smolvlm-256m-random-q4")
            build(f32, [(q4, 4)], base_vocab=49152, n_reserved=88, full=True, tmp=os.path.join(tmp, "full"))
            ids = list(range(len(CASES))) if args.full_cases == "all" else [int(x) for x in args.full_cases.split(",")]
            for p in (f32, q4):
                tms = goldens_for(p, os.path.basename(p), vision_case0=False, timing=True, case_ids=ids)
                for ci, tm in zip(ids, tms):
                    print(f"TIMING {os.path.basename(p)} c{ci}: image encode+embed {tm['embed_s']:.3f} s, "
                          f"prompt {tm['prompt_tokens']} tok {tm['prompt_tps']:.2f} tok/s, "
                          f"generation {tm['generation_tokens']} tok {tm['generation_tps']:.2f} tok/s, "
                          f"peak {tm['peak_memory_gb']:.3f} GB, generate() wall {tm['generate_s']:.2f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
