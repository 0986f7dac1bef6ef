#!/usr/bin/env python3
"""bench/vlm/convert_gguf.py - llama.cpp's convert_hf_to_gguf.py (the llama.cpp of
tools/build-llama-cpp.sh, its own gguf-py) on the random-weight folders of bench/vlm, with
one change: their tokenizer (tests/gen's byte-level BPE with SmolLM2's pre-tokenizer,
Digits(individual) + ByteLevel, trained on a small corpus) has no known pre-tokenizer
hash, so the pre-tokenizer is named "smollm" (SmolVLM's own; GGUF_PRE names another); and its small BPE has no
"\n\n" token, which llama.cpp's SmolVLM image layout looks up (mtmd.cpp: "\n\n"
<fake_token_around_image><global-img> before the overview image; without it
llama-mtmd-cli aborts), so one of its unreachable filler entries (<unused_N>, the last
one) is renamed to it in the GGUF's token list.  The arguments are convert_hf_to_gguf.py's.
Needs a python with torch (TORCH_PY)."""
import os
import runpy
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SRC = os.environ.get("LLAMA_SRC", os.path.join(ROOT, "build-llama-cpp", "llama_cpp_python-0.3.36", "vendor",
                                                "llama.cpp"))
sys.path.insert(0, SRC)
sys.path.insert(1, os.path.join(SRC, "gguf-py"))
import gguf  # noqa: E402
from conversion import base  # noqa: E402

PRE = os.environ.get("GGUF_PRE", "smollm")   # make_qwen.py: qwen2
base.TextModel.get_vocab_base_pre = lambda self, tokenizer: PRE
_add_token_list = gguf.GGUFWriter.add_token_list


def add_token_list(self, tokens):
    tokens = list(tokens)
    if "\u010a\u010a" not in tokens:   # byte-level "\n\n"
        last = max(i for i, t in enumerate(tokens) if str(t).startswith("<unused_"))
        tokens[last] = "\u010a\u010a"
    return _add_token_list(self, tokens)


gguf.GGUFWriter.add_token_list = add_token_list
sys.argv[0] = os.path.join(SRC, "convert_hf_to_gguf.py")
runpy.run_path(sys.argv[0], run_name="__main__")
