#!/usr/bin/env python3
"""gen_vlm_llava.py - tiny random-weight LLaVA-1.5 (model_type llava, llava-hf layout) folders
made with the real mlx-vlm package, plus goldens for the C port
(tests/data/vlm/llava-tiny{,-q4,-q8}).

    /work/venv-mlxvlm/bin/python tests/gen/gen_vlm_llava.py

Shape: llava-hf/llava-1.5-7b-hf's config (mlx-community/llava-1.5-7b-4bit) with depth and widths
reduced; the CLIP tower keeps image_size 336 and patch 14 (24x24 = 576 patches + the class
token, so the real 576 <image> tokens), with 3 layers so that vision_feature_layer -2 leaves
the last one out; vision_feature_select_strategy "default" (class token dropped).  The text
config is as sparse as the real one (model_type llama, no num_key_value_heads: mlx-vlm's
defaults fill in) plus the reduced sizes.  Processor: CLIPImageProcessor (shortest edge 336,
center crop 336, BICUBIC, CLIP mean/std), LlavaProcessor settings in processor_config.json.
Tokenizer: byte-level BPE, 0 <unk> 1 <s> 2 </s>, BPE to 400, then 400 <image> 401 <pad>,
a "<s> $A" post-processor (mlx-vlm tokenizes LLaVA prompts with special tokens: one <s>);
llava-1.5's chat template (USER: <image>\\n... ASSISTANT:); eos 2.

mlx-vlm 0.7.10 + transformers 5.25 cannot run LLaVA as shipped: LlavaProcessor passes
padding= to the image processor, which transformers refuses; vlm_fam_common.drop_text_kwargs
drops those kwargs before the image processor sees them (what older transformers did)."""
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vlm_fam_common as C  # noqa: E402

SEED = 20261209
FRONT = ["<unk>", "<s>", "</s>"]
BACK = ["<image>", "<pad>"]
N_BASE = 400
CASES = [
    {"images": ["tiny_grey.png"], "prompt": "Describe this image."},
    {"images": ["gradient.png"], "prompt": "What shapes are in this picture?"},
    {"images": ["portrait_exif6.jpg"], "prompt": "Describe this image."},
    {"images": ["rgba.png", "portrait_exif6.jpg"], "prompt": "Compare these two images."},
]
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}"
    "{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\\n' }}{% endfor %}{# Render all text next #}{% if message['role'] != 'assistant' %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}"
    "{% endfor %}{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)


def config(vocab):
    return {
        "architectures": ["LlavaForConditionalGeneration"],
        "ignore_index": -100,
        "image_token_index": 400,
        "model_type": "llava",
        "pad_token_id": 401,
        "projector_hidden_act": "gelu",
        "text_config": {
            "architectures": ["LlamaForCausalLM"], "max_position_embeddings": 4096, "model_type": "llama",
            "rms_norm_eps": 1e-05, "torch_dtype": "float32", "vocab_size": vocab,
            "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 2, "num_hidden_layers": 2,
        },
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "vision_config": {
            "hidden_size": 64, "image_size": 336, "intermediate_size": 128, "model_type": "clip_vision_model",
            "num_attention_heads": 2, "num_hidden_layers": 3, "patch_size": 14, "projection_dim": 64,
            "vocab_size": 32000,
        },
        "vision_feature_layer": -2,
        "vision_feature_select_strategy": "default",
        "vocab_size": vocab,
    }


def preprocessor():
    return {"crop_size": {"height": 336, "width": 336}, "do_center_crop": True, "do_convert_rgb": True,
            "do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": CLIP_MEAN,
            "image_processor_type": "CLIPImageProcessor", "image_std": CLIP_STD, "processor_class": "LlavaProcessor",
            "resample": 3, "rescale_factor": 1 / 255, "size": {"shortest_edge": 336}}


def vision(model, pv):
    *_, hs = model.vision_tower(pv.transpose(0, 2, 3, 1), output_hidden_states=True)
    return hs[-2][:, 1:]


def main():
    os.chdir(C.ROOT)
    tmp = tempfile.mkdtemp(prefix="gen_vlm_llava_")
    try:
        tok = C.build_tokenizer(FRONT, BACK, N_BASE, bos="<s>")
        vocab = tok.get_vocab_size()
        cfg = config(vocab)
        model = C.make_mlx_model(cfg)
        weights = C.random_weights(model, SEED)
        del model
        hf = os.path.join(tmp, "hf")
        C.write_hf_folder(hf, cfg, weights, {
            "preprocessor_config.json": preprocessor(),
            "processor_config.json": {"image_token": "<image>", "num_additional_image_tokens": 1, "patch_size": 14,
                                      "processor_class": "LlavaProcessor",
                                      "vision_feature_select_strategy": "default"},
            "generation_config.json": {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 401},
        })
        tcfg = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
                "pad_token": "<pad>", "unk_token": "<unk>", "image_token": "<image>",
                "extra_special_tokens": {"image_token": "<image>"},
                "clean_up_tokenization_spaces": False, "legacy": False, "model_max_length": 4096,
                "processor_class": "LlavaProcessor", "tokenizer_class": "PreTrainedTokenizerFast"}
        C.write_tokenizer_files(hf, tok, FRONT + BACK, tcfg, TEMPLATE)
        names = ["llava-tiny", "llava-tiny-q4", "llava-tiny-q8"]
        paths = [os.path.join(C.DATA, n) for n in names]
        C.convert_folders(hf, [(paths[0], None), (paths[1], 4), (paths[2], 8)])
        doc = {
            "cI.input_ids": "int32 [n_input_ids]",
            "cI.pixel_shape": "int32 [4] = [n_images, 3, 336, 336]",
            "cI.pixel_sum": "float64 [n_images] sum of each image's normalized pixel_values",
            "cI.vision_out": "float32 [1, 576, 64] hidden_states[-2] without the class token (c0 of llava-tiny only)",
            "cI.features": "float32 [n_image_tokens, 64] the projector rows scattered at <image>",
            "cI.logits0": "float32 [vocab] logits at the last prompt position",
            "cI.tokens": "int32 [k] greedy tokens from mlx_vlm.generate, eos excluded",
        }
        for p, n in zip(paths, names):
            C.goldens_for(p, n, CASES, "tests/gen/gen_vlm_llava.py", vision if n == names[0] else None, doc,
                          patch_processor=C.drop_text_kwargs)
        C.check_sizes(paths)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
