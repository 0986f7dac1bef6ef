#!/usr/bin/env python3
"""Generate tests/data/safetensors/: valid files written by the reference writers
(mlx.core.save_safetensors and the `safetensors` numpy API), model directories
(sharded with an index, globbed without one), and deliberately broken files listed
in broken/manifest.json with the expected status and a message fragment.

Values are deterministic so the C test recomputes them:
  float kinds: v[i] = (i - 5) * 0.25      signed ints: v[i] = i*3 - 7
  unsigned:    v[i] = (i*3 + 1) mod 2^bits   bool: v[i] = (i % 3 == 0)
Run from the repository root:  python3 tests/gen/gen_safetensors_fixtures.py
"""
import json
import os
import shutil
import struct

import numpy as np
import mlx.core as mx

OUT = "tests/data/safetensors"

SHAPES = {
    "f32": ("float32", [2, 3, 4]), "f16": ("float16", [5]), "bf16": ("bfloat16", [3, 2]),
    "u32": ("uint32", [4, 2]), "u8": ("uint8", [7]), "i8": ("int8", [2, 5]), "i32": ("int32", [3]),
    "i64": ("int64", [2, 2]), "bool": ("bool", [6]), "u16": ("uint16", [3]), "i16": ("int16", [2]),
    "u64": ("uint64", [2]), "scalar": ("float32", []), "empty": ("float32", [0, 3]),
}


def values(kind, n):
    i = np.arange(n, dtype=np.int64)
    if kind.startswith("float") or kind == "bfloat16":
        return (i - 5).astype(np.float64) * 0.25
    if kind == "bool":
        return (i % 3) == 0
    if kind.startswith("int"):
        return i * 3 - 7
    bits = int(kind[4:])
    v = (i * 3 + 1).astype(np.uint64)
    return v if bits == 64 else v % np.uint64(1 << bits)


def np_array(kind, shape):
    n = int(np.prod(shape)) if shape else 1
    v = values(kind, n)
    return np.asarray(v).astype(kind if kind != "bfloat16" else "float32").reshape(shape)


def write_raw(path, header, data=b"", hlen=None):
    h = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h) if hlen is None else hlen))
        f.write(h)
        f.write(data)


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    mx.set_default_device(mx.cpu)

    # 1. every dtype through mlx
    arrs = {}
    for name, (kind, shape) in SHAPES.items():
        a = np_array(kind, shape)
        arrs[name] = mx.array(a).astype(getattr(mx, "bool_" if kind == "bool" else kind))
    mx.save_safetensors(f"{OUT}/mlx_all.safetensors", arrs, metadata={"format": "mlx", "note": "fixture"})
    # no metadata: mlx writes "__metadata__": null
    mx.save_safetensors(f"{OUT}/mlx_nometa.safetensors", {"a": mx.array([1.0, 2.0])})

    # 2. the safetensors numpy writer (no bfloat16 in numpy; adds float64)
    from safetensors.numpy import save_file
    npd = {n: np.ascontiguousarray(np_array(k, s)) for n, (k, s) in SHAPES.items() if k != "bfloat16"}
    npd["f64"] = np_array("float64", [3])
    save_file(npd, f"{OUT}/np_all.safetensors", metadata={"format": "np"})

    # 2b. fp8 dtypes (read as bytes by MLX): hand-written, E4M3 1.0 -448 2^-9, E8M0 2^0 2^3 2^-127
    write_raw(f"{OUT}/fp8.safetensors",
              {"e4m3": {"dtype": "F8_E4M3", "shape": [3], "data_offsets": [0, 3]},
               "e8m0": {"dtype": "F8_E8M0", "shape": [3], "data_offsets": [3, 6]}},
              bytes([0x38, 0xFE, 0x01, 127, 130, 0]))

    # 3. a sharded model dir with an index, and an index-less (globbed) one
    for sub, with_index in (("sharded", True), ("globbed", False)):
        d = f"{OUT}/{sub}"
        os.makedirs(d)
        s1 = {"model.embed.weight": mx.array(np_array("float32", [4, 2])),
              "model.layers.0.w": mx.array(np_array("float16", [3])).astype(mx.float16)}
        s2 = {"model.layers.1.w": mx.array(np_array("int32", [5])),
              "lm_head.weight": mx.array(np_array("float32", [2, 2]))}
        f1, f2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
        mx.save_safetensors(f"{d}/{f1}", s1, metadata={"format": "mlx"})
        mx.save_safetensors(f"{d}/{f2}", s2, metadata={"format": "mlx"})
        if with_index:
            wm = {k: f1 for k in s1}
            wm.update({k: f2 for k in s2})
            with open(f"{d}/model.safetensors.index.json", "w") as f:
                json.dump({"metadata": {"total_size": 0}, "weight_map": dict(sorted(wm.items()))}, f, indent=4)
        else:
            with open(f"{d}/notes.txt", "w") as f:
                f.write("not a weight file\n")

    # 4. broken sharded dirs
    def shard_dir(name, shards, wm):
        d = f"{OUT}/{name}"
        os.makedirs(d)
        for fn, t in shards.items():
            mx.save_safetensors(f"{d}/{fn}", t)
        with open(f"{d}/model.safetensors.index.json", "w") as f:
            json.dump({"weight_map": wm}, f)
    one = mx.array([1.0])
    shard_dir("bad_dup_shards", {"model-1.safetensors": {"a": one, "b": one}, "model-2.safetensors": {"b": one}},
              {"a": "model-1.safetensors", "b": "model-2.safetensors"})
    shard_dir("bad_missing_tensor", {"model-1.safetensors": {"a": one}},
              {"a": "model-1.safetensors", "c": "model-1.safetensors"})
    shard_dir("bad_unsafe_name", {"model-1.safetensors": {"a": one}}, {"a": "../mlx_all.safetensors"})
    shard_dir("bad_missing_file", {"model-1.safetensors": {"a": one}}, {"a": "model-9.safetensors"})

    # 5. broken single files + manifest
    b = f"{OUT}/broken"
    os.makedirs(b)
    ok_t = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
    data8 = struct.pack("<2f", 1.0, 2.0)
    cases = []

    def case(fn, code, msg, header=None, data=data8, hlen=None, raw=None):
        if raw is not None:
            with open(f"{b}/{fn}", "wb") as f:
                f.write(raw)
        else:
            write_raw(f"{b}/{fn}", header, data, hlen)
        cases.append({"file": fn, "code": code, "msg": msg})

    case("short.safetensors", "EFORMAT", "too short", raw=b"\x05\x00\x00")
    case("empty.safetensors", "EFORMAT", "too short", raw=b"")
    case("hdr_huge.safetensors", "EFORMAT", "exceeds the file size", {"a": ok_t}, hlen=1 << 62)
    case("hdr_past_end.safetensors", "EFORMAT", "exceeds the file size", {"a": ok_t}, data=b"", hlen=200)
    case("truncated.safetensors", "EFORMAT", "tensor 'a': data_offsets beyond end of file", {"a": ok_t}, data=data8[:5])
    case("offsets_oob.safetensors", "EFORMAT", "tensor 'b': data_offsets beyond end of file",
         {"a": ok_t, "b": {"dtype": "U8", "shape": [4], "data_offsets": [6, 10]}})
    case("overlap.safetensors", "EFORMAT", "overlaps",
         {"a": ok_t, "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})
    case("bad_dtype.safetensors", "EFORMAT", "tensor 'a': unknown dtype 'F31'",
         {"a": {"dtype": "F31", "shape": [2], "data_offsets": [0, 8]}})
    case("dtype_missing.safetensors", "EFORMAT", "tensor 'a': missing or non-string dtype",
         {"a": {"shape": [2], "data_offsets": [0, 8]}})
    case("shape_mismatch.safetensors", "EFORMAT", "tensor 'a': 8 data bytes but shape and dtype F32 need 12",
         {"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})
    case("shape_negative.safetensors", "EFORMAT", "non-negative",
         {"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})
    case("shape_float.safetensors", "EFORMAT", "non-negative",
         {"a": {"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}})
    case("shape_overflow.safetensors", "EFORMAT", "shape too large",
         {"a": {"dtype": "F32", "shape": [1 << 40, 1 << 40], "data_offsets": [0, 8]}})
    case("ndim9.safetensors", "EFORMAT", "9 dimensions",
         {"a": {"dtype": "U8", "shape": [1] * 9, "data_offsets": [0, 1]}})
    case("begin_gt_end.safetensors", "EFORMAT", "begin > end",
         {"a": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}})
    case("offsets_short.safetensors", "EFORMAT", "data_offsets must be",
         {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0]}})
    case("not_object.safetensors", "EFORMAT", "not a JSON object", b"[1, 2, 3]")
    case("entry_not_object.safetensors", "EFORMAT", "tensor 'a': entry is not an object", {"a": [1]})
    case("bad_json.safetensors", "EFORMAT", "invalid JSON", b'{"a": {"dtype": ')
    case("duplicate.safetensors", "EFORMAT", "duplicate",
         b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}')
    case("meta_not_string.safetensors", "EFORMAT", "__metadata__ value 'n' is not a string",
         {"__metadata__": {"n": 1}, "a": ok_t})
    case("meta_not_object.safetensors", "EFORMAT", "__metadata__ is not an object",
         {"__metadata__": "x", "a": ok_t})
    case("nul_in_name.safetensors", "EFORMAT", "invalid JSON",
         b'{"a\\u0000b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}')
    with open(f"{b}/manifest.json", "w") as f:
        json.dump(cases, f, indent=1)


if __name__ == "__main__":
    main()
