#!/usr/bin/env python3
"""make_corpus.py - write tests/data/tokenizers/corpus.txt: a deterministic
(seeded) multilingual/code/odd-Unicode corpus used for tokenizer goldens.
One test case per line, each line a JSON string literal (so cases may hold
newlines, CRs and NULs). Usage: python3 tests/gen/make_corpus.py
       python3 tests/gen/make_corpus.py --stress N SEED OUT   (random stress corpus, not committed)"""
import inspect
import json
import os
import random
import sys

OUT = os.path.join(os.path.dirname(__file__), "..", "data", "tokenizers", "corpus.txt")
rng = random.Random(1234)

base = [
    "Hello, world!", "The quick brown fox jumps over the lazy dog.", "I'm sure you've seen it; they'll go, we'd stay.",
    "Don't DO that! It's JOHN'S car, isn't it?", "naïve café résumé façade coöperate jalapeño piñata",
    "Über straße Größe Äpfel Ölkanne", "São Paulo, Ñandú, ça va? Œuvre, Ærø", "Crème brûlée à la carte",
    "Привет, как дела? Съешь же ещё этих мягких французских булок.", "Ελληνικά: Καλημέρα κόσμε, ΣΊΣΥΦΟΣ σοφός",
    "中文测试：我爱北京天安门。今天天气很好！", "日本語のテキスト、ひらがなとカタカナ、漢字。", "한국어 문장입니다. 안녕하세요!",
    "العربية: مرحبا بالعالم، كيف حالك؟", "हिन्दी: नमस्ते दुनिया, आप कैसे हैं?", "ภาษาไทย: สวัสดีครับ ยินดีต้อนรับ",
    "עברית: שלום עולם", "Tiếng Việt: Xin chào thế giới, tôi là người Việt Nam", "Türkçe: İstanbul ılık ışık",
    "Emoji: 😀😃😄 👍🏽 👩‍👩‍👧‍👦 🏳️‍🌈 ❤️ 🇺🇸🇯🇵 🤷🏻‍♂️", "👨🏿‍💻 codes; 🧑‍🚀 flies; 🐈‍⬛ sleeps",
    "def foo(x):\n    return x * 2", "for (int i = 0; i < n; i++) { sum += a[i]; }",
    "fn main() { println!(\"{}\", 1_000_000u64); }", "SELECT * FROM users WHERE id = 42 AND name LIKE '%bob%';",
    "const f = async (a, b) => { await g(a ?? b); };", "#include <stdio.h>\nint main(void){printf(\"hi\\n\");}",
    "<div class=\"x\">&nbsp;&amp;</div>", "$ ls -la | grep '^d' > /tmp/out.txt 2>&1",
    "https://example.com/path/to/page?query=1&x=%20y#frag", "mailto:someone@example.org ftp://a.b/c",
    "1234567890 12 345 6789 3.14159 -2.5e-10 1,000,000 0x1F 0b1010", "Call 555-1234 or +1 (800) 555-0199.",
    "   leading spaces", "trailing spaces   ", "  both  ", "\ttab\tseparated\tvalues\t", "multiple     spaces",
    "line with \r carriage", "a\r\nb", "\r", " ", "  ", "\t", "x", ".", "...", "?!?!", "''", "\"quoted\"",
    "<|im_start|>user\nhello<|im_end|>", "<s>[INST] hi [/INST]</s>", "[CLS] text [SEP] more [SEP]",
    "<|endoftext|>", "<|im_start", "im_end|>", "<|end", "< s >", "<s", "</s", "[CLS", "CLS]", "<unk>", "<pad>",
    "<bos>", "<eos>", "<mask>", "[MASK]", "[UNK]", "[PAD]", "<|begin_of_text|>", "<|eot_id|>",
    "<start_of_turn>user\nhi<end_of_turn>", "<｜begin▁of▁sentence｜>", "<|startoftext|>", "<|return|>",
    "e\u0301 a\u0300 o\u0308 n\u0303 combining", "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319a\u0324l\u0354go",
    "\ufeffBOM at start", "zero\u200bwidth\u200bspace", "soft\u00adhyphen", "nb\u00a0space", "em\u2003space",
    "ideographic\u3000space", "line\u2028sep", "ﬁ ﬂ ﬀ ligatures", "①②③ ⅫⅣ", "ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３",
    "x² y³ H₂O", "™ © ® ℃ ℉ № ℡", "½ ¼ ¾", "Å Å Å", "한 한", "ｶﾀｶﾅ ﾊﾝｶｸ", "㍿ ㌔ ㍻",
    "\u0000 nul", "control\u0007bell\u001bescape", "private\ue000use", "\U0001F600\U0001F64F", "𝕳𝖊𝖑𝖑𝖔 𝓦𝓸𝓻𝓵𝓭",
    "ǅ ǈ ǋ titlecase", "İstanbul ǰ ß ŉ", "ΣΑΣ σας ς", "ℌℑℜ", "ĲĳĿŀ", "Ⅰ Ⅱ Ⅲ",
    "ok ok ok ok ok ok ok ok ok ok ok ok ok ok ok ok", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "!!!!!!!!!!!!!!!!!!!!!!!!", "----------------------------------------", "============", "\n\n\n",
    "The year 2024 had 366 days; 1999999 is prime? 007", "CamelCaseIdentifierName snake_case_name kebab-case-name",
    "HTTPServerError XMLHttpRequest iPhone eBay McDonald's O'Neil", "ALLCAPS SENTENCE WITH NUMBERS 123ABC",
]

words = ("time person year way day thing man world life hand part child eye woman place work week case point "
         "government company number group problem fact be have do say get make go know take see come think look "
         "want give use find tell ask seem feel try leave call good new first last long great little own other "
         "old right big high different small large next early young important few public bad same able").split()
foreign = ["día", "niño", "ещё", "Москва", "東京", "北京", "서울", "القاهرة", "मुंबई", "กรุงเทพ", "Ζεύς", "Kraków",
           "Zürich", "Ålesund", "Đà Nẵng", "İzmir", "😀", "🚀", "👍🏿", "❤️‍🔥", "🇫🇷", "©", "→", "≠", "∑", "√2"]
punct = [".", ",", "!", "?", ";", ":", "...", " -", " —", "'", "\"", "(", ")", "[", "]", "{", "}"]
code_snips = [
    "x = [i**2 for i in range(10) if i % 2]", "if (a && !b || c) { return -1; }", "let mut v: Vec<u8> = Vec::new();",
    "print(f\"{name!r:>10}\")", "std::vector<std::string> v{\"a\", \"b\"};", "import numpy as np\nnp.zeros((3, 4))",
    "git commit -m \"fix: handle \\\"quotes\\\"\"", "<a href='https://x.y/z?q=1'>link</a>", "key: value\n  - item",
    "{\"json\": [1, 2.5, true, null], \"k\": \"v\"}", "    indented(code)", "\t\tdouble_tab()", "// comment\n/* block */",
    "#!/usr/bin/env bash\nset -euo pipefail", "λx.λy.x y", "func (s *Server) Run(ctx context.Context) error {",
]
specials = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<s>", "</s>", "<unk>", "[CLS]", "[SEP]", "[MASK]",
            "[PAD]", "<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>", "<bos>",
            "<eos>", "<start_of_turn>", "<end_of_turn>", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>",
            "<|startoftext|>", "<|return|>", "<|channel|>", "<|message|>", "<mask>", "<pad>", "<think>", "</think>",
            "<tool_call>", "<|fim_prefix|>"]


def doc_lines():
    out = []
    for mod in (json, os, random, inspect):
        for name, obj in sorted(vars(mod).items()):
            d = getattr(obj, "__doc__", None)
            if isinstance(d, str) and not name.startswith("_"):
                for ln in d.splitlines():
                    ln = ln.rstrip()
                    if 20 < len(ln) < 300:
                        out.append(ln)
    return out


def main():
    lines = list(base)
    lines += code_snips
    lines += specials
    docs = doc_lines()
    rng.shuffle(docs)
    lines += docs[:600]
    # random sentences
    for _ in range(800):
        n = rng.randint(1, 25)
        parts = []
        for _ in range(n):
            r = rng.random()
            if r < 0.65:
                w = rng.choice(words)
                if rng.random() < 0.15:
                    w = w.capitalize()
                if rng.random() < 0.05:
                    w = w.upper()
            elif r < 0.8:
                w = rng.choice(foreign)
            elif r < 0.9:
                w = str(rng.randint(0, 10 ** rng.randint(1, 9)))
            else:
                w = rng.choice(punct)
            parts.append(w)
        sep = rng.choice([" ", " ", " ", "  ", "\t", " \u00a0"])
        s = sep.join(parts)
        if rng.random() < 0.1:
            s = " " * rng.randint(1, 4) + s
        if rng.random() < 0.1:
            s = s + " " * rng.randint(1, 4)
        if rng.random() < 0.05:
            s = s.replace(" ", "\r", 1)
        lines.append(s)
    # special tokens in context
    for _ in range(300):
        a = rng.choice(words + foreign)
        sp = rng.choice(specials)
        b = rng.choice(words)
        forms = [lambda: a + sp + b, lambda: f"{a} {sp} {b}", lambda: sp + a, lambda: a + sp,
                 lambda: sp + "\n" + a, lambda: f" {sp} ", lambda: sp + sp, lambda: f"{a}  {sp}  {b}",
                 lambda: sp[:-1] + b, lambda: sp[1:]]
        lines.append(rng.choice(forms)())
    # mixed snippets and digit runs
    for _ in range(250):
        k = rng.random()
        if k < 0.3:
            lines.append("".join(rng.choice("0123456789") for _ in range(rng.randint(1, 30))))
        elif k < 0.5:
            lines.append(rng.choice(code_snips) + " " + rng.choice(code_snips))
        elif k < 0.7:
            lines.append(" " * rng.randint(0, 8) + rng.choice(words) + "\t" * rng.randint(0, 3) + rng.choice(foreign))
        else:
            cps = [rng.choice([0x41, 0xe9, 0x3b1, 0x416, 0x4e2d, 0x3042, 0xac00, 0x627, 0x915, 0xe01, 0x1f600,
                               0x301, 0x200d, 0xfe0f, 0x20, 0xa, 0x9, 0x2c, 0x2e, 0x30, 0xfb01, 0xff21, 0x2460,
                               0x1f3fb, 0x2764, 0x200b, 0xfeff])
                   + rng.randint(0, 5) for _ in range(rng.randint(1, 20))]
            lines.append("".join(chr(c) for c in cps))
    # random draws from the stress pool (odd whitespace such as U+180E, case-folding traps like U+017F)
    sr = random.Random(5)
    for _ in range(300):
        k = sr.choice([1, 2, 3, 5, 8, 13, 21, 40])
        lines.append("".join(sr.choice(STRESS_POOL) for _ in range(k)))
    for _ in range(200):
        k = sr.choice([1, 2, 3, 5, 8, 13, 21, 40])
        lines.append("".join(sr.choice(STRESS_POOL + STRESS_EXTRA * 3) for _ in range(k)))
    lines += ["a\u180eb", "x \u180e y", "/\u180e@gC", "\u180e", "it\u017fs 'ſ 'S 'K \u212a"]
    # one-line entries only: newline inside an entry is encoded by splitting on a rare separator
    out = []
    for ln in lines:
        out.append(ln)
    # drop anything with a raw '\n' after we have enough; keep '\n' cases by escaping in a JSON corpus
    with open(OUT, "w", encoding="utf-8", newline="") as f:
        for ln in out:
            f.write(json.dumps(ln, ensure_ascii=False) + "\n")
    print(f"wrote {len(out)} lines to {OUT}", file=sys.stderr)


STRESS_POOL = (
    [chr(c) for c in range(0x20, 0x7f)] * 3 +
    list("\t\n\r\x0b\x0c\x85\xa0\u1680\u2000\u2002\u2009\u200a\u2028\u2029\u202f\u205f\u3000\u180e\u200b\u200c\u200d\u2060\ufeff") * 4 +
    list("'sStTmMdDlLvVrReE\u017f\u212a\u2019") * 4 +
    list("éÉàçñøßÆœİıǅǈΣσςΩωЖжЯяЁё中文日本語한국어ひカア\u0301\u0308\u0327\u093f\u0e31\u0e49") +
    list("٠١٢٣٤٥٦٧٨٩०१२३४५६७८९０１２３４５６７８９²³¹½¼ⅠⅡⅫ①②⑩") +
    list("ابتثحخدرزسشصضطظعغفقكلمنهوي्कखगघचछजझञटठडढणतथदधनपफबभमयरलवशषसह") +
    list("กขคงจฉชซญดตถทธนบปผพฟภมยรลวศษสหอฮ่้๊๋ัิีึืุู") +
    list("😀😃👍🏽👩‍👧❤️🇺🇸🏳️‍🌈🤷🏻‍♂️🐈‍⬛") + list("ﬁﬂﬀＡＢＣａｂｃｶﾀｶﾅ㍿㌔™℃№…‥、。「」【】《》“”‘’«»¿¡§¶†‡•※") +
    ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<s>", "</s>", "[CLS]", "[SEP]", "<mask>", "<unk>", "<bos>",
     "<start_of_turn>", "<｜begin▁of▁sentence｜>", "<|begin_of_text|>", "<|return|>", "▁", "▁▁", "  ", "    "]
)


STRESS_EXTRA = (list("\u0345\u0390\u03b0\u1e9e\u0130\u0131\ufb00\u1100\u1161\u11a8\uac00\u0378\U0001faff\uffff\ue000"
                     "\U000e0001\U000e0041\u0600\u061c\u200e\u200f\u202a\u2066\u00ad\u034f\u17b4\u3099\u309a\u0f00"
                     "\u1d400\u2160\u2170\u24b6\u24d0\u1f88\u1fbc\u1e9b\u0587\ufe0f\ufe0e\U0001f1e6\U0001f3fb")
                + ["\u0000", "\x7f", "\x01", "e\u0301\u0301", "\u1100\u1161\u11a8", "<|im_start|> ", " <s> ",
                   "[CLS]x", "<mask> ", " <mask>", "\n\n", "\r\n", "  \n  ", "\t \t"])


def stress(n, seed, out):
    r = random.Random(seed)
    pool = STRESS_POOL + STRESS_EXTRA * 3 if seed % 2 else STRESS_POOL
    with open(out, "w", encoding="utf-8") as f:
        for _ in range(n):
            k = r.choice([1, 2, 3, 5, 8, 13, 21, 40, 80])
            f.write(json.dumps("".join(r.choice(pool) for _ in range(k)), ensure_ascii=False) + "\n")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--stress":
        stress(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    else:
        main()
