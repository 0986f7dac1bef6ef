#!/usr/bin/env python3
"""Goldens for lib/text/g2p: kokoro-onnx's phonemes and batches for tests/data/g2p/corpus.txt.

Run in a virtual environment of its own with kokoro-onnx 0.6.1 (it brings phonemizer and
espeakng-loader):

    python3 -m venv /work/venv-tts && /work/venv-tts/bin/pip install kokoro-onnx==0.6.1
    /work/venv-tts/bin/python tests/gen/gen_g2p_goldens.py

kokoro-onnx's own espeak-ng (espeakng-loader) is 1.52; the C library links Debian's
libespeak-ng 1.51, whose dictionaries differ, so the goldens are made with kokoro-onnx's
Tokenizer pointed at the system library and its data folder (EspeakConfig).  With
--bundled the script only reports how many corpus lines the bundled 1.52 phonemizes the
same way (nothing is written).

Output tests/data/g2p/golden.json:
  phonemes[lang][i]  Tokenizer.phonemize(corpus line i, lang), lang en-us and en-gb
  cases[]            {lang, text, phonemes}: edge cases and the other Kokoro languages,
                     phonemized after the corpus of the same language
  splits[]           {lang, text, phonemes, max, chunks}: kokoro-onnx's _prepare batching
                     (" ".join(phonemes.split()), chunker.split_phonemes)
"""
import json
import os
import sys
from importlib.metadata import version

from kokoro_onnx.chunker import split_phonemes
from kokoro_onnx.config import EspeakConfig
from kokoro_onnx.tokenizer import Tokenizer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DATA = os.path.join(ROOT, "tests", "data", "g2p")
SYS_LIB = "/usr/lib/x86_64-linux-gnu/libespeak-ng.so.1"
SYS_DATA = "/usr/lib/x86_64-linux-gnu/espeak-ng-data"
LANGS = ["en-us", "en-gb"]

EDGE = [
    "", " ", "\n\n", ".", "...", "?!", "—", "\"\"", "()", ", . ;", "«»",
    "Hello", "hello.", ".hello", "(a) (b)", "one\ntwo", "one.\n\ntwo!", "  \n  x  \n ",
    "3.5", "1,000,000", "a,b 1,000", "It costs 3.5 dollars.", "x . y , z",
    "\u00a0nbsp\u00a0and\u2003em space\u3000", "tab\tand\vform\ffeed",
    "Zero\u0000byte", "\u2028line sep\u2029para sep", "ＦＵＬＬＷＩＤＴＨ ｔｅｘｔ",
    "12345678901234567890", "x" * 600, "word " * 120,
]
OTHER = {
    "es": ["Hola, ¿cómo estás? Tengo 25 años.", "El precio es de 3,50 euros."],
    "fr-fr": ["Bonjour, comment ça va ? J'ai 25 ans.", "Le prix est de 3,50 euros."],
    "hi": ["नमस्ते, आप कैसे हैं?", "मेरा नाम राम है।"],
    "it": ["Ciao, come stai? Ho 25 anni.", "Il prezzo è di 3,50 euro."],
    "pt-br": ["Olá, tudo bem? Tenho 25 anos.", "O preço é 3,50 reais."],
    "ja": ["こんにちは、元気ですか？"],
    "cmn": ["你好，你好吗？"],
}


def corpus():
    with open(os.path.join(DATA, "corpus.txt"), encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def long_texts(lines):
    """Paragraphs well over 510 phonemes: sentences, clause-only, one endless word."""
    para = " ".join(lines[:60])
    clauses = ", ".join(l.rstrip(".!?") for l in lines[100:140]) + "."
    spaces = " ".join(l.rstrip(".!?,;:") for l in lines[160:200])
    lines_text = "\n".join(lines[200:240])
    return [para, clauses, spaces, lines_text, "supercalifragilistic" * 40]


def main():
    bundled = "--bundled" in sys.argv
    tok = Tokenizer() if bundled else Tokenizer(EspeakConfig(lib_path=SYS_LIB, data_path=SYS_DATA))
    lines = corpus()
    if bundled:
        with open(os.path.join(DATA, "golden.json"), encoding="utf-8") as f:
            gold = json.load(f)
        for lang in LANGS:
            same = sum(tok.phonemize(t, lang) == g for t, g in zip(lines, gold["phonemes"][lang]))
            print(f"{lang}: {same} of {len(lines)} lines as with Debian's espeak-ng 1.51")
        return
    out = {
        "about": "kokoro-onnx %s Tokenizer.phonemize (phonemizer %s) on Debian libespeak-ng 1.51 "
                 "(%s, data %s); made by tests/gen/gen_g2p_goldens.py"
                 % (version("kokoro-onnx"), version("phonemizer"), SYS_LIB, SYS_DATA),
        "phonemes": {}, "cases": [], "splits": [],
    }
    for lang in LANGS:
        out["phonemes"][lang] = [tok.phonemize(t, lang) for t in lines]
        for t in EDGE:
            out["cases"].append({"lang": lang, "text": t, "phonemes": tok.phonemize(t, lang)})
        for t in long_texts(lines):
            ph = tok.phonemize(t, lang)
            chunks = split_phonemes(" ".join(ph.split()), 510)
            out["splits"].append({"lang": lang, "text": t, "phonemes": ph, "max": 510, "chunks": chunks})
    for lang, texts in OTHER.items():
        for t in texts:
            out["cases"].append({"lang": lang, "text": t, "phonemes": tok.phonemize(t, lang)})
    # the batching alone, on strings made for it
    synth = [
        ("a. b, c d", 3), ("a. b, c d", 4), ("aaaa bbbb. cccc, dddd eeee", 9),
        ("x" * 25, 10), ("one two three four five six", 7), ("  spaced   out  ", 5),
        ("é" * 7 + ". " + "ü" * 7, 8), ("…" * 3 + " ab", 3), ("", 5), ("   ", 5),
    ]
    for text, mx in synth:
        out["splits"].append({"lang": None, "text": None, "phonemes": text, "max": mx,
                              "chunks": split_phonemes(" ".join(text.split()), mx)})
    with open(os.path.join(DATA, "golden.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=0)
        f.write("\n")
    print(f"wrote {len(lines)} lines x {len(LANGS)} languages, {len(out['cases'])} cases, "
          f"{len(out['splits'])} splits")


if __name__ == "__main__":
    main()
