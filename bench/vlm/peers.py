#!/usr/bin/env python3
"""bench/vlm/peers.py - one measured run of a peer, or the parse of one of ours / llama.cpp's,
as one JSON line: {engine, tiles, image_tokens, prompt_tokens, encode_s, prompt_tps,
gen_tokens, gen_tps, peak_rss_mb} (bench/vlm/run.sh).

  peers.py mlxvlm --model DIR --image PNG --prompt TEXT --max-tokens N
      Python mlx-vlm (mlx's CPU backend): mlx_vlm.stream_generate as mlx_vlm.generate calls it
      (temperature 0, the default prefill step), with the model's get_input_embeddings
      wrapped so that the vision tower + connector are evaluated on their own and timed:
      encode_s is that time, prompt_tps the prompt tokens over the rest of mlx-vlm's own
      prompt time (the text prefill), gen_tps mlx-vlm's generation_tps.  The stopping
      criteria never stop (ignore eos: N tokens always).  mlx picks its own thread count.
  peers.py mlxvlm-parts --model DIR --image PNG --prompt TEXT [--tiles 1 --prefill 128 --gen 16]
      the same figures on a cut-down workload (see mlxvlm_parts): mlx's CPU matmuls go
      through the reference BLAS here, ~2 GFLOP/s, so the whole run takes most of an hour.
  peers.py parse-ours LOG RSS_KB      mlx-vlm (ours) stderr with MT_VLM_TIMING=1
  peers.py parse-llama LOG RSS_KB     llama-mtmd-cli stderr
"""
import argparse
import json
import re
import sys
import time


def out(d):
    print(json.dumps(d))


def mlxvlm(a):
    import mlx.core as mx
    from mlx_vlm import load
    from mlx_vlm.generate import stream_generate
    from mlx_vlm.prompt_utils import apply_chat_template

    t0 = time.perf_counter()
    model, processor = load(a.model)
    load_s = time.perf_counter() - t0
    enc = {"s": 0.0, "n": 0, "tiles": 0, "image_tokens": 0}
    orig = model.get_input_embeddings
    cfg = model.config
    image_id = getattr(cfg, "image_token_id", None) or getattr(cfg, "image_token_index", None)

    def timed(input_ids=None, pixel_values=None, **kw):
        t = time.perf_counter()
        r = orig(input_ids, pixel_values, **kw)
        mx.eval(r.inputs_embeds)
        enc["s"] += time.perf_counter() - t
        enc["n"] += 1
        if image_id is not None and input_ids is not None:
            enc["image_tokens"] += int((input_ids == image_id).sum().item())
        if pixel_values is not None:
            enc["tiles"] = int(pixel_values.shape[0] * (pixel_values.shape[1] if pixel_values.ndim == 5 else 1))
        return r

    model.get_input_embeddings = timed

    class Never:
        eos_token_ids = set()

        def __call__(self, token):
            return False

        def reset(self, *args, **kw):
            pass

        def add_eos_token_ids(self, *args, **kw):
            pass

    tok = processor.tokenizer if hasattr(processor, "tokenizer") else processor
    tok.stopping_criteria = Never()
    prompt = apply_chat_template(processor, model.config, a.prompt, num_images=1)
    last = None
    for r in stream_generate(model, processor, prompt, image=[a.image], max_tokens=a.max_tokens, temperature=0.0):
        last = r
    prompt_time = last.prompt_tokens / last.prompt_tps if last.prompt_tps else 0.0
    text_s = max(prompt_time - enc["s"], 1e-9)
    out({"engine": a.label, "tiles": enc["tiles"], "image_tokens": enc["image_tokens"],
         "prompt_tokens": last.prompt_tokens, "encode_s": round(enc["s"], 3),
         "prompt_tps": round(last.prompt_tokens / text_s, 2), "gen_tokens": last.generation_tokens,
         "gen_tps": round(last.generation_tps, 2), "load_s": round(load_s, 2),
         "mlx_peak_gb": round(last.peak_memory, 3), "peak_rss_mb": None})


def mlxvlm_parts(a):
    """The same three figures on a cut-down workload, for a CPU where mlx's matmuls are slow
    (mlx-cpu links the reference BLAS): the processor's real inputs for the image and prompt,
    then (1) the vision tower + connector on the first TILES tiles (get_input_embeddings with
    64 image tokens a tile), (2) the text model over the first PREFILL prompt tokens as
    generate_step prefills (all but the last token without logits, then the last), (3)
    GEN greedy decode steps after that.  encode_s is scaled to the image's tiles (per-tile
    time x tiles: marked "encode_extrapolated")."""
    import mlx.core as mx
    from mlx_vlm import load
    from mlx_vlm.models import cache as mcache
    from mlx_vlm.prompt_utils import apply_chat_template
    from mlx_vlm.utils import load_image, prepare_inputs

    model, processor = load(a.model)
    cfg = model.config
    image_id = getattr(cfg, "image_token_id", None) or getattr(cfg, "image_token_index", None)
    prompt = apply_chat_template(processor, cfg, a.prompt, num_images=1)
    inputs = prepare_inputs(processor, images=[load_image(a.image)], prompts=[prompt], image_token_index=image_id)
    ids, pv = inputs["input_ids"], inputs["pixel_values"]
    pam = inputs.get("pixel_attention_mask")
    n_img_tok = int((ids == image_id).sum().item())
    tiles = int(pv.shape[1]) if pv.ndim == 5 else int(pv.shape[0])
    per_tile = n_img_tok // tiles
    k = min(a.tiles, tiles)
    sub_ids = mx.array([[image_id] * (per_tile * k)])
    kw = {"pixel_attention_mask": pam[:, :k]} if pam is not None else {}
    mx.eval(pv, ids)
    t = time.perf_counter()
    r = model.get_input_embeddings(sub_ids, pv[:, :k], **kw)
    mx.eval(r.inputs_embeds)
    enc_k = time.perf_counter() - t

    lm = model.language_model
    P = min(a.prefill, ids.shape[1])
    x = ids[:, :P]
    emb = lm.embed_tokens(x)
    c = mcache.make_prompt_cache(lm)
    mx.eval(emb)
    t = time.perf_counter()
    lm(x[:, :-1], inputs_embeds=emb[:, :-1], cache=c)
    mx.eval([e.state for e in c])
    o = lm(x[:, -1:], inputs_embeds=emb[:, -1:], cache=c)
    y = mx.argmax(o.logits[:, -1, :], axis=-1)
    mx.eval(y)
    pre_s = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(a.gen):
        o = lm(y[:, None], cache=c)
        y = mx.argmax(o.logits[:, -1, :], axis=-1)
        mx.eval(y)
    gen_s = time.perf_counter() - t
    out_d = {"engine": a.label, "tiles": tiles, "image_tokens": n_img_tok, "prompt_tokens": int(ids.shape[1]),
             "encode_s": round(enc_k / k * tiles, 3), "encode_extrapolated": f"{k} of {tiles} tiles: {enc_k:.3f} s",
             "prompt_tps": round(P / pre_s, 2), "prefill_tokens": P, "gen_tokens": a.gen,
             "gen_tps": round(a.gen / gen_s, 2), "peak_rss_mb": None}
    out(out_d)


def parse_ours(a):
    s = open(a.log, errors="replace").read()
    m = re.search(r"mlx-vlm: image 1: (\d+) tiles of \d+x\d+, (\d+) tokens, loaded\+preprocessed ([\d.]+) s, encoded ([\d.]+) s", s)
    p = re.search(r"Prompt: (\d+) tokens, ([\d.]+) tokens-per-sec", s)
    g = re.search(r"Generation: (\d+) tokens, ([\d.]+) tokens-per-sec", s)
    if not (m and p and g):
        sys.exit("bench/vlm: ours: no timing lines in " + a.log)
    out({"engine": a.label, "tiles": int(m.group(1)), "image_tokens": int(m.group(2)), "prompt_tokens": int(p.group(1)),
         "preprocess_s": float(m.group(3)), "encode_s": float(m.group(4)), "prompt_tps": float(p.group(2)),
         "gen_tokens": int(g.group(1)), "gen_tps": float(g.group(2)), "peak_rss_mb": round(int(a.rss) / 1024)})


def parse_llama(a):
    s = open(a.log, errors="replace").read()
    # mtmd-cli: "encoding mtmd batch, n_chunks = K ..." then "mtmd batch encoding done in N ms"
    # per batch of media chunks (here one image each: the overview, then the tiles), then
    # "image decoded (batch i/n) in N ms" (the text model over that image's tokens).  With
    # --perf -lv 4, llama_perf_context_print: "prompt eval time" runs from the prompt's first
    # llama_decode to the synchronize after its last (libllama syncs only when it reads
    # logits), so it spans the image encodes done in between: the text model's prompt time
    # is prompt eval time - the encode times.  "eval time / N runs" is the generation.
    enc = [float(x) for x in re.findall(r"mtmd batch encoding done in (\d+) ms", s)]
    dec = [float(x) for x in re.findall(r"image decoded \(batch \d+/\d+\) in (\d+) ms", s)]
    nimg = sum(int(x) for x in re.findall(r"encoding mtmd batch, n_chunks = (\d+)", s))
    ntok = sum(int(x) for x in re.findall(r"decoding image batch \d+/\d+, n_tokens_batch = (\d+)", s))
    pe = re.search(r"prompt eval time =\s*([\d.]+) ms /\s*(\d+) tokens", s)
    ev = re.search(r"\beval time =\s*([\d.]+) ms /\s*(\d+) runs", s)
    if not (enc and pe and ev):
        sys.exit("bench/vlm: llama.cpp: no timing lines in " + a.log)
    enc_s = sum(enc) / 1e3
    pt, pn = float(pe.group(1)) / 1e3 - enc_s, int(pe.group(2))
    out({"engine": a.label, "tiles": nimg, "image_tokens": ntok or None, "prompt_tokens": pn,
         "encode_s": round(enc_s, 3), "prompt_tps": round(pn / pt, 2) if pt > 0 else 0.0,
         "image_decode_s": round(sum(dec) / 1e3, 3), "prompt_eval_s": round(float(pe.group(1)) / 1e3, 3),
         "gen_tokens": int(ev.group(2)) + 1, "gen_tps": round(int(ev.group(2)) / (float(ev.group(1)) / 1e3), 2),
         "peak_rss_mb": round(int(a.rss) / 1024)})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["mlxvlm", "mlxvlm-parts", "parse-ours", "parse-llama"])
    ap.add_argument("log", nargs="?")
    ap.add_argument("rss", nargs="?")
    ap.add_argument("--label")
    ap.add_argument("--model")
    ap.add_argument("--image")
    ap.add_argument("--prompt")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--tiles", type=int, default=1)
    ap.add_argument("--prefill", type=int, default=128)
    ap.add_argument("--gen", type=int, default=16)
    a = ap.parse_args()
    if a.what == "mlxvlm":
        a.label = a.label or "mlx-vlm"
        mlxvlm(a)
    elif a.what == "mlxvlm-parts":
        a.label = a.label or "mlx-vlm"
        mlxvlm_parts(a)
    elif a.what == "parse-ours":
        a.label = a.label or "ours"
        parse_ours(a)
    else:
        a.label = a.label or "llama.cpp"
        parse_llama(a)


if __name__ == "__main__":
    main()
