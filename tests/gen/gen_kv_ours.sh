#!/bin/sh
# gen_kv_ours.sh - our KV-state files for every case of tests/data/kv/golden.json, checked
# by mlx-lm: `mlx-kvpack build` writes tests/data/kv/ours/<case>.kv.zst (the case's model,
# prefix ids, max_kv_size, kv_bits / kv_group_size, float32 KV for float32 models and float16
# for 16-bit ones, as mlx-lm keeps them), then gen_kv_goldens.py check-ours loads each one
# with mlx_lm.load_prompt_cache, continues it with the case's suffix and writes
# tests/data/kv/ours/mlx_check.json (test_kvfile checks that the files written today keep the
# headers mlx-lm read, so the check stays valid).
#
# usage: tests/gen/gen_kv_ours.sh [PYTHON]   (from the repository root, after make)
set -eu
PY=${1:-/work/venv-mlx/bin/python}
OUT=tests/data/kv/ours
mkdir -p "$OUT"
jq -c '.cases[]' tests/data/kv/golden.json | while read -r c; do
    name=$(printf "%s\n" "$c" | jq -r .case)
    model=$(printf "%s\n" "$c" | jq -r .model)
    set --
    mk=$(printf "%s\n" "$c" | jq -r '.max_kv_size // empty')
    [ -n "$mk" ] && set -- "$@" --max-kv-size "$mk"
    kb=$(printf "%s\n" "$c" | jq -r '.kv_bits // empty')
    [ -n "$kb" ] && set -- "$@" --kv-bits "$kb" --kv-group-size "$(printf "%s\n" "$c" | jq -r .kv_group_size)"
    printf "%s\n" "$c" | jq -c --arg id "$name" '{id: $id, ids: .prefix}' |
        build/bin/mlx-kvpack build -q -m "$model" -o "$OUT/" "$@" > /dev/null
done
"$PY" tests/gen/gen_kv_goldens.py check-ours "$OUT"
