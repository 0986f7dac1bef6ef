#!/usr/bin/env python3
"""gen_stt_goldens.py - reference transcripts for tests/unit/test_transcribe.c.

openai-whisper's transcribe() (the reference semantics; mlx-whisper mirrors it
but has no beam search) runs on models built from the tiny random fixtures of
tests/data/whisper/ (tiny-ml-mlx: multilingual, mlx-community layout;
tiny-en-hf: English-only, Hugging Face layout), with the weights copied into
openai-whisper's Whisper module, float32 on the CPU.  The audio is the
deterministic synthetic signal of synth_audio() (integer arithmetic, so that
the C test makes the same float samples), 45 s long so that the seek loop
runs over more than one window.

Only temperature-0 decodes go into the goldens (sampling is not expected to
match); the C test checks separately that fallback to a higher temperature
happens when the thresholds force it.

Output: tests/data/stt/transcribe_golden.json.zst
Arguments: case names to run only those (the output then holds only them).
STT_FIX / STT_OUT: another fixture folder / output path (debugging).
Run:    python3 tests/gen/gen_stt_goldens.py   (from the repo root)
"""
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.environ.get("STT_FIX", os.path.join(ROOT, "tests/data/whisper"))
OUT = os.environ.get("STT_OUT", os.path.join(ROOT, "tests/data/stt/transcribe_golden.json.zst"))

SECONDS = 45
# on/off pattern of the "voiced" square-wave bursts, one entry per second
PATTERN = [1, 1, 0, 1, 1, 1, 0, 0, 1, 0, 1, 1, 1, 1, 0, 1]


def synth_audio(seconds=SECONDS, seed=12345):
    """int16-valued samples / 32768 (exact in float32); mirrored in test_transcribe.c"""
    n = seconds * 16000
    out = np.empty(n, dtype=np.int32)
    state = seed
    for i in range(n):
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        noise = ((state >> 8) % 2001) - 1000
        sec = i // 16000
        half = (40 + (sec * 7) % 60) // 2
        sq = 6000 if (i // half) % 2 == 0 else -6000
        out[i] = noise + (sq if PATTERN[sec % len(PATTERN)] else 0)
    return (out.astype(np.float32) / np.float32(32768.0)).astype(np.float32)


def model_from_mlx(path):
    import torch
    from safetensors.numpy import load_file
    from whisper.model import ModelDimensions, Whisper
    cfg = json.load(open(os.path.join(path, "config.json")))
    dims = ModelDimensions(**{k: cfg[k] for k in ModelDimensions.__dataclass_fields__})
    m = Whisper(dims)
    w = load_file(os.path.join(path, "weights.safetensors"))
    sd = {}
    heads = w.pop("alignment_heads", None)
    for k, v in w.items():
        v = v.astype(np.float32)
        k = k.replace(".mlp1.", ".mlp.0.").replace(".mlp2.", ".mlp.2.")
        if k in ("encoder.conv1.weight", "encoder.conv2.weight"):
            v = v.transpose(0, 2, 1)   # MLX [out, k, in] -> torch [out, in, k]
        sd[k] = torch.from_numpy(np.ascontiguousarray(v))
    missing, unexpected = m.load_state_dict(sd, strict=False)
    assert not unexpected, unexpected
    assert set(missing) <= {"encoder.positional_embedding"}, missing
    if heads is not None:   # mlx-whisper saves its (layer, head) pairs with the weights
        mask = torch.zeros(dims.n_text_layer, dims.n_text_head, dtype=torch.bool)
        for l, h in np.asarray(heads).reshape(-1, 2):
            mask[int(l), int(h)] = True
        m.register_buffer("alignment_heads", mask.to_sparse(), persistent=False)
    return m.float().eval()


def model_from_hf(path):
    import torch
    from safetensors.numpy import load_file
    from whisper.model import ModelDimensions, Whisper
    cfg = json.load(open(os.path.join(path, "config.json")))
    dims = ModelDimensions(
        n_mels=cfg["num_mel_bins"], n_audio_ctx=cfg["max_source_positions"], n_audio_state=cfg["d_model"],
        n_audio_head=cfg["encoder_attention_heads"], n_audio_layer=cfg["encoder_layers"],
        n_vocab=cfg["vocab_size"], n_text_ctx=cfg["max_target_positions"], n_text_state=cfg["d_model"],
        n_text_head=cfg["decoder_attention_heads"], n_text_layer=cfg["decoder_layers"])
    m = Whisper(dims)
    from safetensors.torch import load_file as load_torch
    w = {k: v.float().numpy() for k, v in load_torch(os.path.join(path, "model.safetensors")).items()}
    ren = [("model.encoder.embed_positions.weight", "encoder.positional_embedding"),
           ("model.decoder.embed_positions.weight", "decoder.positional_embedding"),
           ("model.decoder.embed_tokens.", "decoder.token_embedding."),
           ("model.encoder.layer_norm.", "encoder.ln_post."), ("model.decoder.layer_norm.", "decoder.ln."),
           ("model.encoder.layers.", "encoder.blocks."), ("model.decoder.layers.", "decoder.blocks."),
           ("model.encoder.", "encoder."),
           (".self_attn_layer_norm.", ".attn_ln."), (".encoder_attn_layer_norm.", ".cross_attn_ln."),
           (".final_layer_norm.", ".mlp_ln."), (".self_attn.", ".attn."), (".encoder_attn.", ".cross_attn."),
           (".q_proj.", ".query."), (".k_proj.", ".key."), (".v_proj.", ".value."), (".out_proj.", ".out."),
           (".fc1.", ".mlp.0."), (".fc2.", ".mlp.2.")]
    sd = {}
    for k, v in w.items():
        if k == "proj_out.weight":
            continue
        nk = k
        for a, b in ren:
            nk = nk.replace(a, b)
        sd[nk] = torch.from_numpy(np.ascontiguousarray(v.astype(np.float32)))
    missing, unexpected = m.load_state_dict(sd, strict=False)
    assert not unexpected, unexpected
    assert not missing, missing
    gc = os.path.join(path, "generation_config.json")
    if os.path.exists(gc):
        heads = json.load(open(gc)).get("alignment_heads")
        if heads:
            mask = torch.zeros(dims.n_text_layer, dims.n_text_head, dtype=torch.bool)
            for l, h in heads:
                mask[l, h] = True
            m.register_buffer("alignment_heads", mask.to_sparse(), persistent=False)
    return m.float().eval()


CASES = [
    # name, model, transcribe() keyword arguments
    ("greedy_ts", "tiny-ml-mlx", dict(language="en")),
    ("greedy_nots", "tiny-ml-mlx", dict(language="en", without_timestamps=True)),
    ("beam3", "tiny-ml-mlx", dict(language="en", beam_size=3)),
    ("beam3_pat2", "tiny-ml-mlx", dict(language="en", beam_size=3, patience=2.0)),
    ("beam3_lp", "tiny-ml-mlx", dict(language="en", beam_size=3, length_penalty=0.5, without_timestamps=True)),
    ("prompt", "tiny-ml-mlx", dict(language="en", initial_prompt="  Hello there, this is a test.  ")),
    ("no_condition", "tiny-ml-mlx", dict(language="en", condition_on_previous_text=False)),
    ("words", "tiny-ml-mlx", dict(language="en", word_timestamps=True)),
    ("clips", "tiny-ml-mlx", dict(language="en", clip_timestamps="3.5,20,31")),
    ("detect", "tiny-ml-mlx", dict()),
    ("translate", "tiny-ml-mlx", dict(language="de", task="translate")),
    ("zh_words", "tiny-ml-mlx", dict(language="zh", word_timestamps=True)),
    ("halluc", "tiny-ml-mlx", dict(language="en", word_timestamps=True, hallucination_silence_threshold=1.0)),
    ("suppress", "tiny-ml-mlx", dict(language="en", suppress_tokens="", suppress_blank=False, max_initial_timestamp=0.5)),
    ("en_greedy", "tiny-en-hf", dict()),
    ("en_words", "tiny-en-hf", dict(word_timestamps=True)),
    ("en_beam", "tiny-en-hf", dict(beam_size=2, without_timestamps=True)),
]

BASE = dict(temperature=0.0, compression_ratio_threshold=None, logprob_threshold=None, no_speech_threshold=None,
            fp16=False, verbose=None)


def main():
    import torch
    import whisper
    from whisper.decoding import detect_language
    torch.manual_seed(0)
    torch.set_num_threads(2)
    audio = synth_audio()
    models = {}
    out = {"audio": {"seconds": SECONDS, "seed": 12345, "pattern": PATTERN}, "cases": []}
    from whisper.utils import compression_ratio
    texts = ["a", "Hello world.", "la la la la la la la la la la la la la la la la", "東京は日本の首都です。" * 3,
             " ".join(str(i) for i in range(200))]
    out["compression"] = [[t, compression_ratio(t)] for t in texts]
    only = sys.argv[1:]
    if only and os.path.exists(OUT):   # regenerate some cases, keep the others
        raw = subprocess.run(["zstd", "-dc", OUT], capture_output=True, check=True).stdout if OUT.endswith(".zst") \
            else open(OUT, "rb").read()
        out["cases"] = json.loads(raw)["cases"]
    for name, mname, kw in CASES:
        if only and name not in only:
            continue
        path = os.path.join(FIX, mname)
        if not os.path.isdir(path):
            print(f"skip {name}: no {path}", file=sys.stderr)
            continue
        if mname not in models:
            models[mname] = model_from_hf(path) if mname.endswith("-hf") else model_from_mlx(path)
        m = models[mname]
        args = dict(BASE)
        args.update(kw)
        r = whisper.transcribe(m, audio, **args)
        case = {"name": name, "model": mname, "opts": kw, "language": r["language"], "text": r["text"], "segments": []}
        for s in r["segments"]:
            seg = {k: s[k] for k in ("id", "seek", "start", "end", "text", "tokens", "temperature", "avg_logprob",
                                     "compression_ratio", "no_speech_prob")}
            seg["start"] = float(seg["start"])
            seg["end"] = float(seg["end"])
            if "words" in s:
                seg["words"] = [{"word": w["word"], "start": float(w["start"]), "end": float(w["end"]),
                                 "probability": float(w["probability"])} for w in s["words"]]
            case["segments"].append(seg)
        if name == "detect":
            mel = whisper.log_mel_spectrogram(audio, m.dims.n_mels, padding=whisper.audio.N_SAMPLES)
            mel = whisper.pad_or_trim(mel, whisper.audio.N_FRAMES)
            _, probs = detect_language(m, mel)
            top = sorted(probs.items(), key=lambda kv: -kv[1])[:5]
            case["lang_probs"] = {k: float(v) for k, v in probs.items()}
            print(f"  detect: top {top}")
        out["cases"] = [c for c in out["cases"] if c["name"] != name] + [case]
        out["cases"].sort(key=lambda c: [n for n, _, _ in CASES].index(c["name"]))
        write(out)
        print(f"{name}: {len(case['segments'])} segments, {sum(len(s['tokens']) for s in case['segments'])} tokens, "
              f"lang {r['language']}, text {r['text'][:60]!r}")
    write(out)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


def write(out):
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    data = json.dumps(out, ensure_ascii=False).encode("utf-8")
    if OUT.endswith(".zst"):
        subprocess.run(["zstd", "-q", "-19", "-f", "-o", OUT], input=data, check=True)
    else:
        with open(OUT, "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
