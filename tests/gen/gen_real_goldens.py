#!/usr/bin/env python3
"""Goldens for the real-weight models that `make real-models` imports with mlx-quant
import-gguf (local-models/, never committed).  For each model:

  mlx-lm 0.32 on the imported folder: greedy 64 tokens and the log-probability of each
  chosen token for 3 text prompts and 2 chats (prompt ids: HF `tokenizers` on the imported
  tokenizer.json for the text prompts, transformers' apply_chat_template for the chats; a
  GGUF without a chat template (Gemma 3 270M is a base model) gets its chats as text in
  Gemma's turn format);
  llama.cpp (llama-cpp-python) on the original GGUF file: greedy tokens from the same
  prompt ids and the number of leading tokens on which it agrees with mlx-lm; mlx-lm's
  tokens fed to llama.cpp (teacher forcing): at each position whether llama.cpp's top
  token is mlx-lm's, and where it is not, llama.cpp's logit margin over mlx-lm's token
  (llama.cpp's CPU kernels quantize the activations to 8 bits for quantized weights, so
  near-ties can go the other way); the same on an F32 copy of the GGUF (every tensor
  dequantized by ggml, metadata unchanged), where llama.cpp computes in float;
  the tokenizer: every line of tests/data/tokenizers/corpus.txt encoded by llama.cpp with
  the GGUF's own vocabulary (special tokens parsed; BOS added as mlx-lm adds it: when the
  tokenizer adds one and the line does not start with it) and by `tokenizers` with the
  rebuilt tokenizer.json; the ids are llama.cpp's, and the lines where the two differ are
  recorded with tokenizers' ids for them (none means the rebuilt tokenizer encodes as the
  GGUF does).

Output, small and weight-free: tests/data/real/<name>/golden.json and corpus_ids.jsonl.zst.
Usage (after `make real-models`; qwen25coder after `make real-models REAL_MODELS=all`):
  /work/venv-mlx/bin/python tests/gen/gen_real_goldens.py [name ...]
"""
import hashlib
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = {
    "smollm2": ("local-models/SmolLM2-135M-Instruct", "local-models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf"),
    "gemma3": ("local-models/gemma-3-270m", "local-models/gguf/gemma-3-270m-q4_k_m.gguf"),
    "qwen25coder": ("local-models/Qwen2.5-Coder-0.5B-Instruct",
                    "local-models/gguf/qwen2.5-coder-0.5b-instruct-awq-q4_k_m.gguf"),
}
MAX_TOKENS = 64
PROMPTS = [
    "The capital of France is",
    'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n',
    "Once upon a time, in a small village by the sea,",
]
CHATS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "You are a concise assistant."},
     {"role": "user", "content": "Give me three tips for writing clean Python code."}],
]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def mlx_lm_cases(folder):
    import mlx.core as mx
    from mlx_lm import load
    from mlx_lm.generate import stream_generate
    from tokenizers import Tokenizer
    model, tok = load(folder)
    raw = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    cases = []
    for kind, x in [("prompt", p) for p in PROMPTS] + [("messages", c) for c in CHATS]:
        chat = None
        if kind == "messages" and not tok.chat_template:
            # no template in the GGUF (a base model): the chat in the family's turn format, as text
            chat, kind, x = x, "prompt", gemma_turns(x)
        if kind == "prompt":
            bos = tok.bos_token
            ids = raw.encode(x, add_special_tokens=not (bos and x.startswith(bos))).ids
        else:
            ids = tok.apply_chat_template(x, add_generation_prompt=True)
            if isinstance(ids, dict):
                ids = ids["input_ids"]
        out, lps, finish = [], [], "length"
        t0 = time.time()
        for r in stream_generate(model, tok, mx.array(ids), max_tokens=MAX_TOKENS):
            if r.finish_reason == "stop":
                finish = "stop"
                break
            out.append(int(r.token))
            lps.append(float(r.logprobs[r.token].item()))
            if r.finish_reason:
                finish = r.finish_reason
        text = tok.decode(out)
        print(f"  mlx-lm {kind}: {len(out)} tokens in {time.time() - t0:.1f} s: {text[:60]!r}", file=sys.stderr)
        cases.append({kind: x, "prompt_ids": list(map(int, ids)), "ids": out, "logprobs": lps, "text": text,
                      "finish_reason": finish})
        if chat:
            cases[-1]["chat"] = chat
    return cases


def gemma_turns(messages):
    """Gemma's chat format (its published template): the system message starts the first user turn"""
    out, sys_text = "", ""
    for m in messages:
        if m["role"] == "system":
            sys_text = m["content"] + "\n\n"
            continue
        role = "model" if m["role"] == "assistant" else m["role"]
        out += f"<start_of_turn>{role}\n{sys_text}{m['content']}<end_of_turn>\n"
        sys_text = ""
    return out + "<start_of_turn>model\n"


def llama_cpp_ids(gguf, prompt_ids):
    from llama_cpp import Llama, llama_vocab_is_eog, llama_model_get_vocab
    llm = Llama(model_path=gguf, n_ctx=1024, n_threads=2, verbose=False)
    vocab = llama_model_get_vocab(llm.model)
    out = []
    for t in llm.generate(prompt_ids, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0, reset=True):
        if llama_vocab_is_eog(vocab, t):
            break
        out.append(int(t))
        if len(out) == MAX_TOKENS:
            break
    del llm
    return out


def llama_cpp_forced(gguf, prompt_ids, ids):
    """llama.cpp's logits along prompt + ids: (positions where its argmax is not ids[i], with
    the margin top - logit[ids[i]])"""
    import numpy as np
    from llama_cpp import Llama
    llm = Llama(model_path=gguf, n_ctx=1024, n_threads=2, verbose=False, logits_all=True)
    seq = list(prompt_ids) + list(ids)
    llm.eval(seq)
    off = []
    for i, t in enumerate(ids):
        row = np.array(llm.scores[len(prompt_ids) - 1 + i], dtype=np.float64)
        top = int(row.argmax())
        if top != t:
            off.append([i, top, round(float(row[top] - row[t]), 4)])
    del llm
    return off


def f32_copy(gguf, path):
    """the GGUF with every tensor dequantized by ggml (gguf-py's port) to F32, metadata kept"""
    import gguf as gg
    import numpy as np
    r = gg.GGUFReader(gguf)
    arch = r.fields["general.architecture"].contents()
    w = gg.GGUFWriter(path, arch)
    for k, f in r.fields.items():
        if k.startswith("GGUF.") or k == "general.architecture":
            continue
        if k == "general.file_type":
            w.add_uint32(k, int(gg.LlamaFileType.ALL_F32))
            continue
        t = f.types[0]
        if t == gg.GGUFValueType.ARRAY:
            w.add_key_value(k, f.contents(), t, sub_type=f.types[-1])
        else:
            w.add_key_value(k, f.contents(), t)
    for t in r.tensors:
        x = gg.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        w.add_tensor(t.name, x.reshape(list(reversed([int(d) for d in t.shape]))))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def corpus(folder, gguf):
    from llama_cpp import Llama
    from tokenizers import Tokenizer
    lines = [json.loads(l) for l in open(os.path.join(ROOT, "tests/data/tokenizers/corpus.txt"), encoding="utf-8")]
    llm = Llama(model_path=gguf, vocab_only=True, verbose=False)
    hf = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    tc = json.load(open(os.path.join(folder, "tokenizer_config.json")))
    bos = tc.get("bos_token") if tc.get("add_bos_token") else None
    ids, bad, theirs = [], [], {}
    for i, s in enumerate(lines):
        # BOS as mlx-lm (and mlx-gen) add it: when the tokenizer adds one and the text does not start with it
        add = bool(bos) and not s.startswith(bos)
        a = llm.tokenize(s.encode("utf-8"), add_bos=add, special=True)
        b = hf.encode(s, add_special_tokens=add).ids
        ids.append(a)
        if a != b:
            bad.append(i)
            theirs[str(i)] = b
    return lines, ids, bad, theirs


def main():
    names = sys.argv[1:] or [n for n, (d, _) in MODELS.items() if os.path.isdir(os.path.join(ROOT, d))]
    import mlx.core as mx
    import mlx_lm
    for name in names:
        folder, gguf = (os.path.join(ROOT, p) for p in MODELS[name])
        if not os.path.isdir(folder):
            print(f"{name}: {folder} missing: run make real-models", file=sys.stderr)
            continue
        print(name, file=sys.stderr)
        cases = mlx_lm_cases(folder)
        f32 = f"/tmp/{name}-f32-{os.getpid()}.gguf"
        f32_copy(gguf, f32)
        try:
            for c in cases:
                for key, path in (("llama_cpp", gguf), ("llama_cpp_f32", f32)):
                    lc = llama_cpp_ids(path, c["prompt_ids"])
                    agree = 0
                    while agree < min(len(lc), len(c["ids"])) and lc[agree] == c["ids"][agree]:
                        agree += 1
                    c[key + "_ids"] = lc
                    c[key + "_agree"] = agree
                    c[key + "_forced_differ"] = off = llama_cpp_forced(path, c["prompt_ids"], c["ids"])
                    same = lc == c["ids"]
                    print(f"  {key}: {len(lc)} tokens, {'identical' if same else f'first {agree} agree'}; forced: "
                          f"{len(c['ids']) - len(off)}/{len(c['ids'])} top tokens agree, margins {[o[2] for o in off]}",
                          file=sys.stderr)
        finally:
            os.unlink(f32)
        lines, ids, bad, theirs = corpus(folder, gguf)
        print(f"  corpus: {len(lines)} lines, {len(bad)} differ between llama.cpp and tokenizers", file=sys.stderr)
        out = os.path.join(ROOT, "tests/data/real", name)
        os.makedirs(out, exist_ok=True)
        g = {"model": name, "gguf": os.path.basename(gguf), "gguf_sha256": sha256(gguf),
             "mlx": mx.__version__, "mlx_lm": mlx_lm.__version__,
             "llama_cpp": __import__("llama_cpp").__version__, "max_tokens": MAX_TOKENS, "cases": cases,
             "corpus": {"lines": len(lines), "tokenizers_vs_llama_cpp_differ": bad}}
        if bad:
            g["corpus"]["tokenizers_ids"] = theirs
        with open(os.path.join(out, "golden.json"), "w") as f:
            json.dump(g, f, indent=1, ensure_ascii=False)
            f.write("\n")
        data = "".join(json.dumps({"line": i, "ids": x}) + "\n" for i, x in enumerate(ids)).encode()
        subprocess.run(["zstd", "-q", "-19", "-f", "-o", os.path.join(out, "corpus_ids.jsonl.zst")], input=data,
                       check=True)


if __name__ == "__main__":
    main()
