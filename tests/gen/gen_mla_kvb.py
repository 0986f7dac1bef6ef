#!/usr/bin/env python3
"""deepseek_v3 fixtures stored the way checkpoints converted before mlx-lm absorbed kv_b_proj store
them: self_attn.kv_b_proj ([heads * (qk_nope_head_dim + v_head_dim), kv_lora_rank], plain or
quantized) in place of embed_q / unembed_out.  mlx-lm 0.32's sanitize() splits it again when it
loads the folder (dequantize, transpose the key part, quantize both again); mlx-gen must do the
same.  Made from tests/data/models/deepseek_v3-tiny{,-4bit} (tests/gen/gen_llm_fixtures.py):
writes tests/data/models/deepseek_v3-kvb{,-4bit}/ with golden.json from mlx-lm itself.

usage: tests/gen/gen_mla_kvb.py
"""
import json, os, shutil, sys
import mlx.core as mx

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_llm_fixtures as g  # noqa: E402

PAIRS = [("deepseek_v3-tiny", "deepseek_v3-kvb"), ("deepseek_v3-tiny-4bit", "deepseek_v3-kvb-4bit")]


def main():
    for src, dst in PAIRS:
        s, d = os.path.join(g.OUT, src), os.path.join(g.OUT, dst)
        cfg = json.load(open(os.path.join(s, "config.json")))
        q = cfg.get("quantization")
        w = mx.load(os.path.join(s, "model.safetensors"))
        H, nope, vhd = cfg["num_attention_heads"], cfg["qk_nope_head_dim"], cfg["v_head_dim"]
        for l in range(cfg["num_hidden_layers"]):
            p = f"model.layers.{l}.self_attn"
            mats = []
            for name in ("embed_q", "unembed_out"):
                x = w.pop(f"{p}.{name}.weight")
                if q:
                    x = mx.dequantize(x, w.pop(f"{p}.{name}.scales"), w.pop(f"{p}.{name}.biases"),
                                      group_size=q["group_size"], bits=q["bits"])
                mats.append(x)
            wk, wv = mats   # [H, R, nope], [H, vhd, R]
            kvb = mx.concatenate([wk.swapaxes(-1, -2), wv], axis=1).reshape(H * (nope + vhd), -1)
            if q:
                kw, ks, kb = mx.quantize(kvb, group_size=q["group_size"], bits=q["bits"])
                w[f"{p}.kv_b_proj.weight"], w[f"{p}.kv_b_proj.scales"], w[f"{p}.kv_b_proj.biases"] = kw, ks, kb
            else:
                w[f"{p}.kv_b_proj.weight"] = kvb
        if os.path.exists(d):
            shutil.rmtree(d)
        os.makedirs(d)
        mx.save_safetensors(os.path.join(d, "model.safetensors"), w, metadata={"format": "mlx"})
        idx = {"metadata": {"total_size": sum(v.nbytes for v in w.values())},
               "weight_map": {k: "model.safetensors" for k in sorted(w)}}
        json.dump(idx, open(os.path.join(d, "model.safetensors.index.json"), "w"), indent=4)
        shutil.copy(os.path.join(s, "config.json"), d)
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(s, f), d)
        gold = g.golden(d)
        json.dump(gold, open(os.path.join(d, "golden.json"), "w"))
        print(dst, "min margin", round(gold["min_margin"], 4))


if __name__ == "__main__":
    main()
