#!/usr/bin/env python3
"""gen_unicode_tables.py - write lib/text/unicode_hf_tables.h: the Unicode
properties Hugging Face `tokenizers` consults, taken from `tokenizers` itself
by probing every code point U+0000..U+10FFFF through its Python API, so that
lib/text/tokenizer uses the Unicode versions `tokenizers` was built with rather
than the system's (utf8proc, PCRE2).

`tokenizers` 0.23.3 takes its Unicode data from four places, each of its own
Unicode version (identified below by comparing the probed sets with the
DerivedAge of unicodedataplus, the version printed and written to the header):
  unicode_categories 0.1.1  (Unicode 8.0): is_punctuation (BertPreTokenizer,
      Punctuation), is_other = Cc|Cf|Co|Cs (BertNormalizer clean_text),
      is_mark_nonspacing (BertNormalizer strip_accents, after NFD);
  unicode-normalization-alignments 0.1.12 (Unicode 9.0): NFD/NFC/NFKD/NFKC and
      is_combining_mark = M (StripAccents);
  Rust's core library of the compiler that built the wheel (Unicode 17.0):
      char::is_whitespace, is_numeric (Digits), to_lowercase (Lowercase,
      BertNormalizer); the `regex` crate (Unicode 16.0): \\w of the Whitespace
      pre-tokenizer and of single_word added tokens;
  Oniguruma through the `onig` crate (Unicode 16.0): the \\p{..}, \\d, \\w
      classes of Split / Replace regexes and the ByteLevel regex;
  unicode-segmentation 1.13.3 (Unicode 17.0): the grapheme clusters the
      Precompiled (SentencePiece charsmap) normalizer looks up whole.

Tables written (sorted inclusive code-point ranges unless said otherwise):
  HF_PUNCT     ASCII punctuation or P* (Unicode 8.0)
  HF_OTHER     Cc|Cf|Co|Cs (Unicode 8.0)
  HF_MN_STRIP  code points BertNormalizer(strip_accents) removes whole: Mn
               (Unicode 8.0) after NFD
  HF_MARK      M (Unicode 9.0)
  HF_NUMERIC   N* (Rust char::is_numeric)
  HF_WORD      regex-crate \\w
  HF_ASSIGNED9 code points assigned in Unicode 9.0: the others are inert in the
               normalization forms (no decomposition, combining class 0, no
               composition); verified against `tokenizers` here
  HF_GRAPHEME_EXTEND  code points up to U+FFFF a grapheme cluster extends over
               (Extend, SpacingMark, ZWJ), as far as the Precompiled normalizer
               shows it (after U+00AA, which tests/data/tokenizers/xlmr's
               charsmap maps, clusters are replaced whole); not those the
               charsmap maps themselves
  HF_LOWER     Rust to_lowercase as runs {first, last, delta, stride} (U+0130,
               the one mapping to two characters, is left to the caller)
  HF_RE_*      per regex class: the code points Oniguruma's class has beyond
               PCRE2's \\p{..} of the linked libpcre2-8 (its Unicode version is
               recorded); lib/text adds them to the pattern before compiling.
Needs: tokenizers (the pinned version), unicodedataplus (DerivedAge; e.g.
`pip install --target DIR unicodedataplus==16.0.0.post1` and PYTHONPATH=DIR),
libpcre2-8 (ctypes).
Usage: python3 tests/gen/gen_unicode_tables.py [OUT.h]"""
import base64
import bisect
import ctypes
import ctypes.util
import json
import os
import subprocess
import sys

import tokenizers
from tokenizers import Regex
from tokenizers import normalizers as N
from tokenizers import pre_tokenizers as P

try:
    import unicodedataplus as ucd
except ImportError:
    sys.exit("gen_unicode_tables.py: needs unicodedataplus (DerivedAge): "
             "pip install --target DIR unicodedataplus==16.0.0.post1; PYTHONPATH=DIR")

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "lib", "text", "unicode_hf_tables.h")
TOKENIZERS_VERSION = "0.23.3"
ALL = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
ASCII_PUNCT = set(map(ord, "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"))
WS = {9, 10, 11, 12, 13, 32, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000} | set(range(0x2000, 0x200B))
# the regex classes rewritten for PCRE2: the general categories (not C / Cn / Co / Cs:
# PCRE2's would lose members), \d and \w
RE_CLASSES = ["L", "Lu", "Ll", "Lt", "Lm", "Lo", "M", "Mn", "Mc", "Me", "N", "Nd", "Nl", "No",
              "P", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "S", "Sm", "Sc", "Sk", "So",
              "Z", "Zs", "Zl", "Zp", "Cc", "Cf"]


def re_base(k):
    """the PCRE2 class items a class is rewritten from (its members are a subset
    of Oniguruma's class, bar the HF_RE_DEL_ ones)"""
    return {"d": "\\p{Nd}", "w": "\\p{L}\\p{M}\\p{Nd}\\p{Pc}"}.get(k, "\\p{%s}" % k)


# ------------------------------------------------------------------ probes
def norm_inner(nz, wrap="x"):
    out = {}
    for c in ALL:
        r = nz.normalize_str(wrap + chr(c) + wrap)
        assert r.startswith(wrap) and r.endswith(wrap), (hex(c), r)
        out[c] = r[len(wrap):len(r) - len(wrap)]
    return out


def split_set(pt):
    """code points c for which pre-tokenizer pt splits "x" + c + "x" at all"""
    return {c for c in ALL if len(pt.pre_tokenize_str("x" + chr(c) + "x")) != 1}


def onig_class(rx):
    """code points Oniguruma's rx (one character) matches: a Split that removes
    the matches over long runs of code points, the kept offsets are the rest"""
    res = set()
    split = P.Split(Regex(rx), behavior="removed")
    for i in range(0, len(ALL), 65536):
        part = ALL[i:i + 65536]
        kept = set()
        for _t, (a, b) in split.pre_tokenize_str("".join(map(chr, part))):
            kept.update(range(a, b))
        res.update(part[k] for k in range(len(part)) if k not in kept)
    return res


class Pcre2:
    """the linked PCRE2's view of a class (UTF + UCP, as lib/text compiles)"""

    def __init__(self):
        self.lib = ctypes.CDLL(ctypes.util.find_library("pcre2-8") or "libpcre2-8.so.0")
        L = self.lib
        L.pcre2_compile_8.restype = ctypes.c_void_p
        L.pcre2_compile_8.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint32,
                                      ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_size_t), ctypes.c_void_p]
        L.pcre2_match_data_create_8.restype = ctypes.c_void_p
        L.pcre2_match_data_create_8.argtypes = [ctypes.c_uint32, ctypes.c_void_p]
        L.pcre2_match_8.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t,
                                    ctypes.c_uint32, ctypes.c_void_p, ctypes.c_void_p]
        L.pcre2_config_8.argtypes = [ctypes.c_uint32, ctypes.c_void_p]
        L.pcre2_get_ovector_pointer_8.restype = ctypes.POINTER(ctypes.c_size_t)
        L.pcre2_get_ovector_pointer_8.argtypes = [ctypes.c_void_p]
        self.md = L.pcre2_match_data_create_8(4, None)

    def config_str(self, what):
        buf = ctypes.create_string_buffer(64)
        self.lib.pcre2_config_8(what, buf)
        return buf.value.decode()

    def version(self):
        return self.config_str(11), self.config_str(10)  # PCRE2_CONFIG_VERSION, _UNICODE_VERSION

    def members(self, rx):
        """runs of (?:rx)+ over the string of every code point, mapped back from byte offsets"""
        ec, eo = ctypes.c_int(), ctypes.c_size_t()
        pat = ("(?:" + rx + ")+").encode()
        code = self.lib.pcre2_compile_8(pat, len(pat), 0x00080000 | 0x00020000, ctypes.byref(ec), ctypes.byref(eo),
                                        None)
        assert code, rx
        if not hasattr(self, "text"):
            self.text = "".join(map(chr, ALL)).encode("utf-8")
            self.starts = []
            k = 0
            for c in ALL:
                self.starts.append(k)
                k += 1 if c < 0x80 else 2 if c < 0x800 else 3 if c < 0x10000 else 4
        ov = self.lib.pcre2_get_ovector_pointer_8(self.md)
        res, pos = set(), 0
        while self.lib.pcre2_match_8(code, self.text, len(self.text), pos, 0, self.md, None) >= 0:
            a, b = ov[0], ov[1]
            res.update(ALL[bisect.bisect_left(self.starts, a):bisect.bisect_left(self.starts, b)])
            pos = b
        return res


# ------------------------------------------------------- version identification
def ucd_tables():
    """age and general category of every code point from unicodedataplus; where
    unicodedata2 of a later Unicode version is importable too, the code points
    it adds get its version as their age and its category"""
    ages, cats = {}, {}
    try:
        import unicodedata2 as later
    except ImportError:
        later = None
    lv = tuple(map(int, later.unidata_version.split(".")[:2])) if later else None
    if later and lv <= tuple(map(int, ucd.unidata_version.split(".")[:2])):
        later = None
    for c in range(0x110000):
        a = ucd.age(chr(c))
        if a and a[0].isdigit():
            ages[c] = tuple(map(int, a.split(".")[:2]))
            cats[c] = ucd.category(chr(c))
        elif later and later.category(chr(c)) != "Cn":
            ages[c] = lv
            cats[c] = later.category(chr(c))
        else:
            ages[c] = (99, 0)
            cats[c] = "Cn"
    return ages, cats, ucd.unidata_version + (" + unicodedata2 %s" % later.unidata_version if later else "")


AGE, CAT, UCD_VERSION = ucd_tables()


def age(c):
    return AGE[c]


def identify(name, got, pred, versions):
    """the Unicode version v whose (current data, assigned by v) set is nearest
    to got (the latest of equals); prints it, the earliest version as near, and
    the code points that differ (mostly later category changes)"""
    res = []
    for v in versions:
        want = {c for c in ALL if age(c) <= v and pred(c)}
        res.append((v, sorted(want ^ got)))
    m = min(len(d) for _v, d in res)
    ties = [v for v, d in res if len(d) == m]
    d = [d for v, d in res if v == ties[-1]][0]
    vs = "%d.%d" % ties[-1]
    print("  %-12s Unicode %s%s (%d code points; %d differ from it: %s)"
          % (name, vs, " (as near: %d.%d)" % ties[0] if len(ties) > 1 else "", len(got), len(d),
             " ".join("U+%04X" % c for c in d[:8])), file=sys.stderr)
    return vs


def cat(c):
    return CAT[c]


# ------------------------------------------------------------------ output
def ranges(s):
    r = []
    for c in sorted(s):
        if r and r[-1][1] == c - 1:
            r[-1][1] = c
        else:
            r.append([c, c])
    return r


def emit_ranges(out, name, s, comment):
    r = ranges(s)
    out.append("/* %s: %d code points */" % (comment, len(s)))
    out.append("static const tk_urange %s[%d] = {" % (name, max(len(r), 1)))
    line = "   "
    for a, b in r:
        item = " {0x%X, 0x%X}," % (a, b)
        if len(line) + len(item) > 110:
            out.append(line)
            line = "   "
        line += item
    if not r:
        line += " {1, 0},"
    out.append(line)
    out.append("};")
    return len(r) if r else 0


def lower_runs(m):
    """{c: lower} (single-character mappings) as runs (first, last, delta, stride)"""
    items = sorted((c, l - c) for c, l in m.items())
    runs = []
    i = 0
    while i < len(items):
        c, d = items[i]
        stride, j = 1, i + 1
        if j < len(items) and items[j][1] == d and items[j][0] - c in (1, 2):
            stride = items[j][0] - c
            while j < len(items) and items[j][1] == d and items[j][0] - items[j - 1][0] == stride:
                j += 1
        runs.append((c, items[j - 1][0], d, stride))
        i = j
    return runs


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else OUT
    if tokenizers.__version__ != TOKENIZERS_VERSION:
        sys.exit("gen_unicode_tables.py: tokenizers %s, expected %s" % (tokenizers.__version__, TOKENIZERS_VERSION))
    print("probing tokenizers %s over %d code points" % (tokenizers.__version__, len(ALL)), file=sys.stderr)
    # unicode_categories
    punct = split_set(P.Punctuation())
    clean = norm_inner(N.BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False,
                                        lowercase=False))
    other = {c for c in ALL if clean[c] == ""} - {0xFFFD} | {9, 10, 13}
    assert {c for c in ALL if clean[c] == " "} == (WS - other) | {9, 10, 13}, "BertNormalizer whitespace"
    strip = norm_inner(N.BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True,
                                        lowercase=False))
    mn = {c for c in ALL if strip[c] == ""}
    # unicode-normalization-alignments
    sa = norm_inner(N.StripAccents())
    mark = {c for c in ALL if sa[c] == ""}
    # Rust core and the regex crate
    assert split_set(P.WhitespaceSplit()) == WS, "char::is_whitespace"
    numeric = split_set(P.Digits(individual_digits=True))
    ws_pre = P.Whitespace()
    word = {c for c in ALL if len(ws_pre.pre_tokenize_str("x" + chr(c) + "x")) == 1}
    low = norm_inner(N.Lowercase())
    lower = {c: ord(low[c]) for c in ALL if low[c] != chr(c) and len(low[c]) == 1}
    multi = sorted(c for c in ALL if len(low[c]) != 1)
    assert multi == [0x130] and low[0x130] == "i\u0307", "Lowercase: multi-character mappings %r" % multi
    # unicode-segmentation, through the Precompiled normalizer of tests/data/tokenizers/xlmr
    xlmr = json.loads(subprocess.run(["zstd", "-dc", os.path.join(HERE, "..", "data", "tokenizers", "xlmr",
                                                                   "tokenizer.json.zst")],
                                     check=True, capture_output=True).stdout)
    pcm = [n for n in xlmr["normalizer"]["normalizers"] if n["type"] == "Precompiled"][0]
    pcn = N.Precompiled(base64.b64decode(pcm["precompiled_charsmap"]))
    assert pcn.normalize_str("\u00aa") == "a" and pcn.normalize_str("\u00aa\u0301x") == "ax"
    bmp = [c for c in ALL if 0x80 <= c <= 0xFFFF]
    alone = {c: pcn.normalize_str(chr(c)) for c in bmp}
    grapheme_ext = {c for c in bmp if alone[c] == chr(c) and pcn.normalize_str("\u00aa%sx" % chr(c)) == "ax"}
    chinese = norm_inner(N.BertNormalizer(clean_text=False, handle_chinese_chars=True, strip_accents=False,
                                          lowercase=False))
    cjk = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
           (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]
    assert {c for c in ALL if chinese[c] == " %s " % chr(c)} == {c for a, b in cjk for c in range(a, b + 1)}

    # normalization: every code point not assigned in Unicode 9.0 is inert in tokenizers
    assigned9 = {c for c in range(0x110000) if age(c) <= (9, 0)}
    # each probe: after 'a' (composes as a second?), before U+0301 (as a first?), between a
    # combining class 240 and a class 1 mark (a non-zero class reorders them)
    probe = "a%s\u0301\u0345%s\u0334x"
    rest = [c for c in ALL if c not in assigned9]
    for f, nz in (("NFD", N.NFD()), ("NFKD", N.NFKD()), ("NFC", N.NFC()), ("NFKC", N.NFKC())):
        for i in range(0, len(rest), 8192):
            part = rest[i:i + 8192]
            t = "".join(probe % (chr(c), chr(c)) for c in part)
            if nz.normalize_str(t) != t:
                bad = [c for c in part if nz.normalize_str(probe % (chr(c), chr(c))) != probe % (chr(c), chr(c))]
                sys.exit("gen_unicode_tables.py: %s changes U+%04X, not assigned in Unicode 9.0" % (f, bad[0]))
    # (a composition with a starter other than 'a' before it is left to the sweep goldens)

    # Oniguruma classes against the linked PCRE2's
    pcre = Pcre2()
    pver, puver = pcre.version()
    re_extra, re_less = {}, {}
    onig_sets = {}
    for k in RE_CLASSES + ["d", "w"]:
        rx = "\\%s" % k if k in ("d", "w") else "\\p{%s}" % k
        o = onig_class(rx)
        onig_sets[k] = o
        p = pcre.members("[%s]" % re_base(k))
        re_extra[k] = o - p
        re_less[k] = p - o
    onig_l = onig_sets["L"]

    # the versions
    print("Unicode versions (nearest by DerivedAge of unicodedataplus %s):" % UCD_VERSION, file=sys.stderr)
    olds = [(v, 0) for v in range(6, 12)]
    news = [(14, 0), (15, 0), (15, 1), (16, 0), (17, 0)]
    v_cat = identify("punctuation", punct, lambda c: cat(c)[0] == "P" or c in ASCII_PUNCT, olds)
    identify("other", other, lambda c: cat(c) in ("Cc", "Cf", "Co", "Cs"), olds)
    identify("nonspacing", mn, lambda c: cat(c) == "Mn", olds)
    v_norm = identify("mark", mark, lambda c: cat(c)[0] == "M", olds)
    v_rust = identify("numeric", numeric, lambda c: cat(c)[0] == "N", news)
    v_rx = identify("regex \\w", word, lambda c: cat(c)[0] in "LM" or cat(c) in ("Nd", "Nl", "Pc")
                    or c in (0x200C, 0x200D), news)
    v_seg = identify("graphemes", grapheme_ext,
                     lambda c: 0x80 <= c <= 0xFFFF and (ucd.grapheme_cluster_break(chr(c)) in ("Extend", "SpacingMark",
                                                                                                "ZWJ")
                                                        or age(c) > (16, 0) and cat(c) in ("Mn", "Mc", "Me"))
                     and alone[c] == chr(c), news)
    v_onig = identify("onig \\p{L}", onig_l, lambda c: cat(c)[0] == "L", news)

    out = []
    out.append("/* unicode_hf_tables.h - generated by tests/gen/gen_unicode_tables.py; do not edit.")
    out.append(" * The Unicode properties of Hugging Face tokenizers %s, probed through its" % tokenizers.__version__)
    out.append(" * Python API over every code point:")
    out.append(" *   unicode_categories 0.1.1: Unicode %s (punctuation, other, nonspacing marks)" % v_cat)
    out.append(" *   unicode-normalization-alignments 0.1.12: Unicode %s (normal forms, marks)" % v_norm)
    out.append(" *   Rust core (char::is_numeric, to_lowercase): Unicode %s" % v_rust)
    out.append(" *   regex crate (\\w): Unicode %s" % v_rx)
    out.append(" *   unicode-segmentation 1.13.3 (grapheme clusters): Unicode %s" % v_seg)
    out.append(" *   Oniguruma (\\p{..}, \\d, \\w of Split/Replace regexes): Unicode %s;" % v_onig)
    out.append(" *   additions over PCRE2 %s (Unicode %s) as linked when generated." % (pver, puver))
    out.append(" * Included by unicode_hf.c only. */")
    out.append("")
    out.append("#define TK_HF_TOKENIZERS_VERSION \"%s\"" % tokenizers.__version__)
    out.append("#define TK_HF_PCRE2_UNICODE \"%s\"" % puver)
    out.append("")
    sizes = {}
    sizes["HF_PUNCT"] = emit_ranges(out, "HF_PUNCT", punct, "ASCII punctuation or P*, Unicode %s" % v_cat)
    sizes["HF_OTHER"] = emit_ranges(out, "HF_OTHER", other, "Cc|Cf|Co|Cs, Unicode %s" % v_cat)
    sizes["HF_MN_STRIP"] = emit_ranges(out, "HF_MN_STRIP", mn,
                                       "removed whole by NFD + is_mark_nonspacing (Mn, Unicode %s)" % v_cat)
    sizes["HF_MARK"] = emit_ranges(out, "HF_MARK", mark, "is_combining_mark (M, Unicode %s)" % v_norm)
    sizes["HF_NUMERIC"] = emit_ranges(out, "HF_NUMERIC", numeric, "char::is_numeric, Unicode %s" % v_rust)
    sizes["HF_WORD"] = emit_ranges(out, "HF_WORD", word, "regex crate \\w, Unicode %s" % v_rx)
    sizes["HF_ASSIGNED9"] = emit_ranges(out, "HF_ASSIGNED9", assigned9,
                                        "assigned in Unicode %s: outside, the normal forms leave a code point alone"
                                        % v_norm)
    sizes["HF_GRAPHEME_EXTEND"] = emit_ranges(out, "HF_GRAPHEME_EXTEND", grapheme_ext,
                                              "U+0080..U+FFFF a grapheme cluster extends over (Extend, SpacingMark, "
                                              "ZWJ), Unicode %s" % v_seg)
    runs = lower_runs(lower)
    out.append("/* char::to_lowercase (Unicode %s), %d single-character mappings: c in [first, last]" % (v_rust, len(lower)))
    out.append(" * with (c - first) %% stride == 0 maps to c + delta */")
    out.append("static const tk_ucase HF_LOWER[%d] = {" % len(runs))
    line = "   "
    for a, b, d, s in runs:
        item = " {0x%X, 0x%X, %d, %d}," % (a, b, d, s)
        if len(line) + len(item) > 110:
            out.append(line)
            line = "   "
        line += item
    out.append(line)
    out.append("};")
    for k in RE_CLASSES + ["d", "w"]:
        what = "\\" + k if k in "dw" else "\\p{%s}" % k
        base = "[%s]" % re_base(k)
        emit_ranges(out, "HF_RE_ADD_" + k, re_extra[k], "Oniguruma %s beyond PCRE2 %s" % (what, base))
        if re_less[k]:
            emit_ranges(out, "HF_RE_DEL_" + k, re_less[k], "PCRE2 %s beyond Oniguruma %s" % (base, what))
    out.append("static const tk_uclass HF_RE_CLASSES[%d] = {" % (len(RE_CLASSES) + 2))
    for k in RE_CLASSES + ["d", "w"]:
        na, nd = len(ranges(re_extra[k])), len(ranges(re_less[k]))
        out.append("    {\"%s\", \"%s\", HF_RE_ADD_%s, %d, %s, %d}," % (k, re_base(k).replace("\\", "\\\\"), k, na,
                                                              "HF_RE_DEL_" + k if nd else "NULL", nd))
    out.append("};")
    text = "\n".join(out) + "\n"
    with open(out_path, "w") as f:
        f.write(text)
    print("wrote %s (%d bytes): %s, HF_LOWER %d runs" % (out_path, len(text), ", ".join(
        "%s %d" % kv for kv in sizes.items() if not kv[0].startswith("HF_RE_")), len(runs)), file=sys.stderr)
    print("regex classes, Oniguruma beyond / short of PCRE2: %s" % ", ".join(
        "%s +%d -%d" % (k, len(re_extra[k]), len(re_less[k])) for k in RE_CLASSES + ["d", "w"]
        if re_extra[k] or re_less[k]), file=sys.stderr)


if __name__ == "__main__":
    main()
