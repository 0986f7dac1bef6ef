#!/usr/bin/env python3
"""Assemble the English training corpus for the bundled models from Debian packages.

Sources (install them first: tools/train/README.md lists the apt-get line):
  python3.11-doc   Python documentation, reStructuredText sources (PSF licence)
  linux-doc-6.1    Linux kernel documentation, reStructuredText sources (GPL-2.0)
  perl-doc         Perl manual pages in POD, rendered with pod2text (GPL-1+ or Artistic)
  git-doc          Git manuals and guides, AsciiDoc text (GPL-2.0)
  debian-reference-en  Debian Reference, plain text (GPL-2+)
  gnu-standards    GNU Coding Standards and Maintainers info, plain text (GFDL-1.3+)
  debian-handbook  The Debian Administrator's Handbook, English HTML (GPL-2+ or CC-BY-SA-3.0)
  postgresql-doc-15  PostgreSQL 15 manual, HTML (PostgreSQL licence)
  fortunes         fortune cookie files (BSD-4-clause / public domain collection)
  man-db pages     English manual pages installed here (sections 1, 5, 7, 8), rendered
                   by man(1) (licences of the packages they belong to: all DFSG-free)

Every source file is one document.  Paragraphs are un-wrapped, markup is stripped, and
only prose-looking paragraphs are kept (letters and spaces dominate, at least six words).
Paragraphs are deduplicated across the whole corpus.  Documents whose path hash falls in
the first 2% go to the validation split.  Output (in --out, default tools/train/data):
  train.txt, valid.txt   documents separated by a line holding only <|endoftext|>
  sources.json           per source: documents, paragraphs and bytes kept
"""
import argparse
import glob
import gzip
import hashlib
import html
import json
import os
import re
import subprocess
import sys

SEP = "<|endoftext|>"


def read(path):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


ROLE = re.compile(r":[a-zA-Z:+-]+:`([^`<]*?)(?:\s*<[^>]*>)?`")
LIT = re.compile(r"``([^`]+)``")
LINKREF = re.compile(r"`([^`<]+?)\s*(?:<[^>]*>)?`_{1,2}")
TICK = re.compile(r"`([^`]+)`")
EMPH = re.compile(r"\*\*?([^*\n]+)\*\*?")
UNDERLINE = re.compile(r"^\s*([=\-~^\"'`#*+.:_])\1{2,}\s*$")
SUBST = re.compile(r"\|([A-Za-z0-9_-]+)\|")


def rst_clean(text):
    out = []
    skip_indent = None
    for line in text.split("\n"):
        s = line.strip()
        ind = len(line) - len(line.lstrip())
        if skip_indent is not None:
            if s == "" or ind > skip_indent:
                continue
            skip_indent = None
        if s.startswith(".. "):
            # directives and comments: keep the text of admonitions, drop the rest
            m = re.match(r"\.\. (note|warning|tip|important|seealso|versionadded|versionchanged|deprecated)::\s*(.*)", s)
            if m:
                out.append(m.group(2))
            else:
                skip_indent = ind
                if s.endswith("::") and re.match(r"\.\. (code-block|code|literalinclude|kernel-doc|productionlist|highlight|toctree|image|figure|table|flat-table|csv-table|raw|index|only|include)", s) is None:
                    skip_indent = None  # e.g. ".. function:: f(x)" — description follows indented
                    continue
            continue
        if UNDERLINE.match(line) or re.match(r"^\s*:[a-zA-Z -]+:", line):
            out.append("")
            continue
        if s.endswith("::"):
            # literal block follows: keep the sentence, drop the block
            line = line.rstrip()[:-1] if not s == "::" else ""
            out.append(line)
            out.append("")
            skip_indent = ind
            continue
        line = ROLE.sub(r"\1", line)
        line = LIT.sub(r"\1", line)
        line = LINKREF.sub(r"\1", line)
        line = TICK.sub(r"\1", line)
        line = EMPH.sub(r"\1", line)
        line = SUBST.sub(r"\1", line)
        out.append(line)
    return "\n".join(out)


def asciidoc_clean(text):
    out = []
    in_block = False
    for line in text.split("\n"):
        s = line.strip()
        if re.match(r"^(-{4,}|\.{4,}|={4,}|\+{4,}|\*{4,}|_{4,})$", s):
            if s[0] in "-.+" or len(s) > 4:
                in_block = not in_block if s[0] in "-." else in_block
            out.append("")
            continue
        if in_block:
            continue
        if UNDERLINE.match(line) or s.startswith("[") and s.endswith("]") or s.startswith("include::") or s.startswith("ifdef::") or s.startswith("endif::") or s.startswith("ifndef::"):
            out.append("")
            continue
        line = re.sub(r"link(?:git)?:[^\[]*\[([^\]]*)\]", r"\1", line)
        line = re.sub(r"<<[^,>]*,?([^>]*)>>", r"\1", line)
        line = re.sub(r"'([^'\n]+)'", r"\1", line)
        line = TICK.sub(r"\1", line)
        line = EMPH.sub(r"\1", line)
        out.append(line)
    return "\n".join(out)


def paragraphs(text):
    """Split into paragraphs (blank-line separated), un-wrap, keep prose."""
    for block in re.split(r"\n\s*\n", text):
        lines = [l.strip() for l in block.split("\n") if l.strip()]
        if not lines:
            continue
        p = " ".join(lines)
        p = re.sub(r"\s+", " ", p).strip()
        p = p.lstrip("-*•o ").strip() if re.match(r"^[-*•] ", p) else p
        if len(p) < 40 or len(p) > 4000:
            continue
        words = p.split()
        if len(words) < 6:
            continue
        letters = sum(c.isalpha() or c == " " for c in p)
        if letters / len(p) < 0.86:
            continue
        if sum(w.islower() for w in words) / len(words) < 0.5:
            continue
        if not re.search(r"[.!?:;]\)?\"?$", p) and len(words) < 12:
            continue
        if any(ord(c) > 0x24FF for c in p):  # non-English scripts; Latin, punctuation and symbols pass
            continue
        yield p


def src_python():
    for f in sorted(glob.glob("/usr/share/doc/python3.11/html/_sources/**/*.txt", recursive=True)):
        yield f, rst_clean(read(f))


def src_linux():
    for f in sorted(glob.glob("/usr/share/doc/linux-doc-6.1/html/_sources/**/*.txt", recursive=True)):
        if "/translations/" in f:
            continue
        yield f, rst_clean(read(f))


def src_perl():
    for f in sorted(glob.glob("/usr/share/perl/5.36.0/pod/*.pod")):
        if re.search(r"perl\d+delta|perlhist", f):
            continue
        r = subprocess.run(["pod2text", "-w", "2000", f], capture_output=True)
        yield f, r.stdout.decode("utf-8", "replace")


def src_git():
    for f in sorted(glob.glob("/usr/share/doc/git-doc/**/*.txt", recursive=True)):
        yield f, asciidoc_clean(read(f))


def src_plain():
    for f in ["/usr/share/debian-reference/debian-reference.en.txt.gz",
              "/usr/share/doc/gnu-standards/standards.text.gz",
              "/usr/share/doc/gnu-standards/maintain.text.gz"]:
        if not os.path.exists(f):
            continue
        t = read(f)
        # split the book on chapter headings so that each chapter is one document
        parts = re.split(r"\n(?=\d+(?:\.\d+)? [A-Z][^\n]{2,70}\n[=*\-]{3,})", t)
        for i, p in enumerate(parts):
            yield f"{f}#{i}", p


class _Prose(__import__("html.parser").parser.HTMLParser):
    """Collects the text of <p>, <li>, <dd> and <td> blocks; skips <pre>, scripts and styles."""
    BLOCK = {"p", "li", "dd", "dt", "td", "blockquote", "h1", "h2", "h3"}
    SKIP = {"pre", "script", "style", "code-block"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.paras, self.cur, self.skip = [], [], 0

    def _flush(self):
        t = " ".join("".join(self.cur).split())
        if t:
            self.paras.append(t)
        self.cur = []

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skip += 1
        elif tag in self.BLOCK:
            self._flush()

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCK:
            self._flush()

    def handle_data(self, data):
        if not self.skip:
            self.cur.append(data)


def html_text(path):
    p = _Prose()
    p.feed(read(path))
    p._flush()
    return "\n\n".join(p.paras)


def src_html():
    files = sorted(glob.glob("/usr/share/doc/debian-handbook/html/en-US/*.html"))
    files += sorted(glob.glob("/usr/share/doc/postgresql-doc-15/html/*.html"))
    for f in files:
        yield f, html_text(f)


def src_fortunes():
    skip = {"ascii-art", "art", "ethnic", "drugs"}
    for f in sorted(glob.glob("/usr/share/games/fortunes/*")):
        b = os.path.basename(f)
        if "." in b or b in skip or os.path.isdir(f):
            continue
        t = read(f)
        # each cookie is a paragraph; tabs and quote layout flattened
        cookies = [re.sub(r"\s+", " ", c).strip() for c in t.split("\n%\n")]
        yield f, "\n\n".join(c for c in cookies if c)


def render_man(f):
    env = dict(os.environ, MANWIDTH="2000", MAN_KEEP_FORMATTING="0", LANG="C.UTF-8")
    try:
        r = subprocess.run(["man", "-E", "UTF-8", "-l", f], capture_output=True, env=env, timeout=20)
    except subprocess.TimeoutExpired:
        return f, ""
    t = subprocess.run(["col", "-bx"], input=r.stdout, capture_output=True).stdout
    return f, t.decode("utf-8", "replace")


def src_man(limit):
    from concurrent.futures import ThreadPoolExecutor
    files = []
    for sec in ("1", "5", "7", "8"):
        files += sorted(glob.glob(f"/usr/share/man/man{sec}/*.gz"))
    step = max(1, -(-len(files) // max(1, limit)))  # an even sample of at most `limit` pages
    with ThreadPoolExecutor(2) as ex:
        yield from ex.map(render_man, files[::step] if limit > 0 else [])


SOURCES = {
    "python3.11-doc": lambda a: src_python(),
    "linux-doc-6.1": lambda a: src_linux(),
    "perl-doc": lambda a: src_perl(),
    "git-doc": lambda a: src_git(),
    "debian-reference-en+gnu-standards": lambda a: src_plain(),
    "debian-handbook+postgresql-doc-15": lambda a: src_html(),
    "fortunes": lambda a: src_fortunes(),
    "man-pages": lambda a: src_man(a.man_limit),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "data"))
    ap.add_argument("--man-limit", type=int, default=2000)
    ap.add_argument("--valid-per-mille", type=int, default=20)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    seen = set()
    stats = {}
    with open(os.path.join(a.out, "train.txt"), "w") as ft, open(os.path.join(a.out, "valid.txt"), "w") as fv:
        for name, gen in SOURCES.items():
            st = stats.setdefault(name, {"documents": 0, "paragraphs": 0, "bytes": 0, "valid_documents": 0})
            for path, text in gen(a):
                text = html.unescape(text).replace("\r", "")
                keep = []
                for p in paragraphs(text):
                    key = hashlib.sha1(re.sub(r"\W+", "", p.lower()).encode()).digest()
                    if key in seen:
                        continue
                    seen.add(key)
                    keep.append(p)
                doc = "\n\n".join(keep)
                if len(doc) < 200:
                    continue
                h = int(hashlib.sha1(path.encode()).hexdigest()[:8], 16) % 1000
                valid = h < a.valid_per_mille
                (fv if valid else ft).write(doc + "\n" + SEP + "\n")
                st["documents"] += 1
                st["valid_documents"] += valid
                st["paragraphs"] += len(keep)
                st["bytes"] += len(doc.encode()) + 1
            print(name, st, file=sys.stderr, flush=True)
    with open(os.path.join(a.out, "sources.json"), "w") as f:
        json.dump(stats, f, indent=1)


if __name__ == "__main__":
    main()
