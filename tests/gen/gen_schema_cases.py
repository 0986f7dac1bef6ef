#!/usr/bin/env python3
"""Cases for tests/unit/test_json_schema.c: JSON Schemas and regular expressions with
documents / strings labelled valid or not by the Python reference (jsonschema, re).

    python3 -m venv /work/venv-schema && /work/venv-schema/bin/pip install 'jsonschema[format-nongpl]'
    /work/venv-schema/bin/python tests/gen/gen_schema_cases.py

writes tests/data/schema/cases.json and tests/data/schema/regex_cases.json.

Documents are hand-written plus generated: random instances drawn from each schema,
then mutations of them (a member dropped, a value of another type, an extra member, a
string edited, an array grown or cut).  Each is labelled by jsonschema's Draft 2020-12
validator with its FormatChecker, under the converter's documented reading:
  - an object schema with "properties" and no "additionalProperties" is read with
    "additionalProperties": false (applied here before validating);
  - "pattern" is ECMA-262's: '$' is the end of the string (Python's '$' also matches
    before a final newline) and \\d \\w \\s are ASCII (re.ASCII);
  - "email" is the conservative form EMAIL_RE below (jsonschema only asks for '@');
  - a case may give a "reference" schema: the plain-JSON-Schema reading the converter
    gives (used for allOf merges of object parts, where the strict default above is
    applied after merging).
Documents are written compactly (json.dumps separators "," ":", raw UTF-8) in the
converter's member order (required properties in schema order, then optional ones,
then additional ones); a few are pretty-printed (indent 2).  Hand-written texts marked
layout=False are valid JSON the grammar does not produce (other member order, "1.0"
for an integer, whitespace outside the allowance): the test expects no match there.

Regexes: strings drawn from each pattern (a small sampler over Python's parse tree)
and mutations, labelled by re.fullmatch(pattern, s, re.ASCII).
"""
import copy
import json
import os
import random
import re
import re._constants as C
import re._parser as P

import jsonschema
from jsonschema import Draft202012Validator

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "data", "schema")
rng = random.Random(20261207)

# ---------------------------------------------------------------- regex sampling
PRINTABLE = [chr(c) for c in range(0x20, 0x7F)] + ["é", "ß", "中", "\n", "\t", "😀"]
CATS = {
    C.CATEGORY_DIGIT: lambda c: c.isascii() and c.isdigit(),
    C.CATEGORY_NOT_DIGIT: lambda c: not (c.isascii() and c.isdigit()),
    C.CATEGORY_WORD: lambda c: c.isascii() and (c.isalnum() or c == "_"),
    C.CATEGORY_NOT_WORD: lambda c: not (c.isascii() and (c.isalnum() or c == "_")),
    C.CATEGORY_SPACE: lambda c: c in " \t\n\r\f\v",
    C.CATEGORY_NOT_SPACE: lambda c: c not in " \t\n\r\f\v",
}


def in_set(items, ch):
    neg = False
    hit = False
    for op, av in items:
        if op == C.NEGATE:
            neg = True
        elif op == C.LITERAL:
            hit |= ord(ch) == av
        elif op == C.RANGE:
            hit |= av[0] <= ord(ch) <= av[1]
        elif op == C.CATEGORY:
            hit |= CATS[av](ch)
    return hit != neg


def sample_tree(tree, out, budget):
    for op, av in tree:
        if op == C.LITERAL:
            out.append(chr(av))
        elif op == C.NOT_LITERAL:
            out.append(rng.choice([c for c in PRINTABLE if ord(c) != av]))
        elif op == C.ANY:
            out.append(rng.choice([c for c in PRINTABLE if c != "\n"]))
        elif op == C.IN:
            cands = [c for c in PRINTABLE if in_set(av, c)]
            if not cands:
                cands = [chr(c) for c in range(0x20, 0x3000) if in_set(av, chr(c))][:50]
            out.append(rng.choice(cands))
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT):
            lo, hi, sub = av
            hi = min(hi, lo + 4)
            for _ in range(rng.randint(lo, hi)):
                sample_tree(sub, out, budget)
        elif op == C.SUBPATTERN:
            sample_tree(av[-1], out, budget)
        elif op == C.BRANCH:
            sample_tree(rng.choice(av[1]), out, budget)
        elif op == C.AT:
            pass
        else:
            raise ValueError(f"sampler: {op}")


def sample_regex(p):
    s = []
    sample_tree(P.parse(p, re.ASCII), s, 0)
    return "".join(s)


def mutate_string(s):
    s = list(s)
    k = rng.randrange(5)
    i = rng.randrange(len(s) + 1)
    if k == 0 and s:
        del s[min(i, len(s) - 1)]
    elif k == 1:
        s.insert(i, rng.choice(PRINTABLE))
    elif k == 2 and s:
        s[min(i, len(s) - 1)] = rng.choice(PRINTABLE)
    elif k == 3:
        s = s + s[: rng.randint(1, 3)]
    else:
        s = s[:i]
    return "".join(s)


def ecma_search(p, s):
    # '$' at the end of the pattern (or of a top-level alternative) means end of string
    q = re.sub(r"(?<!\\)\$(?=\||$)", r"\\Z", p)
    return re.search(q, s, re.ASCII) is not None


# ---------------------------------------------------------------- schemas
def ref_resolve(root, ref):
    node = root
    for part in ref[2:].split("/") if ref != "#" else []:
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


FORMATS = {
    "date": lambda: f"{rng.choice([1999, 2000, 2023, 2024, 1900, 4])  :04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 31):02d}",
    "time": lambda: f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
    + rng.choice(["", ".5", ".123"]) + rng.choice(["Z", "+02:00", "-11:30"]),
    "uuid": lambda: "-".join("".join(rng.choice("0123456789abcdefABCDEF") for _ in range(n)) for n in (8, 4, 4, 4, 12)),
    "email": lambda: rng.choice(["ann", "bo.b", "x_y+z"]) + "@" + rng.choice(["example.com", "a-b.co.uk", "d.io"]),
}
FORMATS["date-time"] = lambda: FORMATS["date"]() + "T" + FORMATS["time"]()

STRINGS = ["", "a", "hello world", 'quote " and \\ backslash', "line\nbreak\ttab", "caf\u00e9 \u4e2d\u6587 \U0001F600",
           "ctrl\u0001\u001f\u007f", "/slash/"]


def sample(schema, root, depth=0):
    """A random instance of schema (subset), members in the converter's order."""
    if schema is True or schema == {}:
        return rng.choice([1, "x", None, True, [1, 2], {"k": "v"}, 2.5])
    if "$ref" in schema:
        merged = dict(ref_resolve(root, schema["$ref"]))
        merged.update({k: v for k, v in schema.items() if k != "$ref"})
        return sample(merged, root, depth + 1)
    if "allOf" in schema:
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            merged.update(part)
        return sample(merged, root, depth + 1)
    for kw in ("anyOf", "oneOf"):
        if kw in schema:
            alt = rng.choice(schema[kw]) if depth < 4 else schema[kw][-1]
            merged = {k: v for k, v in schema.items() if k != kw}
            merged.update(alt)
            return sample(merged, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return rng.choice(schema["enum"])
    t = schema.get("type", rng.choice(["string", "number", "object", "array", "null", "boolean"]))
    if isinstance(t, list):
        t = rng.choice(t)
    if t == "null":
        return None
    if t == "boolean":
        return rng.choice([True, False])
    if t == "integer":
        lo = schema.get("minimum", schema.get("exclusiveMinimum", -10**6 - 1) + 1)
        hi = schema.get("maximum", schema.get("exclusiveMaximum", 10**6 + 1) - 1)
        return rng.choice([lo, hi, rng.randint(lo, hi), rng.randint(lo, hi)])
    if t == "number":
        bounds = [schema[k] for k in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum") if k in schema]
        if not bounds:
            return rng.choice([0, -3, 2.5, 1e-7, -1.25e20, 3.0, 123456789])
        lo = schema.get("minimum", schema.get("exclusiveMinimum", -1000))
        hi = schema.get("maximum", schema.get("exclusiveMaximum", 1000))
        return rng.choice([lo, hi, round(rng.uniform(lo, hi), 3), round(rng.uniform(lo, hi), 1), float(lo), rng.randint(lo, hi)])
    if t == "string":
        if "format" in schema:
            return FORMATS[schema["format"]]()
        if "pattern" in schema:
            p = schema["pattern"]
            s = sample_regex(p)
            if not p.startswith("^"):
                s = rng.choice(["", "x", "-- "]) + s
            if not p.endswith("$"):
                s = s + rng.choice(["", "y", " !"])
            return s
        lo, hi = schema.get("minLength", 0), schema.get("maxLength", 12)
        base = rng.choice(STRINGS) * 3
        n = rng.randint(lo, hi)
        return (base + "z" * n)[:n]
    if t == "array":
        prefix = schema.get("prefixItems", [])
        items = schema.get("items", True)
        lo = schema.get("minItems", 0)
        hi = schema.get("maxItems", lo + 3)
        if items is False:
            hi = min(hi, len(prefix))
        n = rng.randint(lo, hi) if depth < 4 else lo
        return [sample(prefix[i] if i < len(prefix) else items, root, depth + 1) for i in range(n)]
    if t == "object":
        props = schema.get("properties", {})
        req = schema.get("required", [])
        out = {}
        for k in props:
            if k in req:
                out[k] = sample(props[k], root, depth + 1)
        for k in req:
            if k not in props:
                out[k] = sample(schema.get("additionalProperties", True), root, depth + 1)
        for k in props:
            if k not in req and rng.random() < (0.6 if depth < 3 else 0.0):
                out[k] = sample(props[k], root, depth + 1)
        ap = schema.get("additionalProperties", not props)
        if ap is not False and rng.random() < 0.5:
            for k in rng.sample(["extra", "zz", "a b", "\u00e9t\u00e9", ""], 2):
                if k not in props and k not in out:
                    out[k] = sample(ap, root, depth + 1)
        return out
    raise ValueError(t)


def mutate(v):
    """A random edit somewhere in the value."""
    if isinstance(v, dict) and v and rng.random() < 0.7:
        k = rng.choice(list(v))
        w = dict(v)
        r = rng.randrange(4)
        if r == 0:
            del w[k]
        elif r == 1:
            w[k] = mutate(w[k])
        elif r == 2:
            w["unexpected"] = 1
        else:
            w[k] = rng.choice([None, "s", 7, 1.5, True, [], {}])
        return w
    if isinstance(v, list) and v and rng.random() < 0.7:
        w = list(v)
        r = rng.randrange(3)
        i = rng.randrange(len(w))
        if r == 0:
            del w[i]
        elif r == 1:
            w.append(copy.deepcopy(w[i]))
        else:
            w[i] = mutate(w[i])
        return w
    if isinstance(v, str) and rng.random() < 0.8:
        return mutate_string(v)
    if isinstance(v, bool):
        return rng.choice([not v, None, "true"])
    if isinstance(v, int) and rng.random() < 0.7:
        return v + rng.choice([-1, 1, -1000, 1000, 10**7])
    return rng.choice([None, "s", 7, -2.5, True, [], {}, "2020-02-30"])


def strictify(s):
    if isinstance(s, list):
        return [strictify(x) for x in s]
    if not isinstance(s, dict):
        return s
    out = {}
    for k, v in s.items():
        if k in ("properties", "$defs", "definitions"):
            out[k] = {n: strictify(x) for n, x in v.items()}
        elif k in ("items", "additionalProperties"):
            out[k] = strictify(v)
        elif k in ("prefixItems", "anyOf", "oneOf", "allOf"):
            out[k] = [strictify(x) for x in v]
        else:
            out[k] = v
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def ecma_validator(schema):
    def pattern(validator, p, instance, _schema):
        if validator.is_type(instance, "string") and not ecma_search(p, instance):
            yield jsonschema.ValidationError(f"{instance!r} does not match {p!r}")
    cls = jsonschema.validators.extend(Draft202012Validator, {"pattern": pattern})
    fc = copy.deepcopy(Draft202012Validator.FORMAT_CHECKER)
    fc.checks("email")(lambda s: not isinstance(s, str) or re.fullmatch(EMAIL_RE, s) is not None)
    return cls(schema, format_checker=fc)


# "email" is read as this conservative form (jsonschema only asks for an '@')
EMAIL_RE = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"


def dumps(v, pretty=False):
    if pretty:
        return json.dumps(v, indent=2, ensure_ascii=False)
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


S = []  # (name, schema, hand-written values, raw texts [(text, layout_ok)], reference or None)


def case(name, schema, values=(), texts=(), reference=None):
    S.append((name, schema, list(values), list(texts), reference))


PERSON = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0},
                                            "email": {"type": "string", "format": "email"}}, "required": ["name"]}
case("person", PERSON, [{"name": "Ann"}, {"name": "Bo", "age": 3}, {"age": 3}, {"name": 1}, {"name": "x", "age": -1},
                        {"name": "x", "email": "a@b.co"}, {"name": "x", "email": "nope"}],
     [('{"age":3,"name":"Ann"}', False), ('{ "name" : "Ann" }', True), ('{"name": "Ann", "age": 30}', True),
      (' {"name":"Ann"}', False), ('{"name":"Ann"}\n', False), ('{"name":"\\u0041nn"}', False)])
case("types", {"type": ["string", "null", "boolean"]}, ["s", None, True, False, 0, [], {}])
case("integer", {"type": "integer"}, [0, -5, 12345678901234, 1.5, "1"], [("1.0", False), ("-0", False), ("007", False)])
case("number", {"type": "number"}, [0, -1.5, 1e300, 2.5e-8, "x", None], [("1.0", True), ("1E5", True), ("-0.0", True),
                                                                        (".5", False), ("1.", False), ("+1", False)])
case("int_range", {"type": "integer", "minimum": -42, "maximum": 1234},
     [-42, -43, 0, 9, 10, 99, 100, 999, 1000, 1199, 1200, 1229, 1230, 1234, 1235, 5000, -100])
case("int_excl", {"type": "integer", "exclusiveMinimum": 7, "exclusiveMaximum": 70}, [7, 8, 9, 10, 69, 70, 71, 100])
case("int_min_only", {"type": "integer", "minimum": 95}, [94, 95, 99, 100, 1000, 10**12, -95, 0])
case("int_max_only", {"type": "integer", "maximum": -3}, [-3, -2, 0, -4, -10, -1000, 3])
case("number_range", {"type": "number", "minimum": 0, "maximum": 1}, [0, 0.5, 1, 1.5, -0.25, 0.999, 2, 1.0],
     [("1.000", True), ("0.0", True), ("1.001", True), ("1e-1", False), ("-0", False), ("-0.0", False), ("00.5", False)])
case("number_excl", {"type": "number", "exclusiveMinimum": -2, "exclusiveMaximum": 3},
     [-2, -1.99, -2.01, 0, 2.999, 3, -0.5, 10, -2.0, 3.0], [("-2.000", True), ("-1.000001", True), ("2.9999999", True)])
case("number_min", {"type": "number", "minimum": -5}, [-5, -5.5, -4.99, 0, 1000000.0, 3.25, -6], [("-5.00", True)])
case("enum", {"enum": ["red", "green", 3, None, [1, {"a": True}], "qu\"ote"]},
     ["red", "blue", 3, 4, None, [1, {"a": True}], [1], "qu\"ote"], [('[1, {"a": true}]', True)])
case("const", {"const": {"k": [1, 2], "s": "v"}}, [{"k": [1, 2], "s": "v"}, {"k": [1], "s": "v"}],
     [('{"s":"v","k":[1,2]}', False)])
case("string_len", {"type": "string", "minLength": 2, "maxLength": 5},
     ["", "a", "ab", "abcde", "abcdef", "\u00e9\u00e9", "\U0001F600\U0001F600\U0001F600", 'a"b', "a\nb\tc"])
case("pattern_anchored", {"type": "string", "pattern": "^[A-Z]{2}-\\d{3,4}(x|yz)?$"},
     ["AB-123", "AB-1234", "AB-123x", "AB-123yz", "ab-123", "AB-12", "AB-12345", "xAB-123"])
case("pattern_search", {"type": "string", "pattern": "c[ao]t"},
     ["cat", "a cot b", "dog", "", "scatter", "ct", "c\"t", "c\\t"])
case("pattern_escapes", {"type": "string", "pattern": "^\"[^\"\\\\]*\\\\n$"},
     ['"abc\\n', '""\\n', '"a"b\\n', '"ab', '"\u00e9\\n'])
case("formats", {"type": "object", "properties": {
    "d": {"type": "string", "format": "date"}, "t": {"type": "string", "format": "time"},
    "dt": {"type": "string", "format": "date-time"}, "u": {"type": "string", "format": "uuid"}}},
    [{"d": "2024-02-29"}, {"d": "2023-02-29"}, {"d": "2000-02-29"}, {"d": "1900-02-29"}, {"d": "2023-04-31"},
     {"d": "0000-01-01"}, {"d": "2023-13-01"}, {"t": "23:59:59Z"}, {"t": "24:00:00Z"}, {"t": "12:00:00"},
     {"t": "12:00:00.25+05:30"}, {"dt": "2021-06-01T10:20:30-07:00"}, {"dt": "2021-06-01 10:20:30Z"},
     {"u": "123e4567-e89b-12d3-a456-426614174000"}, {"u": "123e4567e89b12d3a456426614174000"},
     {"u": "123E4567-E89B-12D3-A456-42661417400G"}])
case("array", {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3},
     [[], [1], [1, 2, 3], [1, 2, 3, 4], [1, "2"]], [("[ 1, 2 ]", True), ("[1,2,]", False), ("[\n  1\n]", True)])
case("tuple", {"type": "array", "prefixItems": [{"type": "string"}, {"type": "number"}], "items": False, "minItems": 1},
     [[], ["a"], ["a", 1], ["a", 1, 2], [1, "a"]])
case("tuple_open", {"type": "array", "prefixItems": [{"const": "x"}], "items": {"type": "boolean"}, "maxItems": 3},
     [[], ["x"], ["x", True], ["x", True, False], ["x", True, False, True], ["y"], ["x", 1]])
case("nested", {"type": "object", "properties": {
    "id": {"type": "integer"},
    "items": {"type": "array", "items": {"type": "object", "properties": {
        "sku": {"type": "string", "pattern": "^[a-z]+$"}, "qty": {"type": "integer", "minimum": 1, "maximum": 99}},
        "required": ["sku", "qty"]}},
    "note": {"type": ["string", "null"]}}, "required": ["id", "items"]},
    [{"id": 1, "items": []}, {"id": 1, "items": [{"sku": "ab", "qty": 2}]}, {"id": 1, "items": [{"sku": "AB", "qty": 2}]},
     {"id": 1, "items": [{"sku": "ab", "qty": 100}]}, {"id": 1, "items": [], "note": None}, {"items": []}],
    [('{"id":1,"items":[{"qty":2,"sku":"ab"}]}', False)])
case("anyof", {"anyOf": [{"type": "string", "maxLength": 2}, {"type": "integer", "minimum": 10}, {"type": "null"}]},
     ["", "ab", "abc", 10, 9, None, True])
case("oneof_objects", {"type": "object", "oneOf": [
    {"properties": {"kind": {"const": "circle"}, "r": {"type": "number"}}, "required": ["kind", "r"]},
    {"properties": {"kind": {"const": "rect"}, "w": {"type": "number"}, "h": {"type": "number"}},
     "required": ["kind", "w", "h"]}]},
    [{"kind": "circle", "r": 1}, {"kind": "rect", "w": 1, "h": 2}, {"kind": "rect", "r": 1}, {"kind": "circle"}])
case("allof_merge", {"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                               {"properties": {"b": {"type": "integer", "maximum": 5}}}]},
     [{"a": "x"}, {"a": "x", "b": 5}, {"a": "x", "b": 6}, {"b": 1}, {"a": "x", "c": 1}],
     reference={"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer", "maximum": 5}},
                "required": ["a"], "additionalProperties": False})
case("allof_scalar", {"type": "string", "allOf": [{"minLength": 2}, {"maxLength": 4}, {"minLength": 3}]},
     ["ab", "abc", "abcd", "abcde", 3])
case("ref_recursive", {"$defs": {"node": {"type": "object", "properties": {
    "value": {"type": "integer"}, "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
    "required": ["value"]}}, "$ref": "#/$defs/node"},
    [{"value": 1}, {"value": 1, "children": [{"value": 2, "children": [{"value": 3}]}]},
     {"value": 1, "children": [{"children": []}]}, {"value": "1"}])
case("ref_siblings", {"$defs": {"s": {"type": "string", "minLength": 1}}, "$ref": "#/$defs/s", "maxLength": 3},
     ["", "a", "abc", "abcd", 1])
case("pydantic_style", {"$defs": {
    "Color": {"enum": ["red", "green"], "title": "Color", "type": "string"},
    "Item": {"properties": {"name": {"title": "Name", "type": "string"},
                            "color": {"allOf": [{"$ref": "#/$defs/Color"}], "default": "red"},
                            "sub": {"anyOf": [{"$ref": "#/$defs/Item"}, {"type": "null"}], "default": None}},
             "required": ["name"], "title": "Item", "type": "object"}},
    "$ref": "#/$defs/Item", "title": "Root"},
    [{"name": "a"}, {"name": "a", "color": "red"}, {"name": "a", "color": "blue"},
     {"name": "a", "sub": {"name": "b", "sub": None}}, {"name": "a", "sub": {"color": "red"}}])
case("definitions", {"definitions": {"pos": {"type": "integer", "minimum": 1}},
                     "type": "array", "items": {"$ref": "#/definitions/pos"}}, [[1, 2], [0], [], [1, -1]])
case("additional_schema", {"type": "object", "properties": {"id": {"type": "integer"}, "idx": {"type": "string"}},
                           "additionalProperties": {"type": "string"}},
     [{}, {"id": 1}, {"id": 1, "x": "y"}, {"id": 1, "x": 2}, {"x": "y", "z": "w"}, {"i": "s"}, {"idy": "s"},
      {"": "s"}, {"id": 1, "idx": "s", "i d": "t"}],
     [('{"id":1,"id":2}', False), ('{"x":"y","id":1}', False)])
case("additional_true", {"type": "object", "properties": {"a": {"type": "boolean"}}, "required": ["a"],
                         "additionalProperties": True},
     [{"a": True}, {"a": True, "b": [1, {"c": None}]}, {"b": 1}])
case("any_object", {"type": "object"}, [{}, {"a": 1, "b": {"c": [1, 2.5, "x", None, True]}}, [], "s"])
case("untyped", {"properties": {"a": {"type": "integer"}}, "minLength": 2},
     [{"a": 1}, {}, {"a": "s"}, "ab", "a", 3, None, [1]])
case("empty", {}, [1, "s", None, [1, {"a": []}], {"k": {"l": 1}}],
     [(" 1", False), ('{"a" : 1}', True), ("[1 ,2]", True), ("[1,2]  ", False), ("{\n\n}", False)])
case("required_only", {"type": "object", "required": ["a"]}, [{"a": 1}, {"a": 1, "b": 2}, {"b": 2}, {}])

# random integer / number ranges: bounds of every kind, values around them
for i in range(12):
    t = "integer" if i % 2 == 0 else "number"
    sch = {"type": t}
    a = rng.choice([-1000, -120, -20, -1, 0, 0, 1, 7, 99, 100, 101, 999])
    b = a + rng.choice([2, 9, 10, 11, 99, 100, 1000, 12345])
    if rng.random() < 0.8:
        sch[rng.choice(["minimum", "exclusiveMinimum"])] = a
    if rng.random() < 0.8 or len(sch) == 1:
        sch[rng.choice(["maximum", "exclusiveMaximum"])] = b
    vals = set()
    for x in (a, b):
        for d in (-11, -10, -2, -1, 0, 1, 2, 9, 10, 11):
            vals.add(x + d)
            if t == "number":
                vals.add(round(x + d + 0.5, 1))
                vals.add(round(x + d - 0.001, 3))
    case(f"range_{i}", sch, sorted(vals))

# keywords the converter refuses, each named in its message
REFUSED = [
    ({"type": "object", "properties": {"x": {"type": "object", "patternProperties": {"^a": {}}}}},
     "unsupported keyword \"patternProperties\" at /properties/x"),
    ({"type": "string", "contentEncoding": "base64"}, "\"contentEncoding\""),
    ({"not": {"type": "string"}}, "\"not\""),
    ({"if": {"type": "string"}, "then": {"minLength": 1}}, "\"if\""),
    ({"type": "array", "contains": {"type": "integer"}}, "\"contains\""),
    ({"type": "array", "uniqueItems": True}, "\"uniqueItems\""),
    ({"type": "object", "minProperties": 1}, "\"minProperties\""),
    ({"type": "object", "propertyNames": {"pattern": "^a"}}, "\"propertyNames\""),
    ({"type": "object", "dependentRequired": {"a": ["b"]}}, "\"dependentRequired\""),
    ({"type": "object", "unevaluatedProperties": False}, "\"unevaluatedProperties\""),
    ({"type": "number", "multipleOf": 2}, "\"multipleOf\""),
    ({"type": "number", "minimum": 0.5}, "\"minimum\" 0.5 on type number"),
    ({"type": "number", "minimum": 2, "exclusiveMaximum": 2}, "nothing validates"),
    ({"type": "string", "format": "hostname"}, "format \"hostname\""),
    ({"type": "string", "pattern": "(a)\\1"}, "backreference"),
    ({"type": "string", "pattern": "a(?=b)"}, "lookahead"),
    ({"type": "string", "pattern": "(?<!a)b"}, "lookbehind"),
    ({"type": "string", "pattern": "\\bword"}, "word boundary"),
    ({"type": "array", "items": [{"type": "string"}]}, "\"items\" as an array"),
    ({"$ref": "http://example.com/s.json"}, "not within this document"),
    ({"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}, "refers to itself"),
    ({"allOf": [{"type": "string"}, {"type": "integer"}]}, "do not intersect"),
    ({"type": "integer", "minimum": 5, "maximum": 4}, "nothing validates"),
    ({"type": "object", "nullable": True}, "\"nullable\""),
    (False, "schema false"),
]


def schema_cases():
    out = []
    for name, schema, values, texts, reference in S:
        v = ecma_validator(reference if reference is not None else strictify(schema))
        docs, seen = [], set()

        def add(text, layout=True):
            if text in seen:
                return
            seen.add(text)
            try:
                ok = v.is_valid(json.loads(text))
            except json.JSONDecodeError:
                ok = False  # not JSON at all
            docs.append({"text": text, "valid": ok, "layout": layout})

        for x in values:
            add(dumps(x))
        for t, layout in texts:
            add(t, layout)
        gen = []
        for _ in range(25):
            gen.append(sample(schema, schema))
        for x in gen:
            add(dumps(x))
        for x in gen[:12]:
            add(dumps(mutate(x)))
            add(dumps(mutate(mutate(x))))
        for x in gen[:3]:
            add(dumps(x, pretty=True))
        nv = sum(d["valid"] and d["layout"] for d in docs)
        assert nv >= (1 if name.startswith("range_") else 2) and len(docs) - nv >= 2, (name, nv, len(docs))
        out.append({"name": name, "schema": schema, "docs": docs})
    return out


REGEXES = [
    (r"abc", ["abc", "ab", "abcd", ""]),
    (r"^a+b*$", ["a", "aab", "b", "abb", "aba"]),
    (r"[a-z]{2,4}\d?", ["ab", "abcd5", "abcde", "a1", "AB"]),
    (r"(foo|bar)+baz", ["foobaz", "barfoobaz", "baz", "fooba"]),
    (r"(?:ab|c)*d", ["d", "abcd", "ccd", "abd", "ad"]),
    (r"\w+@\w+\.(com|org)", ["a@b.com", "a_1@x.org", "@b.com", "a@b.net"]),
    (r"[^0-9\s]+", ["abc", "a b", "é!", "1", ""]),
    (r"\D\W\S", ["a!x", "1!x", "a a ", "é é"]),
    (r"\s*\S+\s*", [" x ", "x", "  ", "\tab\n"]),
    (r"a.c", ["abc", "a\nc", "aéc", "ac"]),
    (r"x{3}", ["xxx", "xx", "xxxx"]),
    (r"x{2,}", ["x", "xx", "xxxxx"]),
    (r"x{,2}y", ["y", "xy", "xxy", "xxxy"]),
    (r"a+?b*?c??", ["a", "abc", "aac", "c"]),
    (r"[\]\-\\]+", ["]", "-\\", "a"]),
    (r"[a\-z]", ["a", "-", "z", "b"]),
    (r"\.\*\+\?\(\)\[\]\{\}\|\^\$", [".*+?()[]{}|^$", "x"]),
    (r"\t\n\x41\u00e9", ["\t\nAé", "\t\nAe"]),
    (r"(\d{1,3}\.){3}\d{1,3}", ["1.2.3.4", "255.255.255.255", "1.2.3", "1234.1.1.1"]),
    (r"[\u00e0-\u00ff]+|中文", ["àÿ", "中文", "中", "a"]),
    (r"(a|b|)c", ["c", "ac", "bc", "abc"]),
    (r"-?(0|[1-9]\d*)(\.\d+)?", ["0", "-12.5", "01", "1.", "-"]),
    (r"^(yes|no)$", ["yes", "no", "yesno", ""]),
    (r"😀+[😀-😂]", ["😀😁", "😀", "😀😃"]),
    (r"[^\n]*", ["abc", "a\nb", ""]),
]
REGEX_REFUSED = [
    (r"(a)\1", "backreference"), (r"a(?=b)", "lookahead"), (r"a(?!b)", "lookahead"),
    (r"(?<=a)b", "lookbehind"), (r"(?<!a)b", "lookbehind"), (r"\bx", "word boundary"), (r"(?i)abc", "inline flags"),
    (r"a*+", "possessive"), (r"(a?)*", "empty string"), (r"a^b", "anchor ^"), (r"a$b", "anchor $"),
    (r"\p{L}", "Unicode property"), (r"[[:alpha:]]", "POSIX class"), (r"(?P<n>a)(?P=n)", "backreference"),
]
REGEX_INVALID = [r"(ab", r"ab)", r"[ab", r"*a", r"a{3,2}", r"a**", "\\", r"[z-a]", r"\x4"]


def random_regex(depth=0):
    """A random pattern of the supported subset (no unbounded repetition of a group that
    can match the empty string); returns (pattern, can_be_empty)."""
    parts, nullable = [], True
    for _ in range(rng.randint(1, 3)):
        k = rng.randrange(9 if depth < 1 else 7)  # groups one level deep: Python's backtracking stays fast
        if k == 0:
            a, an = rng.choice(["a", "b", "c", "1", "\\.", "-", "\\-", "é"]), False
        elif k == 1:
            a, an = rng.choice(["[a-c]", "[^ab]", "[\\d_]", "[^\\s]", "[ab-]", "[a\\]]"]), False
        elif k in (2, 3):
            a, an = rng.choice(["\\d", "\\w", "\\s", "\\D", "\\W", "\\S", "."]), False
        elif k in (4, 5, 6):
            a, an = rng.choice("abc"), False
        else:
            alts = [random_regex(depth + 1) for _ in range(rng.randint(1, 3))]
            a = rng.choice(["(", "(?:"]) + "|".join(x for x, _ in alts) + ")"
            an = any(n for _, n in alts)
        q = rng.choice(["", "", "", "*", "+", "?", "{2}", "{1,3}", "{2,}", "{0,2}", "*?"])
        if an and q in ("*", "+", "{2,}", "*?"):
            q = "?"
        parts.append(a + q)
        nullable &= an or q in ("*", "?", "{0,2}", "*?")
    return "".join(parts), nullable


def regex_cases():
    for p in REGEX_INVALID:
        try:
            re.compile(p)
        except re.error:
            continue
        raise AssertionError(f"{p!r} compiles in Python")
    regexes = list(REGEXES)
    while len(regexes) < len(REGEXES) + 40:
        p, _ = random_regex()
        regexes.append((p, ["".join(rng.choice("abc1 -.é_") for _ in range(rng.randint(0, 6))) for _ in range(6)]))
    out = []
    for p, strs in regexes:
        cand = list(strs)
        for _ in range(12):
            s = sample_regex(p)
            cand.append(s)
            cand.append(mutate_string(s))
        seen, items = set(), []
        for s in cand:
            if s in seen:
                continue
            seen.add(s)
            items.append({"text": s, "match": re.fullmatch(p, s, re.ASCII) is not None})
        n = sum(x["match"] for x in items)
        assert n >= 1 and (len(items) - n >= 1 or (p, strs) not in REGEXES), p
        out.append({"regex": p, "strings": items})
    return {"cases": out,
            "refused": [{"regex": p, "message": m} for p, m in REGEX_REFUSED],
            "invalid": REGEX_INVALID}


def main():
    os.makedirs(OUT, exist_ok=True)
    sc = schema_cases()
    with open(os.path.join(OUT, "cases.json"), "w", encoding="utf-8") as f:
        json.dump({"cases": sc, "refused": [{"schema": s, "message": m} for s, m in REFUSED]}, f,
                  ensure_ascii=False, indent=1)
        f.write("\n")
    rc = regex_cases()
    with open(os.path.join(OUT, "regex_cases.json"), "w", encoding="utf-8") as f:
        json.dump(rc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    nd = sum(len(c["docs"]) for c in sc)
    nv = sum(d["valid"] for c in sc for d in c["docs"])
    ns = sum(len(c["strings"]) for c in rc["cases"])
    print(f"{len(sc)} schemas, {nd} documents ({nv} valid); {len(rc['cases'])} regexes, {ns} strings")


if __name__ == "__main__":
    main()
