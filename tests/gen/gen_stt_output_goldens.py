#!/usr/bin/env python3
"""Goldens for lib/stt/output.c: hand-built transcribe() results written by
openai-whisper's own writers (whisper.utils WriteTXT/SRT/VTT/TSV/JSON).

Writes tests/data/stt_output/cases.json (the results, with the writer options
of each variant) and <case>[.<variant>].<ext> with the reference bytes.
Run from the repository root: python3 tests/gen/gen_stt_output_goldens.py"""
import io
import json
import os

from whisper.utils import WriteJSON, WriteSRT, WriteTSV, WriteTXT, WriteVTT

OUT = "tests/data/stt_output"


def seg(i, start, end, text, tokens=(), seek=0, temperature=0.0, avg_logprob=-0.25, cr=1.2, nsp=0.01, words=None):
    s = {"id": i, "seek": seek, "start": start, "end": end, "text": text, "tokens": list(tokens),
         "temperature": temperature, "avg_logprob": avg_logprob, "compression_ratio": cr, "no_speech_prob": nsp}
    if words is not None:
        s["words"] = [{"word": w, "start": a, "end": b, "probability": p} for (w, a, b, p) in words]
    return s


def result(segments, language="en"):
    return {"text": "".join(s["text"] for s in segments), "segments": segments, "language": language}


cases = []

cases.append({"name": "basic", "word_timestamps": False, "result": result([
    seg(0, 0.0, 2.5, " Hello world.", [50363, 2425, 995, 13], avg_logprob=-0.25123456789, nsp=0.0123),
    seg(1, 2.5, 5.12, " This is --> a\ttest.  ", [770, 318, 4613], avg_logprob=-1e-05, nsp=3.2e-07, cr=0.1),
    seg(2, 1.0005, 7.0015, "No leading space", [], seek=3000, temperature=0.2, avg_logprob=-1.5,
        cr=12345678901234567.0, nsp=0.5),
    seg(3, 0.0025, 0.0035, "  two  --> arrows -->  ", [1, 2], temperature=1.0, avg_logprob=-3.0, cr=2.0,
        nsp=1e+16),
    seg(4, 9.9995, 10.0005, " x", [87], avg_logprob=-0.1, cr=100.0, nsp=123.456),
])})

cases.append({"name": "unicode", "word_timestamps": False, "result": result([
    seg(0, 0.0, 3.0, "\u3000Größe café naïve\u00a0", [1, 2, 3]),
    seg(1, 3.0, 6.4, " 日本語のテキスト 😀 emoji", [4, 5]),
    seg(2, 6.4, 9.99, ' "quoted" back\\slash \x7f del\u2028sep', [6]),
], language="ja")})

cases.append({"name": "long", "word_timestamps": False, "result": result([
    seg(0, 3599.9995, 3600.0, " Just before the hour.", [1], seek=359900),
    seg(1, 3600.0, 3725.5, " After one hour.", [2], seek=360000),
    seg(2, 7322.123, 7330.0, " Two hours in.", [3], seek=732200),
    seg(3, 360000.5, 360001.25, " A hundred hours.", [4], seek=36000000),
])})

cases.append({"name": "empty", "word_timestamps": False, "result": result([])})

W = [
    seg(0, 0.0, 4.0, " Hello there, my friend.", [1, 2, 3, 4], words=[
        (" Hello", 0.0, 0.52, 0.9), (" there,", 0.52, 1.0, 0.8), (" my", 1.1, 1.3, 0.99), (" friend.", 1.3, 4.0, 0.5)]),
    seg(1, 8.0, 12.5, " After a long pause --> we go on with größere Wörter.", [5, 6], words=[
        (" After", 8.0, 8.4, 0.7), (" a", 8.4, 8.5, 0.6), (" long", 8.5, 8.9, 0.91), (" pause", 8.9, 9.3, 0.92),
        (" -->", 9.3, 9.4, 0.1), (" we", 9.4, 9.6, 0.3), (" go", 9.6, 9.8, 0.2), (" on", 9.8, 10.0, 0.4),
        (" with", 10.0, 10.2, 0.5), (" größere", 10.2, 11.0, 0.55), (" Wörter.", 11.0, 12.5, 0.66)]),
    seg(2, 12.5, 12.5, "", [], words=[]),
    seg(3, 16.0, 18.0, " 日本語 end", [7], words=[(" 日本語", 16.0, 17.0, 0.25), (" end", 17.0, 18.0, 1.0)]),
]
cases.append({"name": "words", "word_timestamps": True, "result": result(W), "variants": [
    {"tag": "hl", "opts": {"highlight_words": True}},
    {"tag": "w12c2", "opts": {"max_line_width": 12, "max_line_count": 2}},
    {"tag": "w16", "opts": {"max_line_width": 16}},
    {"tag": "w10c1", "opts": {"max_line_width": 10, "max_line_count": 1}},
    {"tag": "wpl2", "opts": {"max_words_per_line": 2}},
    {"tag": "wpl3hl", "opts": {"max_words_per_line": 3, "highlight_words": True}},
    {"tag": "w20c3hl", "opts": {"max_line_width": 20, "max_line_count": 3, "highlight_words": True}},
]})

cases.append({"name": "cleared", "word_timestamps": False, "result": result([
    seg(0, 0.0, 2.0, " Something.", [1]),
    seg(1, 2.0, 2.0, "", [], words=[]),
    seg(2, 2.0, 4.0, " Else.", [2]),
])})

cases.append({"name": "allcleared", "word_timestamps": False, "result": result([
    seg(0, 0.0, 2.0, "", [], words=[]),
    seg(1, 2.0, 2.0, "", [], words=[]),
])})

WRITERS = {"txt": WriteTXT, "srt": WriteSRT, "vtt": WriteVTT, "tsv": WriteTSV, "json": WriteJSON}


def render(cls, res, opts):
    f = io.StringIO()
    cls(OUT).write_result(res, file=f, **opts)
    return f.getvalue().encode("utf-8")


os.makedirs(OUT, exist_ok=True)
for c in cases:
    c.setdefault("variants", [])
    for ext, cls in WRITERS.items():
        with open(f"{OUT}/{c['name']}.{ext}", "wb") as f:
            f.write(render(cls, c["result"], {}))
    for v in c["variants"]:
        for ext in ("srt", "vtt"):
            with open(f"{OUT}/{c['name']}.{v['tag']}.{ext}", "wb") as f:
                f.write(render(WRITERS[ext], c["result"], v["opts"]))
with open(f"{OUT}/cases.json", "w", encoding="utf-8") as f:
    json.dump(cases, f, ensure_ascii=False, indent=1)
print(f"{len(cases)} cases written to {OUT}")
