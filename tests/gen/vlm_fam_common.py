"""vlm_fam_common.py - what gen_vlm_{gemma3,llava,paligemma}.py share: a small synthetic
byte-level BPE tokenizer with a family's special tokens, random weights for every parameter
of an mlx-vlm model, an HF-layout float32 folder, mlx_vlm.convert() to float32 / 4-bit / 8-bit,
and goldens computed as mlx_vlm.generate does (the approach of gen_vlm_idefics3.py).

Run the family scripts from the repo root with /work/venv-mlxvlm/bin/python (mlx 0.32.4,
mlx-vlm 0.7.10, transformers 5.25.0, tokenizers 0.23.3, Pillow 13.0.0, no torch).  The test
images are tests/data/vlm/images (made by gen_vlm_idefics3.py; not rewritten here)."""
import json
import math
import os
import shutil
import sys

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DATA = os.path.join(ROOT, "tests", "data", "vlm")
IMG_DIR = os.path.join(DATA, "images")
CORPUS = os.path.join(ROOT, "tests", "data", "tokenizers", "corpus.txt")
MAX_TOKENS = 32


# --------------------------------------------------------------------------- tokenizer
def build_tokenizer(front, back, n_base, bos=None):
    """Byte-level BPE (Digits(individual) + ByteLevel(no prefix space), ByteLevel decoder)
    trained on tests/data/tokenizers/corpus.txt alone (byte-identical output across runs): `front` specials take ids 0.., the BPE vocab fills up to
    n_base, `back` specials follow (n_base..).  bos: a TemplateProcessing "<bos> $A"
    post-processor with that token (what Gemma / Llama tokenizers add with
    add_special_tokens=True)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    lines = [json.loads(l) for l in open(CORPUS, encoding="utf-8")]   # only the fixed corpus: same merges every run
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)])
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    tr = trainers.BpeTrainer(vocab_size=n_base, special_tokens=list(front),
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(lines, tr)
    j = json.loads(tok.to_str())
    vocab = j["model"]["vocab"]
    for i in range(len(vocab), n_base):
        vocab[f"<unused_{i}>"] = i
    tok = Tokenizer.from_str(json.dumps(j))
    assert tok.get_vocab_size() == n_base
    tok.add_special_tokens([AddedToken(s, normalized=False, special=True) for s in back])
    for i, s in enumerate(front):
        assert tok.token_to_id(s) == i, s
    for i, s in enumerate(back):
        assert tok.token_to_id(s) == n_base + i, s
    if bos:
        tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B:1",
                                                           special_tokens=[(bos, tok.token_to_id(bos))])
    return tok


def write_tokenizer_files(out, tok, specials, cfg, chat_template=None):
    """tokenizer.json, tokenizer_config.json (cfg + added_tokens_decoder), special_tokens_map.json,
    chat_template.json (when given)."""
    tok.save(os.path.join(out, "tokenizer.json"))
    added = {}
    for s in specials:
        added[str(tok.token_to_id(s))] = {"content": s, "lstrip": False, "normalized": False, "rstrip": False,
                                          "single_word": False, "special": True}
    c = dict(cfg)
    c["added_tokens_decoder"] = dict(sorted(added.items(), key=lambda kv: int(kv[0])))
    json.dump(c, open(os.path.join(out, "tokenizer_config.json"), "w"), indent=2)
    smap = {k: cfg[k] for k in ("bos_token", "eos_token", "pad_token", "unk_token") if k in cfg}
    json.dump(smap, open(os.path.join(out, "special_tokens_map.json"), "w"), indent=2)
    if chat_template is not None:
        json.dump({"chat_template": chat_template}, open(os.path.join(out, "chat_template.json"), "w"), indent=2)


# --------------------------------------------------------------------------- weights
def make_mlx_model(config):
    from mlx_vlm.utils import get_model_and_args, update_module_configs
    model_class, _ = get_model_and_args(config=config)
    cfg = json.loads(json.dumps(config))
    mc = model_class.ModelConfig.from_dict(cfg)
    mc = update_module_configs(mc, model_class, cfg, ["text", "vision", "perceiver", "projector", "audio"])
    return model_class.Model(mc)


def random_weights(model, seed, head_gain=3.0, embed_std=1.0):
    """Every parameter of the mlx-vlm model (names sorted, one numpy Generator): norm weights
    1+0.1N (Gemma's (1+w) norms: 0.1N), biases 0.02N, position / class embeddings 0.2N, token
    embeddings N(0, embed_std^2) (Gemma's tied, sqrt(hidden)-scaled embeddings want a small one, or
    the input token dominates and greedy repeats it), linears and the patch conv N(0, 1/fan_in), lm_head N(0, head_gain^2/fan_in),
    Gemma 3's mm_input_projection_weight [in, out] N(0, 1/in)."""
    from mlx.utils import tree_flatten
    rng = np.random.default_rng(seed)
    out = {}
    gemma_norm = model.config.model_type in ("gemma3", "paligemma")
    for name, p in sorted(tree_flatten(model.parameters()), key=lambda kv: kv[0]):
        shape = tuple(p.shape)
        z = rng.standard_normal(shape)
        leaf = name.rsplit(".", 2)
        in_lm = name.startswith("language_model.") or "mm_soft_emb_norm" in name
        if name.endswith(".bias"):
            w = 0.02 * z
        elif "norm" in leaf[-2] and name.endswith(".weight"):
            w = 0.1 * z if (gemma_norm and in_lm) else 1.0 + 0.1 * z
        elif "position_embedding" in name or "class_embedding" in name:
            w = 0.2 * z
        elif "embed_tokens" in name:
            w = embed_std * z
        elif "patch_embedding" in name:
            w = z / math.sqrt(shape[1] * shape[2] * shape[3])
        elif "lm_head" in name:
            w = head_gain * z / math.sqrt(shape[-1])
        elif "mm_input_projection_weight" in name:
            w = z / math.sqrt(shape[0])
        else:
            assert len(shape) == 2, name
            w = z / math.sqrt(shape[-1])
        out[name] = w.astype(np.float32)
    return out


def to_hf(weights):
    """The HF (transformers 4.x) checkpoint names of these families are mlx-vlm's own; only
    the patch conv goes back to PyTorch's [out, in, kh, kw]."""
    hf = {}
    for k, v in weights.items():
        if k.endswith("patch_embedding.weight"):
            v = np.ascontiguousarray(v.transpose(0, 3, 1, 2))
        hf[k] = v
    return hf


def write_hf_folder(out, config, weights, extra_files):
    from safetensors.numpy import save_file
    os.makedirs(out, exist_ok=True)
    json.dump(config, open(os.path.join(out, "config.json"), "w"), indent=2)
    for name, obj in extra_files.items():
        json.dump(obj, open(os.path.join(out, name), "w"), indent=2)
    save_file(to_hf(weights), os.path.join(out, "model.safetensors"), metadata={"format": "pt"})


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
        readme = os.path.join(path, "README.md")
        if os.path.exists(readme):
            os.remove(readme)


# --------------------------------------------------------------------------- goldens
def run_case(model, processor, ci, case, vision_fn=None):
    """One case as mlx_vlm.generate runs it; vision_fn(model, pixel_values) -> the tower
    output for the goldens (None: skipped)."""
    import mlx.core as mx
    from mlx_vlm import generate
    from mlx_vlm.models import cache as mcache
    from mlx_vlm.prompt_utils import apply_chat_template
    from mlx_vlm.utils import prepare_inputs, should_add_special_tokens

    cfg = model.config
    tokenizer = processor.tokenizer
    paths = [os.path.join(IMG_DIR, f) for f in case["images"]]
    templated = apply_chat_template(processor, cfg, case["prompt"], num_images=len(paths))
    add_special = should_add_special_tokens(cfg.model_type, processor)
    inputs = prepare_inputs(processor, images=paths, prompts=templated, image_token_index=cfg.image_token_index,
                            add_special_tokens=add_special)
    input_ids = inputs["input_ids"]
    pixel_values = inputs["pixel_values"]
    extra = {k: v for k, v in inputs.items() if k not in ("input_ids", "pixel_values", "attention_mask")}
    ids = np.array(input_ids[0]).astype(np.int32)
    pv32 = np.array(pixel_values).astype(np.float32)
    pv_flat = pv32.reshape((-1,) + pv32.shape[-3:])

    emb_out = model.get_input_embeddings(input_ids, pixel_values, mask=inputs.get("attention_mask"), **extra)
    emb = emb_out.inputs_embeds
    mx.eval(emb)
    emb_np = np.array(emb[0])
    img_pos = ids == cfg.image_token_index
    features = emb_np[img_pos].astype(np.float32)
    vout = vision_fn(model, pixel_values) if vision_fn else None

    # prefill as generate_step does it: all but the last token, then the last one alone
    # (or, where the model's chunked_prefill_policy refuses, the whole prompt at once)
    lm = model.language_model
    c = mcache.make_prompt_cache(lm)
    n = ids.shape[0]
    chunk = True
    if hasattr(model, "chunked_prefill_policy"):
        chunk = model.chunked_prefill_policy(input_ids=input_ids, inputs_embeds=emb, prompt_cache=c,
                                             draft_model=None, draft_kind=None, prefill_kwargs={})
    if chunk:
        lm(input_ids[:, :n - 1], inputs_embeds=emb[:, :n - 1], cache=c)
        out = lm(input_ids[:, n - 1:], inputs_embeds=emb[:, n - 1:], cache=c)
    else:
        out = lm(input_ids, inputs_embeds=emb, cache=c)
    logits0 = np.array(out.logits[0, -1]).astype(np.float32)

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

    res = generate(model, processor, templated, image=paths, max_tokens=MAX_TOKENS, temperature=0.0, verbose=False)
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
    if vout is not None:
        t[f"c{ci}.vision_out"] = np.ascontiguousarray(np.array(vout).astype(np.float32))
    meta = {
        "case": ci,
        "images": [f"images/{f}" for f in case["images"]],
        "prompt": case["prompt"],
        "templated_prompt": templated,
        "add_special_tokens": bool(add_special),
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
        "chunked_prefill": bool(chunk),
        "has_vision_out": vout is not None,
    }
    return t, meta


def drop_text_kwargs(processor):
    """mlx-vlm 0.7.10's LlavaProcessor.__call__ hands all its kwargs (padding, padding_side,
    add_special_tokens) to the image processor as well, and transformers 5.25's typed kwargs
    check refuses them (TypeError ... unexpected keyword argument 'padding'), so
    mlx_vlm.generate cannot run a LLaVA folder in this environment at all.  Older transformers
    ignored unknown image kwargs; this wrapper does the same (the image processor never used
    them), and nothing else changes."""
    ip = processor.image_processor
    orig = ip.__class__.__call__

    def call(self, images, *args, **kw):
        for k in ("padding", "padding_side", "add_special_tokens", "truncation", "max_length"):
            kw.pop(k, None)
        return orig(self, images, *args, **kw)
    ip.__class__ = type(ip.__class__.__name__, (ip.__class__,), {"__call__": call})


def goldens_for(folder, label, cases, generator, vision_fn=None, tensors_doc=None, patch_processor=None):
    import mlx.core as mx
    import mlx_vlm
    import transformers
    from mlx_vlm import load
    from safetensors.numpy import save_file
    model, processor = load(folder)
    if patch_processor:
        patch_processor(processor)
    tensors, metas = {}, []
    for ci, case in enumerate(cases):
        t, m = run_case(model, processor, ci, case, vision_fn if ci == 0 else None)
        tensors.update(t)
        metas.append(m)
        print(f"  {label} c{ci}: ids {m['n_input_ids']} image tokens {m['n_image_tokens']} tokens {m['tokens']} "
              f"eos={m['stopped_at_eos']} min-margin {min(m['greedy_top2_margins']):.4f}", file=sys.stderr)
    save_file(tensors, os.path.join(folder, "goldens.safetensors"))
    cfg = json.load(open(os.path.join(folder, "config.json")))
    doc = {
        "generator": generator,
        "versions": {"mlx": mx.__version__, "mlx_vlm": mlx_vlm.__version__,
                     "transformers": transformers.__version__},
        "folder": label,
        "quantization": cfg.get("quantization"),
        "image_token_id": model.config.image_token_index,
        "eos_token_ids": list(processor.tokenizer.stopping_criteria.eos_token_ids),
        "sampling": {"temperature": 0.0, "max_tokens": MAX_TOKENS, "prefill_step_size": 2048},
        "tensors": tensors_doc or {},
        "cases": metas,
    }
    json.dump(doc, open(os.path.join(folder, "goldens.json"), "w"), indent=1, ensure_ascii=False)


def check_sizes(paths, limit=2_500_000):
    for p in paths:
        tot = sum(os.path.getsize(os.path.join(p, f)) for f in os.listdir(p))
        print(f"  {os.path.relpath(p, ROOT)}: {tot} bytes", file=sys.stderr)
        assert tot < limit, (p, tot)
