#!/usr/bin/env python3
"""gen_vlm_paligemma.py - tiny random-weight PaliGemma (model_type paligemma) folders made with
the real mlx-vlm package, plus goldens for the C port (tests/data/vlm/paligemma-tiny{,-q4,-q8}).

    /work/venv-mlxvlm/bin/python tests/gen/gen_vlm_paligemma.py

Shape: google/paligemma-3b-mix-224's config (mlx-community/paligemma-3b-mix-224-8bit) with depth
and widths reduced; the SigLIP tower keeps image_size 224 and patch 14 (16x16 = the real 256
image tokens).  Text: gemma with hidden_activation gelu_pytorch_tanh, 1 kv head, the top-level
hidden_size equal to the text one (as in the real config); no use_bidirectional_attention
key, so mlx-vlm's default (true) applies: the whole prompt is prefilled in one call without a
mask.  No chat template: mlx-vlm builds "<image>" + prompt, the processor expands it to
"<image>"x256 + "<bos>" + prompt + "\\n".  Tokenizer: byte-level BPE, 0 <pad> 1 <eos> 2 <bos>
3 <unk>, BPE to 400, then 400 <image>; a "<bos> $A" post-processor, which mlx-vlm's
PaliGemmaProcessor turns off (add_bos_token = False).  Single-image cases only (mlx-vlm lists
paligemma as single-image)."""
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vlm_fam_common as C  # noqa: E402

SEED = 20261210
FRONT = ["<pad>", "<eos>", "<bos>", "<unk>"]
BACK = ["<image>"]
N_BASE = 400
CASES = [
    {"images": ["tiny_grey.png"], "prompt": "caption en"},
    {"images": ["gradient.png"], "prompt": "What shapes are in this picture?"},
    {"images": ["portrait_exif6.jpg"], "prompt": "Describe this image."},
    {"images": ["rgba.png"], "prompt": "answer en What is in the image?"},
]


def config(vocab):
    return {
        "architectures": ["PaliGemmaForConditionalGeneration"],
        "bos_token_id": 2,
        "eos_token_id": 1,
        "hidden_size": 64,
        "ignore_index": -100,
        "image_token_index": 400,
        "model_type": "paligemma",
        "pad_token_id": 0,
        "projection_dim": 64,
        "text_config": {
            "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 64, "intermediate_size": 128,
            "model_type": "gemma", "num_attention_heads": 2, "num_hidden_layers": 2, "num_image_tokens": 256,
            "num_key_value_heads": 1, "torch_dtype": "float32", "vocab_size": vocab,
        },
        "torch_dtype": "float32",
        "vision_config": {
            "hidden_size": 64, "image_size": 224, "intermediate_size": 128, "model_type": "siglip_vision_model",
            "num_attention_heads": 2, "num_hidden_layers": 2, "num_image_tokens": 256, "patch_size": 14,
            "projection_dim": 64, "projector_hidden_act": "gelu_fast", "vision_use_head": False,
        },
        "vocab_size": vocab,
    }


def preprocessor():
    return {"do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": [0.5, 0.5, 0.5],
            "image_processor_type": "SiglipImageProcessor", "image_seq_length": 256, "image_std": [0.5, 0.5, 0.5],
            "processor_class": "PaliGemmaProcessor", "resample": 3, "rescale_factor": 1 / 255,
            "size": {"height": 224, "width": 224}}


def vision(model, pv):
    out, _, _ = model.vision_tower(pv.transpose(0, 2, 3, 1), output_hidden_states=True)
    return out[None]


def main():
    os.chdir(C.ROOT)
    tmp = tempfile.mkdtemp(prefix="gen_vlm_paligemma_")
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
            "generation_config.json": {"bos_token_id": 2, "eos_token_id": 1, "pad_token_id": 0},
        })
        tcfg = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<bos>", "eos_token": "<eos>",
                "pad_token": "<pad>", "unk_token": "<unk>", "additional_special_tokens": ["<image>"],
                "clean_up_tokenization_spaces": False, "model_max_length": 1000000000000000019884624838656,
                "processor_class": "PaliGemmaProcessor", "tokenizer_class": "PreTrainedTokenizerFast"}
        C.write_tokenizer_files(hf, tok, FRONT + BACK, tcfg)
        names = ["paligemma-tiny", "paligemma-tiny-q4", "paligemma-tiny-q8"]
        paths = [os.path.join(C.DATA, n) for n in names]
        C.convert_folders(hf, [(paths[0], None), (paths[1], 4), (paths[2], 8)])
        doc = {
            "cI.input_ids": "int32 [n_input_ids]",
            "cI.pixel_shape": "int32 [4] = [1, 3, 224, 224]",
            "cI.pixel_sum": "float64 [1] sum of the image's normalized pixel_values",
            "cI.vision_out": "float32 [1, 256, 64] tower post_layernorm output (c0 of paligemma-tiny only)",
            "cI.features": "float32 [256, 64] the rows at <image> (projector output / sqrt(hidden_size))",
            "cI.logits0": "float32 [vocab] logits at the last prompt position (one bidirectional prefill call)",
            "cI.tokens": "int32 [k] greedy tokens from mlx_vlm.generate, eos excluded",
        }
        for p, n in zip(paths, names):
            C.goldens_for(p, n, CASES, "tests/gen/gen_vlm_paligemma.py", vision if n == names[0] else None, doc)
        C.check_sizes(paths)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
