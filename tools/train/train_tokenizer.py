#!/usr/bin/env python3
"""Train the byte-level BPE tokenizer shared by the bundled models (HF `tokenizers`).

Reads train.txt from --data (made by make_corpus.py; documents separated by <|endoftext|>
lines) and writes tokenizer.json, tokenizer_config.json and special_tokens_map.json there.
Special tokens: <|endoftext|> = 0 (document separator, bos, eos, pad), <|im_start|> = 1,
<|im_end|> = 2.  The chat template is ChatML.  Deterministic for the same corpus.
"""
import argparse
import json
import os

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML = ("{% for message in messages %}"
          "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
          "{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def docs(path):
    buf = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.rstrip("\n") == "<|endoftext|>":
                yield "".join(buf).rstrip("\n")
                buf = []
            else:
                buf.append(line)
    if buf:
        yield "".join(buf)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "data"))
    ap.add_argument("--vocab", type=int, default=8192)
    a = ap.parse_args()

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tr = trainers.BpeTrainer(vocab_size=a.vocab, min_frequency=2, special_tokens=SPECIAL,
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(docs(os.path.join(a.data, "train.txt")), trainer=tr)
    tok.save(os.path.join(a.data, "tokenizer.json"))

    added = {str(tok.token_to_id(t)): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                                        "single_word": False, "special": True} for t in SPECIAL}
    cfg = {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "bos_token": "<|endoftext|>",
        "eos_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "chat_template": CHATML,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 1024,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    with open(os.path.join(a.data, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, indent=2, ensure_ascii=False)
        f.write("\n")
    with open(os.path.join(a.data, "special_tokens_map.json"), "w") as f:
        json.dump({"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
                   "additional_special_tokens": ["<|im_start|>", "<|im_end|>"]}, f, indent=2)
        f.write("\n")
    print("vocab", tok.get_vocab_size(), "ids", {t: tok.token_to_id(t) for t in SPECIAL})


if __name__ == "__main__":
    main()
