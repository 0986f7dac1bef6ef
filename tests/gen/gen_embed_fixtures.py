#!/usr/bin/env python3
"""Tiny random-weight encoder fixtures for mlx-embed and their goldens.

Writes tests/data/embed/<name>/: a sentence-transformers folder (config.json,
model.safetensors, tokenizer.json, modules.json, 1_Pooling/, optional 2_Dense/,
config_sentence_transformers.json, sentence_bert_config.json) and golden.json:
  texts, prompt (prefix used or null), ids (token ids after truncation),
  truncated, embeddings (sentence-transformers encode, float32).
Fixtures:
  bert-tiny         BertModel, mean pooling + Normalize, max_seq_length 24
  bert-cls-dense    "bert." tensor prefix, cls+max pooling, Dense(tanh), no Normalize, prompts
  xlmr-tiny         XLMRobertaModel, Unigram tokenizer, mean_sqrt_len + lasttoken, Normalize
  ce-bert / ce-xlmr cross-encoders (BertForSequenceClassification, 1 label, sigmoid;
                    XLMRobertaForSequenceClassification, 2 labels); golden.json holds
                    query, documents, pair ids and CrossEncoder.predict scores.
  bert-tiny-8bit/4bit  bert-tiny in mlx layout ("model." prefix), MLX affine-quantized
                    (group 32); golden from the dequantized weights.
usage: tests/gen/gen_embed_fixtures.py
"""
import json, os, shutil, sys, tempfile
import numpy as np
import torch
import mlx.core as mx
from safetensors.numpy import load_file, save_file
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, decoders, trainers
from transformers import (BertConfig, BertModel, BertForSequenceClassification, XLMRobertaConfig, XLMRobertaModel,
                          XLMRobertaForSequenceClassification, PreTrainedTokenizerFast)
from sentence_transformers import SentenceTransformer
from sentence_transformers import models as stm

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "data", "embed")
CORPUS = os.path.join(ROOT, "tests", "data", "tokenizers", "corpus.txt")


def corpus_lines():
    return [l.strip() for l in open(CORPUS, encoding="utf-8") if l.strip()]


def texts():
    lines = corpus_lines()
    t = [lines[i] for i in range(0, len(lines), len(lines) // 14)][:14]
    t += ["Hello world", "  padded with spaces\t", "a", "The quick brown fox jumps over the lazy dog. " * 6,
          "ünïcödé façade — 東京 «quotes»", "x " * 40]
    return t


def wordpiece_tok():
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tr = trainers.WordPieceTrainer(vocab_size=300, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    tok.train_from_iterator(corpus_lines(), tr)
    tok.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    tok.decoder = decoders.WordPiece()
    return tok, dict(pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


def unigram_tok():
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tr = trainers.UnigramTrainer(vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<unk>"], unk_token="<unk>")
    tok.train_from_iterator([l for l in corpus_lines() if all(ord(c) < 0x250 for c in l)], tr)
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    tok.decoder = decoders.Metaspace()
    return tok, dict(bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>", cls_token="<s>",
                     sep_token="</s>")


def init_random(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "LayerNorm" in n and n.endswith("weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=g))


def build(name, hf_model, tok, tok_kw, modules_fn, max_seq, prompts=None, prefix_rename=None):
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    with tempfile.TemporaryDirectory() as td:
        hf = os.path.join(td, "hf")
        hf_model.save_pretrained(hf, safe_serialization=True)
        PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=512, **tok_kw).save_pretrained(hf)
        tr = stm.Transformer(hf, max_seq_length=max_seq)
        mods = [tr] + modules_fn(tr.get_word_embedding_dimension())
        st = SentenceTransformer(modules=mods, device="cpu", prompts=prompts or {})
        st.save(d)
    for f in os.listdir(d):   # keep only what the C side reads
        if f in ("README.md", "vocab.txt", "special_tokens_map.json"):
            os.remove(os.path.join(d, f))
    if prefix_rename:
        p = os.path.join(d, "model.safetensors")
        w = load_file(p)
        save_file({prefix_rename + k: v for k, v in w.items()}, p, metadata={"format": "pt"})
    return d


def golden(d, st_dir=None, prompt_name=None):
    st = SentenceTransformer(st_dir or d, device="cpu")
    ts = texts()
    prompt = st.prompts.get(prompt_name) if prompt_name else None
    emb = st.encode(ts, prompt_name=prompt_name, batch_size=4, convert_to_numpy=True)
    full = [(prompt or "") + t for t in ts]
    f = st.preprocess(full)
    enc = [[i for i, a in zip(r, m) if a] for r, m in zip(f["input_ids"].tolist(), f["attention_mask"].tolist())]
    raw = st.tokenizer(full)["input_ids"]
    g = {"texts": ts, "prompt_name": prompt_name, "prompt": prompt, "max_seq_length": st.max_seq_length,
         "ids": enc, "truncated": [len(r) > len(e) for r, e in zip(raw, enc)],
         "embeddings": [[float(np.float32(x)) for x in row] for row in emb]}
    with open(os.path.join(d, "golden.json"), "w") as f:
        json.dump(g, f, separators=(",", ":"))
        f.write("\n")
    print(d, "dim", emb.shape[1], "truncated", sum(g["truncated"]))


def quantized(src, name, bits, group=32):
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(src, d)
    w = mx.load(os.path.join(src, "model.safetensors"))
    q, deq = {}, {}
    for k, v in w.items():
        mod = k[:-len(".weight")] if k.endswith(".weight") else None
        if mod and v.ndim == 2 and v.shape[-1] % group == 0 and "LayerNorm" not in k:
            wq, sc, bi = mx.quantize(v, group_size=group, bits=bits)
            q["model." + mod + ".weight"], q["model." + mod + ".scales"], q["model." + mod + ".biases"] = wq, sc, bi
            deq[k] = mx.dequantize(wq, sc, bi, group_size=group, bits=bits)
        else:
            q["model." + k] = v
            deq[k] = v
    mx.save_safetensors(os.path.join(d, "model.safetensors"), q, metadata={"format": "mlx"})
    cfg = json.load(open(os.path.join(src, "config.json")))
    cfg["quantization"] = {"group_size": group, "bits": bits}
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"), indent=1)
    with tempfile.TemporaryDirectory() as td:   # reference: the dequantized weights in float
        ref = os.path.join(td, "ref")
        shutil.copytree(src, ref)
        mx.save_safetensors(os.path.join(ref, "model.safetensors"), deq, metadata={"format": "pt"})
        golden(d, st_dir=ref)
    os.remove(os.path.join(d, "golden.json")) if False else None


def cross_encoder(name, model, tok, tok_kw, max_len):
    from sentence_transformers import CrossEncoder
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    model.save_pretrained(d, safe_serialization=True)
    names = ["input_ids", "token_type_ids", "attention_mask"] if "cls_token" in tok_kw and tok_kw["cls_token"] == "[CLS]" \
        else ["input_ids", "attention_mask"]
    PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=max_len, model_input_names=names,
                            **tok_kw).save_pretrained(d)
    ce = CrossEncoder(d, device="cpu")
    ts = texts()
    q = "what does the fox do?"
    docs = ts
    sc = ce.predict([(q, x) for x in docs], batch_size=4, convert_to_numpy=True)
    tk = ce.tokenizer
    ids = [tk(q, x, truncation=True, max_length=max_len)["input_ids"] for x in docs]
    types = [tk(q, x, truncation=True, max_length=max_len).get("token_type_ids") for x in docs]
    g = {"query": q, "documents": docs, "max_seq_length": max_len, "ids": ids, "types": types,
         "scores": np.asarray(sc, dtype=np.float32).tolist()}
    with open(os.path.join(d, "golden.json"), "w") as f:
        json.dump(g, f, separators=(",", ":"))
        f.write("\n")
    for f in ("special_tokens_map.json",):
        if os.path.exists(os.path.join(d, f)):
            os.remove(os.path.join(d, f))
    print(d, "labels", model.config.num_labels)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    wp, wp_kw = wordpiece_tok()
    cfg = BertConfig(vocab_size=wp.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=64, type_vocab_size=2, pad_token_id=0)
    m = BertModel(cfg, add_pooling_layer=False).eval()
    init_random(m, 1)
    d = build("bert-tiny", m, wp, wp_kw, lambda h: [stm.Pooling(h, "mean"), stm.Normalize()], 24)
    golden(d)
    m2 = BertModel(cfg, add_pooling_layer=False).eval()
    init_random(m2, 2)
    d2 = build("bert-cls-dense", m2, wp, wp_kw,
               lambda h: [stm.Pooling(h, ("cls", "max")), stm.Dense(2 * h, 24, activation_function=torch.nn.Tanh())],
               40, prompts={"query": "query: ", "passage": "passage: "})
    golden(d2, prompt_name="query")
    # the same weights under the "bert." prefix (BertFor* checkpoints): golden computed before renaming
    p = os.path.join(d2, "model.safetensors")
    w = load_file(p)
    save_file({"bert." + k: v for k, v in w.items()}, p, metadata={"format": "pt"})
    ug, ug_kw = unigram_tok()
    xc = XLMRobertaConfig(vocab_size=ug.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                          intermediate_size=48, max_position_embeddings=40, type_vocab_size=1, pad_token_id=1,
                          bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5)
    xm = XLMRobertaModel(xc, add_pooling_layer=False).eval()
    init_random(xm, 3)
    d3 = build("xlmr-tiny", xm, ug, ug_kw, lambda h: [stm.Pooling(h, ("mean_sqrt_len_tokens", "lasttoken")),
                                                      stm.Normalize()], 30)
    golden(d3)
    for bits in (8, 4):
        quantized(d, f"bert-tiny-{bits}bit", bits)
    cb = BertForSequenceClassification(BertConfig(**dict(cfg.to_dict(), num_labels=1))).eval()
    init_random(cb, 4)
    cross_encoder("ce-bert", cb, wp, wp_kw, 28)
    cx = XLMRobertaForSequenceClassification(XLMRobertaConfig(**dict(xc.to_dict(), num_labels=2))).eval()
    init_random(cx, 5)
    cross_encoder("ce-xlmr", cx, ug, ug_kw, 26)


if __name__ == "__main__":
    main()
