#!/usr/bin/env python3
"""gen_stt_parakeet.py - tiny random-weight Parakeet folders and their goldens
for tests/unit/test_stt_parakeet.c.

Reference: mlx-audio 0.6.2 (mlx_audio/stt/models/parakeet, mlx 0.32.4), run
on the CPU in float32 (/work/venv-tts/bin/python).  Each folder is built
from a NeMo-structured config.json (the keys mlx-community's parakeet
folders carry: target, model_defaults, preprocessor, encoder, decoder,
joint, decoding), given random weights, saved in the MLX layout
(model.safetensors), then loaded back through mlx_audio.stt.utils.load_model
so the goldens come from exactly what mlx-audio reads from the folder.

Folders (tests/data/stt/parakeet/):
model_type: "parakeet_tdt" (tdt, tdt-q4), "parakeet" (ctc), none (rnnt: the
NeMo structure only, which mlx-stt's parakeet family claims).
  tdt      TDT decoder (durations 0..4), 2 conformer layers, no biases, xscaling
  tdt-q4   the same weights, nn.quantize group 64 / 4 bits (the layers whose
           input width is a multiple of 64, as mlx-audio's loader decides)
  rnnt     RNN-T decoder (no durations), 1 layer, biases, a 1-layer LSTM
  ctc      CTC head (ConvASRDecoder), 1 layer, biases
Shapes are scaled down (d_model 64, 4 heads, conv kernel 9, 8x dw_striding
subsampling with 16 channels, 80 mels, LSTM 2 x 64) but keep the structure.
The random init is scaled (joint / CTC head x3), the encoder output's constant
part projected out of the head's input weights and the blank logit moved so
that greedy decoding emits several distinct tokens, not all blanks.

Clips (tests/data/stt/parakeet/audio/): speech.wav (espeak-ng, 16 kHz s16),
noise.wav (seeded Gaussian noise, s16), and tests/data/audio/speech_s16_mono_16k.wav;
"long" is speech + noise + short speech + speech, decoded with
generate(chunk_duration=4, overlap_duration=2) so that the overlapping-chunk
merge runs.  Goldens per folder and clip: golden/<clip>.json.zst (token ids,
text, sentences with token times), for the float folders the encoder output
(<clip>.enc.f32.zst, [T', d_model]), and in tdt/ the features
(<clip>.feat.f32.zst, [T, n_mels]; every folder has the same preprocessor).
mel/: features of the short clip under other preprocessor settings
(MEL_VARIANTS: windows, global normalisation, no pre-emphasis, pad_to,
another rate and guard).

Run from the repo root: /work/venv-tts/bin/python tests/gen/gen_stt_parakeet.py
"""
import json
import os
import shutil
import subprocess
import sys
import wave

import numpy as np
import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten, tree_map_with_path

from mlx_audio.stt.models.parakeet.parakeet import Model, ModelConfig
from mlx_audio.stt.utils import load_model

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests/data/stt/parakeet")

VOCAB = ["<unk>", "▁the", "▁a", "▁quick", "▁brown", "▁fox", "s", "ing", ".", "?", "▁is", "▁it", "▁rain",
         "▁to", "day", "▁over", "▁lazy", "▁dog", "e", "t", "▁j", "ump", "!", ",", "▁we", "▁go", "er", "▁in",
         "a", "o", "n", "<|en|>", "▁on", "ed", "ly", "▁of", "▁and", "i", "▁be", "▁no"]
V = len(VOCAB)


def preprocessor(features=80):
    return {"_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor", "sample_rate": 16000,
            "normalize": "per_feature", "window_size": 0.025, "window_stride": 0.01, "window": "hann",
            "features": features, "n_fft": 512, "log": True, "frame_splicing": 1, "dither": 1e-05,
            "pad_to": 0, "pad_value": 0.0}


def encoder(n_layers, use_bias, xscaling):
    return {"_target_": "nemo.collections.asr.modules.ConformerEncoder", "feat_in": 80, "feat_out": -1,
            "n_layers": n_layers, "d_model": 64, "use_bias": use_bias, "subsampling": "dw_striding",
            "subsampling_factor": 8, "subsampling_conv_channels": 16, "causal_downsampling": False,
            "ff_expansion_factor": 2, "self_attention_model": "rel_pos", "n_heads": 4,
            "att_context_size": [-1, -1], "xscaling": xscaling, "untie_biases": True, "pos_emb_max_len": 5000,
            "conv_kernel_size": 9, "conv_norm_type": "batch_norm", "dropout": 0.1}


def transducer_config(tdt):
    durations = [0, 1, 2, 3, 4]
    cfg = {
        "target": "nemo.collections.asr.models.rnnt_bpe_models.EncDecRNNTBPEModel",
        "model_defaults": {"enc_hidden": 64, "pred_hidden": 64, "joint_hidden": 64,
                           "tdt_durations": durations if tdt else None},
        "sample_rate": 16000,
        "labels": VOCAB,
        "preprocessor": preprocessor(),
        "encoder": encoder(2 if tdt else 1, not tdt, tdt),
        "decoder": {"_target_": "nemo.collections.asr.modules.RNNTDecoder", "normalization_mode": None,
                    "random_state_sampling": False, "blank_as_pad": True, "vocab_size": V,
                    "prednet": {"pred_hidden": 64, "pred_rnn_layers": 2 if tdt else 1, "t_max": None, "dropout": 0.2}},
        "joint": {"_target_": "nemo.collections.asr.modules.RNNTJoint", "log_softmax": None,
                  "preserve_memory": False, "fuse_loss_wer": True, "fused_batch_size": 4,
                  "jointnet": {"joint_hidden": 64, "activation": "relu", "dropout": 0.2,
                               "encoder_hidden": 64, "pred_hidden": 64},
                  "num_classes": V, "vocabulary": VOCAB,
                  "num_extra_outputs": len(durations) if tdt else 0},
        "decoding": {"strategy": "greedy_batch", "model_type": "tdt" if tdt else "rnnt",
                     "durations": durations if tdt else [],
                     "greedy": {"max_symbols": 10}},
    }
    if not tdt:
        del cfg["decoding"]["model_type"], cfg["decoding"]["durations"]
    return cfg


def ctc_config():
    return {
        "target": "nemo.collections.asr.models.ctc_bpe_models.EncDecCTCModelBPE",
        "sample_rate": 16000,
        "preprocessor": preprocessor(),
        "encoder": encoder(1, True, False),
        "decoder": {"_target_": "nemo.collections.asr.modules.ConvASRDecoder", "feat_in": 64,
                    "num_classes": V, "vocabulary": VOCAB},
        "decoding": {"strategy": "greedy_batch", "greedy": {"max_symbols": 10}},
    }


def randomize(model, seed, head_scale=3.0):
    rng = np.random.default_rng(seed)

    def init(path, p):
        shape = p.shape
        if path.endswith("running_var"):
            return mx.array(rng.uniform(0.5, 1.5, shape).astype(np.float32))
        if path.endswith("running_mean"):
            return mx.array(rng.normal(0, 0.1, shape).astype(np.float32))
        if "norm" in path and path.endswith("weight"):
            return mx.array((1 + 0.1 * rng.normal(size=shape)).astype(np.float32))
        if "norm" in path and path.endswith("bias"):
            return mx.array((0.1 * rng.normal(size=shape)).astype(np.float32))
        if path.endswith("pos_bias_u") or path.endswith("pos_bias_v"):
            return mx.array((0.2 * rng.normal(size=shape)).astype(np.float32))
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
        std = 1.0 / np.sqrt(max(fan_in, 1))
        if "embed" in path:
            std = 0.5
        if path.startswith("joint.enc"):
            std *= 4.0
        if path.startswith("joint.pred"):
            std *= 0.5
        if "joint_net" in path or "decoder_layers" in path:
            std *= head_scale
        return mx.array(rng.normal(0, std, shape).astype(np.float32))

    model.update(tree_map_with_path(lambda path, p: init(path, p), model.parameters()))


def save_folder(name, cfg, model, quant=None):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    weights = dict(tree_flatten(model.parameters()))
    if quant:
        cfg = dict(cfg)
        cfg["quantization"] = quant
    mx.save_safetensors(os.path.join(d, "model.safetensors"), weights)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1, ensure_ascii=False)
    return d


def read_wav(path):
    with wave.open(path) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0


def write_wav(path, pcm_i16):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm_i16.astype("<i2").tobytes())


def make_audio():
    ad = os.path.join(OUT, "audio")
    os.makedirs(ad, exist_ok=True)
    sp = os.path.join(ad, "speech.wav")
    if not os.path.exists(sp):
        tmp = "/tmp/parakeet_espeak.wav"
        subprocess.run(["espeak-ng", "-w", tmp, "The quick brown fox jumps over the lazy dog. Is it raining today?"],
                       check=True)
        with wave.open(tmp) as w:
            rate = w.getframerate()
            x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
        # band-limited resampling to 16 kHz (scipy's polyphase filter)
        from scipy.signal import resample_poly
        g = np.gcd(rate, 16000)
        y = resample_poly(x, 16000 // g, rate // g)
        write_wav(sp, np.clip(np.round(y), -32768, 32767))
    nz = os.path.join(ad, "noise.wav")
    if not os.path.exists(nz):
        rng = np.random.default_rng(7)
        write_wav(nz, np.clip(np.round(rng.normal(0, 2000, 24000)), -32768, 32767))
    speech = read_wav(sp)
    noise = read_wav(nz)
    short = read_wav(os.path.join(ROOT, "tests/data/audio/speech_s16_mono_16k.wav"))
    long = np.concatenate([speech, noise, short, speech])
    return {"speech": speech, "noise": noise, "short": short, "long": long}


def result_json(res):
    return {"text": res.text,
            "ids": [t.id for s in res.sentences for t in s.tokens],
            "sentences": [{"text": s.text, "start": s.start, "end": s.end,
                           "tokens": [{"id": t.id, "text": t.text, "start": t.start, "end": t.end,
                                       "duration": t.duration} for t in s.tokens]}
                          for s in res.sentences]}


def zstd_f32(path, arr):
    data = np.ascontiguousarray(np.asarray(arr, dtype=np.float32)).tobytes()
    subprocess.run(["zstd", "-q", "-19", "-f", "-o", path], input=data, check=True)


def goldens(name, clips, float_dumps):
    d = os.path.join(OUT, name)
    # the rnnt folder has no model_type (a NeMo-structured config only):
    # mlx-audio then goes by the repository name, given here
    model = load_model(d, model_type="parakeet")
    gd = os.path.join(d, "golden")
    os.makedirs(gd, exist_ok=True)
    summary = {}
    for clip, audio in clips.items():
        x = mx.array(audio)
        if clip == "long":
            res = model.generate(x, dtype=mx.float32, chunk_duration=4.0, overlap_duration=2.0)
        else:
            res = model.generate(x, dtype=mx.float32)
            if float_dumps:
                mel = model._log_mel_spectrogram(x)
                enc, _ = model.encoder(mel)
                if name == "tdt":   # the same preprocessor config in every folder
                    zstd_f32(os.path.join(gd, clip + ".feat.f32.zst"), mel[0])
                zstd_f32(os.path.join(gd, clip + ".enc.f32.zst"), enc[0])
        rj = result_json(res)
        data = json.dumps(rj, ensure_ascii=False, separators=(",", ":")).encode()
        subprocess.run(["zstd", "-q", "-19", "-f", "-o", os.path.join(gd, clip + ".json.zst")], input=data,
                       check=True)
        summary[clip] = (len(rj["ids"]), len(set(rj["ids"])), rj["text"][:60])
    print(name, summary)


# Feature extractor variants (window, normalisation, pre-emphasis, padding,
# rate, guard) on the short clip: mel/<name>.f32.zst [T, features] and
# mel/variants.json (the preprocessor settings of each).
MEL_VARIANTS = {
    "hamming_global": {"sample_rate": 16000, "normalize": "all_features", "window_size": 0.02,
                       "window_stride": 0.01, "window": "hamming", "features": 64, "n_fft": 512, "dither": 0.0},
    "blackman_pad": {"sample_rate": 16000, "normalize": "per_feature", "window_size": 0.025,
                     "window_stride": 0.01, "window": "blackman", "features": 40, "n_fft": 400, "dither": 0.0,
                     "preemph": 0.0, "pad_to": 48000, "pad_value": 0.0},
    "bartlett_8k": {"sample_rate": 8000, "normalize": "per_feature", "window_size": 0.025,
                    "window_stride": 0.01, "window": "bartlett", "features": 80, "n_fft": 256, "dither": 0.0,
                    "log_zero_guard_value": 1e-05},
}


def mel_variants(audio):
    from mlx_audio.stt.models.parakeet.audio import PreprocessArgs, log_mel_spectrogram
    md = os.path.join(OUT, "mel")
    os.makedirs(md, exist_ok=True)
    for name, pa in MEL_VARIANTS.items():
        mel = log_mel_spectrogram(mx.array(audio), PreprocessArgs(**pa))
        zstd_f32(os.path.join(md, name + ".f32.zst"), mel[0])
    with open(os.path.join(md, "variants.json"), "w") as f:
        json.dump(MEL_VARIANTS, f, indent=1)


def main():
    mx.random.seed(0)
    clips = make_audio()
    mel_variants(clips["short"])
    for name, cfg, seed in (("tdt", transducer_config(True), 1), ("rnnt", transducer_config(False), 2),
                            ("ctc", ctc_config(), 3)):
        model = Model(ModelConfig.from_dict(cfg))
        randomize(model, seed)
        # The encoder's output has a large constant part (the same vector
        # at every frame); project it out of the head's input weights so
        # that the logits follow the audio, then set the blank logit.
        mel = model._log_mel_spectrogram(mx.array(clips["speech"]))
        enc, _ = model.encoder(mel)
        mu = np.array(enc[0]).mean(0)
        mu /= np.linalg.norm(mu)
        if name != "ctc":
            w = np.array(model.joint.enc.weight)
            model.joint.enc.weight = mx.array(w - np.outer(w @ mu, mu))
            b = model.joint.joint_net[2].bias
            model.joint.joint_net[2].bias = b.at[V].add(-1.0 if name == "tdt" else 4.0)
        else:
            w = np.array(model.decoder.decoder_layers[0].weight)   # [V+1, 1, d]
            model.decoder.decoder_layers[0].weight = mx.array(w - (w @ mu)[..., None] * mu)
            b = model.decoder.decoder_layers[0].bias
            model.decoder.decoder_layers[0].bias = b.at[V].add(-1.0)
        if name != "rnnt":
            cfg = {"model_type": "parakeet_tdt" if name == "tdt" else "parakeet", **cfg}
        save_folder(name, cfg, model)
        if name == "tdt":
            nn.quantize(model, group_size=64, bits=4,
                        class_predicate=lambda p, m: hasattr(m, "to_quantized") and m.weight.shape[-1] % 64 == 0)
            save_folder("tdt-q4", cfg, model, {"group_size": 64, "bits": 4})
    for name in ("tdt", "rnnt", "ctc", "tdt-q4"):
        goldens(name, clips, name != "tdt-q4")


if __name__ == "__main__":
    sys.exit(main())
