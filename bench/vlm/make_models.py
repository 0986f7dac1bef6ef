#!/usr/bin/env python3
"""bench/vlm/make_models.py - the models and the image of bench/vlm/run.sh (run with the
mlx-vlm venv, /work/venv-mlxvlm; the GGUF step runs llama.cpp's convert_hf_to_gguf.py
with TORCH_PY, a python with torch).

  smolvlm-256m-hf/        HF-layout float32 Idefics3 folder: the random weights of
                          local-models/smolvlm-256m-random (tests/gen/gen_vlm_idefics3.py
                          --full; made when missing), under their HF names
  smolvlm-256m-q4/        mlx_vlm.convert of it: 4-bit, group 64 (ours and mlx-vlm)
  smolvlm-256m-f32.gguf   convert_hf_to_gguf.py of it (text model), then
  smolvlm-256m-Q4_0.gguf  llama-quantize --pure Q4_0 (every matrix 4-bit, as the MLX folder)
  mmproj-smolvlm-256m-f16.gguf / -f32.gguf   the vision tower + connector (--mmproj)
  photo.png               640x480, deterministic, photo-like (smooth shading, noise, shapes)

Everything lands in OUT (default bench/models/vlm); what exists is kept.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "gen"))
LLAMA_SRC = os.path.join(ROOT, "build-llama-cpp", "llama_cpp_python-0.3.36", "vendor", "llama.cpp")


def say(*a):
    print("bench/vlm:", *a, file=sys.stderr, flush=True)


def make_image(path):
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter
    rng = np.random.default_rng(640480)
    w, h = 640, 480
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    sky = np.stack([90 + 80 * (1 - y / h), 140 + 60 * (1 - y / h), 230 - 40 * (y / h)], -1)
    hill = (y > 300 + 40 * np.sin(x / 90.0)).astype(np.float32)[..., None]
    grass = np.stack([60 + 30 * np.sin(x / 13.0) * np.cos(y / 17.0), 150 + 40 * (y / h), 50 + 0 * x], -1)
    a = sky * (1 - hill) + grass * hill
    a += rng.normal(0, 6, a.shape)
    im = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(im)
    d.ellipse([470, 40, 560, 130], fill=(255, 230, 120))          # sun
    d.rectangle([120, 230, 300, 380], fill=(170, 70, 50))           # house
    d.polygon([(100, 235), (210, 150), (320, 235)], fill=(90, 40, 30))
    d.rectangle([190, 300, 230, 380], fill=(60, 40, 20))
    for i in range(12):                                             # trees
        cx, cy = int(rng.integers(330, 620)), int(rng.integers(300, 440))
        d.rectangle([cx - 4, cy, cx + 4, cy + 30], fill=(80, 50, 20))
        d.ellipse([cx - 22, cy - 40, cx + 22, cy + 5], fill=(20, int(rng.integers(90, 140)), 30))
    im = im.filter(ImageFilter.GaussianBlur(0.8))
    im.save(path, optimize=True)


def make_hf(src, out):
    """src: an MLX float32 folder of gen_vlm_idefics3 (MLX names) -> HF folder."""
    import gen_vlm_idefics3 as gen
    from safetensors.numpy import load_file, save_file
    cfg_mlx = json.load(open(os.path.join(src, "config.json")))
    w = load_file(os.path.join(src, "model.safetensors"))
    # mlx-vlm's sanitize made the patch conv [out, kh, kw, in]; to_hf_names turns it back
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.json",
              "preprocessor_config.json", "processor_config.json", "generation_config.json"):
        shutil.copy(os.path.join(src, f), tmp)
    config = gen.hf_config(cfg_mlx["vocab_size"], cfg_mlx["image_token_id"], full=True)
    json.dump(config, open(os.path.join(tmp, "config.json"), "w"), indent=2)
    save_file(gen.to_hf_names(w), os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
    os.rename(tmp, out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "models", "vlm"))
    ap.add_argument("--src", default=os.path.join(ROOT, "local-models", "smolvlm-256m-random"))
    ap.add_argument("--torch-py", default=os.environ.get("TORCH_PY", "/work/venv-mlx/bin/python"))
    ap.add_argument("--quantize", default=os.path.join(ROOT, "bench", "bin", "llama-quantize"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    img = os.path.join(a.out, "photo.png")
    if not os.path.exists(img):
        make_image(img)
        say("wrote", img)
    if not os.path.exists(os.path.join(a.src, "model.safetensors")):
        say(a.src, "missing: tests/gen/gen_vlm_idefics3.py --only-full (a few minutes)")
        subprocess.run([sys.executable, os.path.join(ROOT, "tests", "gen", "gen_vlm_idefics3.py"), "--only-full"],
                       check=True)
    hf = os.path.join(a.out, "smolvlm-256m-hf")
    if not os.path.exists(os.path.join(hf, "model.safetensors")):
        make_hf(a.src, hf)
        say("wrote", hf)
    q4 = os.path.join(a.out, "smolvlm-256m-q4")
    if not os.path.exists(os.path.join(q4, "model.safetensors")):
        from mlx_vlm.convert import convert
        shutil.rmtree(q4, ignore_errors=True)
        convert(hf, mlx_path=q4, quantize=True, q_group_size=64, q_bits=4, dtype="float32")
        readme = os.path.join(q4, "README.md")
        if os.path.exists(readme):
            os.remove(readme)
        say("wrote", q4)
    conv = [a.torch_py, os.path.join(os.path.dirname(os.path.abspath(__file__)), "convert_gguf.py"), hf]
    f32 = os.path.join(a.out, "smolvlm-256m-f32.gguf")
    if not os.path.exists(f32):
        subprocess.run(conv + ["--outtype", "f32", "--outfile", f32], check=True)
    for t in ("f16", "f32"):
        mm = os.path.join(a.out, f"mmproj-smolvlm-256m-{t}.gguf")
        if not os.path.exists(mm):
            subprocess.run(conv + ["--mmproj", "--outtype", t, "--outfile", mm], check=True)
    q40 = os.path.join(a.out, "smolvlm-256m-Q4_0.gguf")
    if not os.path.exists(q40):
        subprocess.run([a.quantize, "--pure", f32, q40, "Q4_0", "2"], check=True,
                       stdout=subprocess.DEVNULL)
        say("wrote", q40)


if __name__ == "__main__":
    main()
