#!/usr/bin/env python3
"""Train one of the bundled Llama-architecture models (PyTorch + transformers LlamaForCausalLM).

usage: train.py --size target|draft|tiny --data DIR --out DIR [--seed N] [--device cuda|cpu]

--data holds train.txt, valid.txt (make_corpus.py) and tokenizer.json (train_tokenizer.py).
The text is tokenized here (documents joined by <|endoftext|>, cached as tokens-*.npy next to
it), the model is trained on random windows of the token stream (AdamW, linear warm-up then
cosine decay, bf16 autocast on CUDA), evaluated on fixed windows of the validation split,
and the weights with the best validation loss are saved in Hugging Face layout in --out
(config.json with model_type llama, model*.safetensors in bfloat16 by default, generation_config.json,
train_log.json) with the tokenizer files copied beside them.  The same seed, data and
device give the same model.  "tiny" is the reduced size for a CPU smoke test.
"""
import argparse
import json
import math
import os
import shutil
import time

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import LlamaConfig, LlamaForCausalLM

SIZES = {
    # ~22M parameters: 8 layers, width 512, 8 query / 2 key-value heads of 64, SwiGLU 1024
    "target": dict(hidden_size=512, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=2,
                   intermediate_size=1024, lr=1.5e-3, batch=64, seq=512, epochs=8.0),
    # ~4.9M parameters: 4 layers, width 256, 4 query / 2 key-value heads of 64, SwiGLU 640
    "draft": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                  intermediate_size=640, lr=3e-3, batch=64, seq=512, epochs=8.0),
    # CPU smoke test
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                 intermediate_size=128, lr=3e-3, batch=8, seq=128, epochs=0.002),
}


def tokenize(data, split, tok, eot):
    cache = os.path.join(data, f"tokens-{split}.npy")
    if os.path.exists(cache) and os.path.getmtime(cache) > os.path.getmtime(os.path.join(data, f"{split}.txt")):
        return np.load(cache)
    text = open(os.path.join(data, f"{split}.txt"), encoding="utf-8").read()
    docs = [d.strip("\n") for d in text.split("\n<|endoftext|>\n") if d.strip()]
    ids = []
    for enc in tok.encode_batch(docs, add_special_tokens=False):
        ids.extend(enc.ids)
        ids.append(eot)
    arr = np.asarray(ids, dtype=np.uint16)
    np.save(cache, arr)
    return arr


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=SIZES, required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--epochs", type=float, help="passes over the training tokens (default per size)")
    ap.add_argument("--max-minutes", type=float, default=9.0, help="stop early after this long")
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--save-dtype", choices=["float32", "bfloat16"], default="bfloat16")
    ap.add_argument("--max-shard", default="15MB", help="safetensors shard size (transformers syntax)")
    a = ap.parse_args()
    hp = SIZES[a.size]
    epochs = a.epochs if a.epochs is not None else hp["epochs"]

    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    dev = torch.device(a.device)

    tok = Tokenizer.from_file(os.path.join(a.data, "tokenizer.json"))
    eot = tok.token_to_id("<|endoftext|>")
    t0 = time.time()
    train = tokenize(a.data, "train", tok, eot)
    valid = tokenize(a.data, "valid", tok, eot)
    print(f"tokens: train {len(train)} valid {len(valid)} ({time.time() - t0:.1f}s)", flush=True)

    cfg = LlamaConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=hp["hidden_size"], intermediate_size=hp["intermediate_size"],
        num_hidden_layers=hp["num_hidden_layers"], num_attention_heads=hp["num_attention_heads"],
        num_key_value_heads=hp["num_key_value_heads"], head_dim=hp["hidden_size"] // hp["num_attention_heads"],
        max_position_embeddings=1024, rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True,
        bos_token_id=eot, eos_token_id=eot, pad_token_id=eot, attention_bias=False, mlp_bias=False,
        hidden_act="silu", initializer_range=0.02)
    model = LlamaForCausalLM(cfg).to(dev)
    nparams = sum(p.numel() for p in model.parameters())
    print(f"{a.size}: {nparams / 1e6:.2f}M parameters", flush=True)

    B, T = hp["batch"], hp["seq"]
    steps = max(10, int(epochs * len(train) / (B * T)))
    warm = min(200, steps // 10)
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (no_decay if p.ndim < 2 else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=hp["lr"], betas=(0.9, 0.95), eps=1e-8, fused=dev.type == "cuda")

    def lr_at(s):
        if s < warm:
            return hp["lr"] * (s + 1) / warm
        q = (s - warm) / max(1, steps - warm)
        return hp["lr"] * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * q)))

    train_t = torch.from_numpy(train.astype(np.int64))
    nval = min(192, max(1, (len(valid) - 1) // T))
    vwin = torch.from_numpy(valid[: nval * T + 1].astype(np.int64))
    vx = torch.stack([vwin[i * T:(i + 1) * T] for i in range(nval)]).to(dev)
    vy = torch.stack([vwin[i * T + 1:(i + 1) * T + 1] for i in range(nval)]).to(dev)
    gen = torch.Generator().manual_seed(a.seed)
    amp = dict(device_type="cuda", dtype=torch.bfloat16) if dev.type == "cuda" else dict(device_type="cpu", enabled=False)

    def evaluate():
        model.eval()
        tot = 0.0
        with torch.no_grad(), torch.autocast(**amp):
            for i in range(0, nval, 16):
                logits = model(input_ids=vx[i:i + 16]).logits.float()
                tot += torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), vy[i:i + 16].reshape(-1),
                                                         reduction="sum").item()
        model.train()
        return tot / (nval * T)

    log = {"size": a.size, "seed": a.seed, "params": nparams, "steps": steps, "batch": B, "seq": T,
           "train_tokens": int(len(train)), "valid_tokens": int(len(valid)), "evals": []}
    best, best_state = float("inf"), None
    t0 = time.time()
    model.train()
    for s in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(s)
        ix = torch.randint(0, len(train_t) - T - 1, (B,), generator=gen)
        x = torch.stack([train_t[i:i + T] for i in ix]).to(dev, non_blocking=True)
        y = torch.stack([train_t[i + 1:i + T + 1] for i in ix]).to(dev, non_blocking=True)
        with torch.autocast(**amp):
            logits = model(input_ids=x).logits
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        last = s == steps - 1 or (time.time() - t0) > a.max_minutes * 60
        if (s + 1) % a.eval_every == 0 or last:
            vl = evaluate()
            el = time.time() - t0
            log["evals"].append({"step": s + 1, "train_loss": round(loss.item(), 4), "valid_loss": round(vl, 4),
                                 "seconds": round(el, 1)})
            print(f"step {s + 1}/{steps} train {loss.item():.4f} valid {vl:.4f} ppl {math.exp(vl):.2f} "
                  f"lr {lr_at(s):.2e} {el:.0f}s", flush=True)
            if vl < best:
                best = vl
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                log["best_step"] = s + 1
        if last:
            break
    log["best_valid_loss"] = round(best, 4)
    log["seconds"] = round(time.time() - t0, 1)
    model.load_state_dict(best_state)
    os.makedirs(a.out, exist_ok=True)
    if a.save_dtype == "bfloat16":
        model = model.to(torch.bfloat16)
    model.config.dtype = a.save_dtype
    model.save_pretrained(a.out, safe_serialization=True, max_shard_size=a.max_shard)
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if os.path.exists(os.path.join(a.data, f)):
            shutil.copy(os.path.join(a.data, f), a.out)
    with open(os.path.join(a.out, "train_log.json"), "w") as f:
        json.dump(log, f, indent=1)
    print(f"saved {a.out} (best valid loss {best:.4f} at step {log['best_step']})", flush=True)


if __name__ == "__main__":
    main()
