#!/usr/bin/env python3
"""gen_vlm_gemma3.py - tiny random-weight Gemma 3 (model_type gemma3) folders made with the
real mlx-vlm package, plus goldens for the C port (tests/data/vlm/gemma3-tiny{,-q4,-q8}).

    /work/venv-mlxvlm/bin/python tests/gen/gen_vlm_gemma3.py

Shape: mlx-community/gemma-3-4b-it's config with depth and widths reduced.  The tower's
image_size is 448 instead of 896 (a 64x64-patch tower at float32 would not fit the size
budget): 32x32 = 1024 patches of 14 pixels, pooled 2x2 (the real model pools 4x4) to the
real 256 image tokens.  The text config keeps the real keys (rope_scaling linear 8 on the
global layers, rope_local_base_freq 1e4, rope_theta 1e6) with sliding_window 128 and
sliding_window_pattern 2 (layer 0 sliding, layer 1 global) so that the window acts on the
~290-token prompts.  As in the real config there is no top-level hidden_size: mlx-vlm
divides the image features by sqrt(2048) (its ModelConfig default), not sqrt(text hidden).
gemma3-tiny-pas: the float folder again (weights symlinked) with pan & scan on (min crop 256,
at most 4 crops, ratio 1.2): the gradient gets 2 crops, the portrait 3, the small images none.
Tokenizer: byte-level BPE, 0 <pad> 1 <eos> 2 <bos> 3 <unk>, BPE to 400, then 400
<start_of_turn> 401 <end_of_turn> 402 <start_of_image> 403 <end_of_image> 404
<image_soft_token>; a "<bos> $A" post-processor (unused: mlx-vlm tokenizes Gemma 3 prompts
without special tokens, the template writes <bos>); Gemma 3's chat template; eos [1, 401]."""
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vlm_fam_common as C  # noqa: E402

SEED = 20261208
FRONT = ["<pad>", "<eos>", "<bos>", "<unk>"]
BACK = ["<start_of_turn>", "<end_of_turn>", "<start_of_image>", "<end_of_image>", "<image_soft_token>"]
N_BASE = 400
CASES = [
    {"images": ["tiny_grey.png"], "prompt": "Describe this image."},
    {"images": ["gradient.png"], "prompt": "What shapes are in this picture?"},
    {"images": ["portrait_exif6.jpg"], "prompt": "Describe this image."},
    {"images": ["rgba.png", "portrait_exif6.jpg"], "prompt": "Compare these two images."},
]
R255 = 1 / 255


def config(vocab):
    return {
        "architectures": ["Gemma3ForConditionalGeneration"],
        "boi_token_index": 402,
        "eoi_token_index": 403,
        "eos_token_id": [1, 401],
        "image_token_index": 404,
        "initializer_range": 0.02,
        "mm_tokens_per_image": 256,
        "model_type": "gemma3",
        "text_config": {
            "head_dim": 32, "hidden_size": 64, "intermediate_size": 128, "model_type": "gemma3_text",
            "num_attention_heads": 2, "num_hidden_layers": 2, "num_key_value_heads": 1,
            "query_pre_attn_scalar": 32, "rms_norm_eps": 1e-6, "rope_local_base_freq": 10000.0,
            "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "rope_theta": 1000000.0,
            "sliding_window": 128, "sliding_window_pattern": 2, "vocab_size": vocab,
            "max_position_embeddings": 131072,
        },
        "torch_dtype": "float32",
        "vision_config": {
            "hidden_size": 64, "image_size": 448, "intermediate_size": 128, "layer_norm_eps": 1e-6,
            "model_type": "siglip_vision_model", "num_attention_heads": 2, "num_hidden_layers": 2,
            "patch_size": 14, "vision_use_head": False,
        },
    }


def preprocessor():
    return {"do_convert_rgb": None, "do_normalize": True, "do_pan_and_scan": None, "do_rescale": True,
            "do_resize": True, "image_mean": [0.5, 0.5, 0.5], "image_processor_type": "Gemma3ImageProcessor",
            "image_seq_length": 256, "image_std": [0.5, 0.5, 0.5], "pan_and_scan_max_num_crops": None,
            "pan_and_scan_min_crop_size": None, "pan_and_scan_min_ratio_to_activate": None,
            "processor_class": "Gemma3Processor", "resample": 2, "rescale_factor": R255,
            "size": {"height": 448, "width": 448}}


def vision(model, pv):
    out, _, _ = model.vision_tower(pv.transpose(0, 2, 3, 1), output_hidden_states=True)
    return out


PAS = {"do_pan_and_scan": True, "pan_and_scan_min_crop_size": 256, "pan_and_scan_max_num_crops": 4,
       "pan_and_scan_min_ratio_to_activate": 1.2}


def pan_and_scan_folder(src, dst):
    """gemma3-tiny-pas: gemma3-tiny's files with pan & scan on (Gemma 3's usual crop settings) in
    both image processor configs; the weights are symlinks to gemma3-tiny's."""
    if os.path.exists(dst):
        shutil.rmtree(dst)
    os.makedirs(dst)
    for f in sorted(os.listdir(src)):
        if f.startswith("goldens"):
            continue
        if f.startswith("model.safetensors"):
            os.symlink(os.path.join("..", os.path.basename(src), f), os.path.join(dst, f))
        else:
            shutil.copy(os.path.join(src, f), os.path.join(dst, f))
    for f, nested in (("preprocessor_config.json", False), ("processor_config.json", True)):
        p = os.path.join(dst, f)
        d = json.load(open(p))
        (d["image_processor"] if nested else d).update(PAS)
        json.dump(d, open(p, "w"), indent=2)


def main():
    os.chdir(C.ROOT)
    tmp = tempfile.mkdtemp(prefix="gen_vlm_gemma3_")
    try:
        tok = C.build_tokenizer(FRONT, BACK, N_BASE, bos="<bos>")
        vocab = tok.get_vocab_size()
        cfg = config(vocab)
        model = C.make_mlx_model(cfg)
        weights = C.random_weights(model, SEED, embed_std=0.02)
        del model
        hf = os.path.join(tmp, "hf")
        C.write_hf_folder(hf, cfg, weights, {
            "preprocessor_config.json": preprocessor(),
            "processor_config.json": {"image_seq_length": 256, "processor_class": "Gemma3Processor"},
            "generation_config.json": {"bos_token_id": 2, "eos_token_id": [1, 401], "pad_token_id": 0},
        })
        tcfg = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<bos>", "eos_token": "<eos>",
                "pad_token": "<pad>", "unk_token": "<unk>", "boi_token": "<start_of_image>",
                "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>",
                "extra_special_tokens": {"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>",
                                         "image_token": "<image_soft_token>"},
                "clean_up_tokenization_spaces": False, "model_max_length": 131072,
                "processor_class": "Gemma3Processor", "tokenizer_class": "PreTrainedTokenizerFast"}
        template = open(os.path.join(C.ROOT, "tests", "data", "templates", "gemma3.jinja")).read()
        C.write_tokenizer_files(hf, tok, FRONT + BACK, tcfg, template)
        names = ["gemma3-tiny", "gemma3-tiny-q4", "gemma3-tiny-q8"]
        paths = [os.path.join(C.DATA, n) for n in names]
        C.convert_folders(hf, [(paths[0], None), (paths[1], 4), (paths[2], 8)])
        doc = {
            "cI.input_ids": "int32 [n_input_ids]",
            "cI.pixel_shape": "int32 [4] = [n_images, 3, 448, 448]",
            "cI.pixel_sum": "float64 [n_images] sum of each image's normalized pixel_values",
            "cI.vision_out": "float32 [n_images, 1024, 64] tower post_layernorm output (c0 of gemma3-tiny only)",
            "cI.features": "float32 [n_image_tokens, 64] the rows scattered at <image_soft_token> (already / sqrt(2048))",
            "cI.logits0": "float32 [vocab] logits at the last prompt position",
            "cI.tokens": "int32 [k] greedy tokens from mlx_vlm.generate, eos excluded",
        }
        for p, n in zip(paths, names):
            C.goldens_for(p, n, CASES, "tests/gen/gen_vlm_gemma3.py", vision if n == names[0] else None, doc)
        pas = os.path.join(C.DATA, "gemma3-tiny-pas")
        pan_and_scan_folder(paths[0], pas)
        doc = dict(doc, **{"cI.pixel_shape": "int32 [4] = [images + crops, 3, 448, 448]",
                           "cI.pixel_sum": "float64 [images + crops] (each image, then its crops)"})
        C.goldens_for(pas, "gemma3-tiny-pas", CASES, "tests/gen/gen_vlm_gemma3.py", None, doc)
        C.check_sizes(paths + [pas])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
