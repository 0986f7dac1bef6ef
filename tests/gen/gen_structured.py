#!/usr/bin/env python3
"""Cross-check mlx-gen's structured output with Python's jsonschema validator.

    python tests/gen/gen_structured.py [BUILD] [N]

Needs the jsonschema package (pip install jsonschema).  For every schema under
tests/data/structured/*.json, runs N generations (default 100) at temperature 1 with the
bundled model (models/tinydocs-22m-4bit, --batch 8, seeds 0..N-1), then validates every
answer with jsonschema (Draft 2020-12, formats checked) and writes the counts to
tests/data/structured/python_check.json.  The bats test (tests/bats/mlx-gen-structured.bats)
runs the same kind of job in CI and validates in C with the automaton that constrained it;
this script is the independent check, run by hand when the converter changes.
"""
import glob
import json
import os
import subprocess
import sys

import jsonschema

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
build = sys.argv[1] if len(sys.argv) > 1 else "build"
n = int(sys.argv[2]) if len(sys.argv) > 2 else 100
gen = os.path.join(root, build, "bin", "mlx-gen")
model = os.path.join(root, "models", "tinydocs-22m-4bit")
checker = jsonschema.FormatChecker()
summary = {"model": "models/tinydocs-22m-4bit", "records_per_schema": n, "jsonschema": jsonschema.__name__, "schemas": {}}
for path in sorted(glob.glob(os.path.join(root, "tests", "data", "structured", "*.json"))):
    name = os.path.basename(path)[:-5]
    if name == "python_check":
        continue
    schema = json.load(open(path))
    recs = "".join(json.dumps({"id": i, "prompt": "Data:", "max_tokens": 400, "temperature": 1.0, "seed": i,
                               "json_schema": schema}) + "\n" for i in range(n))
    out = subprocess.run([gen, "-m", model, "-q", "-t", "2", "--batch", "8"], input=recs.encode(),
                         capture_output=True, check=False)
    answers = [json.loads(line) for line in out.stdout.decode().splitlines()]
    validator = jsonschema.Draft202012Validator(schema, format_checker=checker)
    ended = valid = 0
    bad = []
    for a in answers:
        if a.get("finish_reason") != "stop":
            continue
        ended += 1
        try:
            validator.validate(json.loads(a["text"]))
            valid += 1
        except (ValueError, jsonschema.ValidationError) as e:
            bad.append({"id": a["id"], "text": a["text"], "why": str(e).splitlines()[0]})
    summary["schemas"][name] = {"answers": len(answers), "ended": ended, "valid": valid, "invalid": bad[:5]}
    print("%-8s answers %d, ended %d, valid %d" % (name, len(answers), ended, valid))
with open(os.path.join(root, "tests", "data", "structured", "python_check.json"), "w") as f:
    json.dump(summary, f, indent=1)
    f.write("\n")
