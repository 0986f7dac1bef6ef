#!/usr/bin/env python3
"""make_synth_tokenizers.py - build small synthetic tokenizer.json files that
exercise components the real tokenizers do not use (trained with HF
`tokenizers` on the test corpus, deterministic):
  synth_wordlevel: WordLevel; NFKC+Lowercase+StripAccents+Strip; Whitespace,
                   Digits(individual), Punctuation; added tokens with
                   lstrip/rstrip/single_word/normalized; BertProcessing.
  synth_metaspace: BPE with Metaspace(prepend_scheme=first), NFD, Replace
                   (regex); added tokens lstrip/rstrip; Metaspace decoder.
  synth_gpt2:      GPT-2/RoBERTa style byte-level BPE (ByteLevel with
                   add_prefix_space and the GPT-2 regex), RobertaProcessing.
Usage: python3 tests/gen/make_synth_tokenizers.py"""
import json
import os
import subprocess
import sys

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data", "tokenizers")


def corpus():
    return [json.loads(l) for l in open(os.path.join(DATA, "corpus.txt"), encoding="utf-8")]


def save(tok, name):
    os.makedirs(os.path.join(DATA, name), exist_ok=True)
    out = os.path.join(DATA, name, "tokenizer.json.zst")
    subprocess.run(["zstd", "-q", "-19", "-f", "-o", out], input=tok.to_str().encode("utf-8"), check=True)
    print(f"wrote {out} ({os.path.getsize(out)} bytes)", file=sys.stderr)


def wordlevel(lines):
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase(), normalizers.StripAccents(),
                                           normalizers.Strip()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.Punctuation()])
    tr = trainers.WordLevelTrainer(vocab_size=3000, special_tokens=["[UNK]", "[CLS]", "[SEP]", "[PAD]"])
    tok.train_from_iterator(lines, tr)
    tok.add_special_tokens([AddedToken("[MASK]", lstrip=True, rstrip=True, normalized=False, special=True),
                            AddedToken("<s>", single_word=True, normalized=False, special=True)])
    tok.add_tokens([AddedToken("hello world", normalized=True), AddedToken("Über", normalized=True, single_word=True),
                    AddedToken("<|im_start|>", rstrip=True, normalized=False)])
    tok.post_processor = processors.BertProcessing(("[SEP]", tok.token_to_id("[SEP]")), ("[CLS]", tok.token_to_id("[CLS]")))
    tok.decoder = decoders.Sequence([decoders.Replace("##", ""), decoders.Strip(" ", 0, 1)])
    return tok


def metaspace(lines):
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=False))
    tok.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.Replace(Regex(r"\d{4,}"), "#")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=True)
    tr = trainers.BpeTrainer(vocab_size=2500, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False)
    tok.train_from_iterator(lines, tr)
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, normalized=False, special=True),
                            AddedToken("<sep>", rstrip=True, normalized=False, special=True)])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> $B:1 </s>:1",
                                                       special_tokens=[("<s>", 1), ("</s>", 2)])
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first", split=True)
    return tok


def gpt2(lines):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    tr = trainers.BpeTrainer(vocab_size=2500, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(lines, tr)
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, normalized=False, special=True)])
    tok.add_tokens([AddedToken(" dog", normalized=True)])
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True, add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    return tok


def main():
    lines = corpus()
    save(wordlevel(lines), "synth_wordlevel")
    save(metaspace(lines), "synth_metaspace")
    save(gpt2(lines), "synth_gpt2")


if __name__ == "__main__":
    main()
