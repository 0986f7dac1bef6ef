#!/usr/bin/env python3
"""Generate the chat-template goldens for lib/text/jinja.c and chat.c.

Renders every template in tests/data/templates/*.jinja with every conversation of
tests/data/templates/conversations.json, add_generation_prompt in {false, true},
through transformers' own machinery (transformers.utils.chat_template_utils.
render_jinja_template, with the context apply_chat_template builds: the named
special tokens of the template's tokenizer_config, null-valued message keys dropped),
with strftime_now pinned to 2026-01-15 10:30:00 (epoch 1768473000 on the C side).
Writes tests/data/templates/golden.jsonl.zst: one JSON object per render,
{"template", "conversation", "add_generation_prompt", "output"} or "error".

Also runs the small language cases (CASES below) through jinja2's
ImmutableSandboxedEnvironment as transformers configures it, and writes
tests/data/templates/cases.jsonl: {"template", "context", "output"} or "error".

Import mode (--import-llamacpp DIR, --import-fixtures DIR, --import-openvino FILE) copies the published
templates into tests/data/templates/ (see README.md there for provenance).

Usage: python3 tests/gen/gen_template_goldens.py   (run from the repository root)
"""
import argparse
import datetime
import glob
import json
import os
import re
import subprocess
import sys

OUT_DIR = "tests/data/templates"
NOW = datetime.datetime(2026, 1, 15, 10, 30, 0)

# llama.cpp's models/templates/<file> -> our name (files are verbatim copies of the HF repos' templates)
LLAMACPP_TEMPLATES = {
    "Qwen-Qwen2.5-7B-Instruct.jinja": "qwen2.5-7b-instruct",
    "Qwen-QwQ-32B.jinja": "qwq-32b",
    "Qwen3-Coder.jinja": "qwen3-coder",
    "meta-llama-Llama-3.1-8B-Instruct.jinja": "llama-3.1-8b-instruct",
    "meta-llama-Llama-3.2-3B-Instruct.jinja": "llama-3.2-3b-instruct",
    "google-gemma-2-2b-it.jinja": "gemma-2-2b-it",
    "microsoft-Phi-3.5-mini-instruct.jinja": "phi-3.5-mini-instruct",
    "HuggingFaceTB-SmolLM3-3B.jinja": "smollm3-3b",
    "ibm-granite-granite-3.3-2B-Instruct.jinja": "granite-3.3-2b-instruct",
    "deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja": "deepseek-r1-distill-llama-8b",
    "mistralai-Mistral-Nemo-Instruct-2407.jinja": "mistral-nemo-instruct-2407",
    "Mistral-Small-3.2-24B-Instruct-2506.jinja": "mistral-small-3.2",
    "CohereForAI-c4ai-command-r-plus-tool_use.jinja": "command-r-plus-tool-use",
    "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja": "hermes-2-pro-llama-3-tool-use",
    "openai-gpt-oss-120b.jinja": "gpt-oss-120b",
    "meetkai-functionary-medium-v3.2.jinja": "functionary-medium-v3.2",
    "fireworks-ai-llama-3-firefunction-v2.jinja": "firefunction-v2",
    "deepseek-ai-DeepSeek-V3.1.jinja": "deepseek-v3.1",
}
# llama.cpp's tests/test-chat-template.cpp entries (name there -> our name)
LLAMACPP_TEST_TEMPLATES = {
    "teknium/OpenHermes-2.5-Mistral-7B": "chatml-openhermes-2.5",
    "mistralai/Mistral-7B-Instruct-v0.2 (NOTE: Old pre-v1 without a system prompt)": "mistral-7b-instruct-v0.2",
    "google/gemma-7b-it": "gemma-7b-it",
    "openchat/openchat-3.5-0106": "openchat-3.5",
    "deepseek-ai/deepseek-coder-33b-instruct": "deepseek-coder-33b-instruct",
    "Phi-3-mini": "phi-3-mini",
    "ibm-granite/granite-3.0-8b-instruct": "granite-3.0-8b-instruct",
    "eachadea/vicuna-13b-1.1": "vicuna-13b-1.1",
    "DeepSeek-V2": "deepseek-v2",
    "mistralai/Mistral-Large-Instruct-2411 (mistralai 'v7' template)": "mistral-large-2411",
}

# special tokens (as a tokenizer_config would give them) for templates not from a fixture
LLAMA3 = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}
MISTRAL = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
QWEN = {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}
SPECIAL = {
    "qwen2.5-7b-instruct": QWEN, "qwq-32b": QWEN, "qwen3-coder": QWEN,
    "llama-3.1-8b-instruct": LLAMA3, "llama-3.2-3b-instruct": LLAMA3, "firefunction-v2": LLAMA3,
    "hermes-2-pro-llama-3-tool-use": {"bos_token": "<|begin_of_text|>", "eos_token": "<|im_end|>"},
    "functionary-medium-v3.2": LLAMA3,
    "deepseek-r1-distill-llama-8b": {"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>"},
    "deepseek-v3.1": {"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>"},
    "deepseek-v2": {"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>"},
    "deepseek-coder-33b-instruct": {"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<|EOT|>"},
    "gemma-2-2b-it": {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>"},
    "gemma-7b-it": {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>"},
    "phi-3.5-mini-instruct": {"bos_token": "<s>", "eos_token": "<|endoftext|>", "unk_token": "<unk>"},
    "phi-3-mini": {"bos_token": "<s>", "eos_token": "<|endoftext|>", "unk_token": "<unk>"},
    "smollm3-3b": {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|im_end|>"},
    "granite-3.3-2b-instruct": {"bos_token": "<|end_of_text|>", "eos_token": "<|end_of_text|>"},
    "granite-3.0-8b-instruct": {"bos_token": "<|end_of_text|>", "eos_token": "<|end_of_text|>"},
    "mistral-nemo-instruct-2407": MISTRAL, "mistral-small-3.2": MISTRAL, "mistral-7b-instruct-v0.2": MISTRAL,
    "mistral-large-2411": MISTRAL, "vicuna-13b-1.1": MISTRAL, "chatml-openhermes-2.5": {"eos_token": "<|im_end|>"},
    "openchat-3.5": {"bos_token": "<s>", "eos_token": "<|end_of_turn|>"},
    "command-r-plus-tool-use": {"bos_token": "<BOS_TOKEN>", "eos_token": "<|END_OF_TURN_TOKEN|>"},
    "gpt-oss-120b": {"bos_token": "<|startoftext|>", "eos_token": "<|return|>", "pad_token": "<|endoftext|>"},
    "mistral-small-3.1": MISTRAL, "phi-4-mini-instruct": {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"},
    "deepseek-r1-distill-qwen": {"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>"},
}
NAMED = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


# Small language cases: (template, context).  Outputs/errors come from jinja2 itself.
L = {"items": [3, 1, 2], "words": ["b", "A", "c"], "d": {"b": 2, "a": 1}, "s": "  Hello World  ",
     "msgs": [{"role": "system", "content": "S"}, {"role": "user", "content": "U1"}, {"role": "assistant", "content": "A1"}],
     "n": None, "t": True, "f": 1.5, "i": 7, "e": "", "u": "héllo wörld", "nested": {"a": {"b": [1, {"c": "deep"}]}}}
CASES = [(t, L) for t in [
    "{{ 1 + 2 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % 3 }}|{{ -7 % 3 }}|{{ 2 ** 10 }}|{{ 7 / 2 }}|{{ 6 / 3 }}",
    "{{ 1.0 }}|{{ 0.1 + 0.2 }}|{{ 1e20 }}|{{ 1e16 }}|{{ 1e15 }}|{{ 1.5e-7 }}|{{ 0.0001 }}|{{ -0.0 }}|{{ 3.14159 }}|{{ 100.0 / 3 }}",
    "{{ 'a' ~ 1 ~ none ~ true }}|{{ 'ab' * 3 }}|{{ [1] + [2] }}|{{ 'x' + 'y' }}",
    "{{ [1, 'a', none, true, 1.5, [2], {'k': 'v'}] }}|{{ (1,) }}|{{ (1, 2) }}|{{ () }}|{{ {'a': 1, 2: 'b'} }}",
    "{{ \"it's\" }}|{{ ['it\\'s', 'say \"hi\"', 'both \\' \"'] }}|{{ ['new\\nline', 'tab\\t', 'back\\\\slash'] }}",
    "{{ items[0] }}|{{ items[-1] }}|{{ items[1:] }}|{{ items[::-1] }}|{{ items[:-1] }}|{{ items[5] }}|{{ 'hello'[1:3] }}|{{ 'hello'[::-1] }}|{{ u[1:4] }}",
    "{{ d.a }}|{{ d['b'] }}|{{ d.missing }}|{{ d.items() | list }}|{{ d.keys() | list }}|{{ d.values() | list }}|{{ d.get('a') }}|{{ d.get('z', 'dflt') }}|{{ d.get('z') }}",
    "{{ nested.a.b[1].c }}|{{ nested['a']['b'][0] }}|{{ nested.a.x }}",
    "{{ missing }}|{{ missing is defined }}|{{ missing is undefined }}|{{ missing | default('D') }}|{{ e | default('E', true) }}|{{ e | d('E2') }}",
    "{{ missing.attr }}",
    "{{ d.missing.attr }}",
    "{{ n is none }}|{{ n }}|{{ t is true }}|{{ t is boolean }}|{{ i is integer }}|{{ f is float }}|{{ i is number }}|{{ t is number }}|{{ s is string }}|{{ d is mapping }}|{{ items is sequence }}|{{ s is iterable }}",
    "{{ 4 is even }}|{{ 3 is odd }}|{{ 9 is divisibleby 3 }}|{{ 9 is divisibleby(4) }}|{{ 2 is in [1,2] }}|{{ 'a' is equalto 'a' }}|{{ 1 is eq 1.0 }}|{{ 3 is gt 2 }}|{{ i is not none }}",
    "{{ 1 == 1.0 }}|{{ true == 1 }}|{{ 'a' < 'b' }}|{{ [1,2] < [1,3] }}|{{ 1 < 2 < 3 }}|{{ 3 > 2 > 2 }}|{{ 'a' in 'cat' }}|{{ 2 in items }}|{{ 'a' in d }}|{{ 'z' not in d }}",
    "{{ 1 < 'a' }}",
    "{{ not none }}|{{ [] or 'x' }}|{{ 0 and 'y' }}|{{ 'a' if t else 'b' }}|{{ 'a' if n else 'b' }}|[{{ 'a' if n }}]",
    "{{ s | trim }}|{{ s | upper }}|{{ s | lower }}|{{ 'hello wORLD-foo(bar' | title }}|{{ 'hELLO' | capitalize }}|{{ s | length }}|{{ u | length }}|{{ items | count }}",
    "{{ s | replace('l', 'L') }}|{{ 'aaa' | replace('a', 'b', 2) }}|{{ items | join(', ') }}|{{ words | join }}|{{ msgs | map(attribute='role') | join('/') }}",
    "{{ items | first }}|{{ items | last }}|{{ 'abc' | first }}|{{ [] | first }}|{{ items | list }}|{{ 'ab' | list }}|{{ d | list }}",
    "{{ items | sort }}|{{ items | sort(reverse=true) }}|{{ words | sort }}|{{ words | sort(case_sensitive=true) }}|{{ msgs | sort(attribute='role') | map(attribute='content') | list }}",
    "{{ [3, 1, 3, 2, 1] | unique | list }}|{{ ['a', 'A', 'b'] | unique | list }}|{{ d | dictsort }}|{{ d | dictsort(by='value', reverse=true) }}|{{ d | items | list }}",
    "{{ msgs | selectattr('role', 'equalto', 'user') | list }}|{{ msgs | rejectattr('role', 'eq', 'user') | map(attribute='content') | list }}|{{ items | select('odd') | list }}|{{ items | reject('odd') | list }}|{{ [0, 1, '', 'a'] | select | list }}",
    "{{ msgs | selectattr('content') | list | length }}|{{ ['a', 'b'] | map('upper') | list }}|{{ msgs | map(attribute='missing', default='X') | list }}",
    "{{ d | tojson }}|{{ msgs | tojson }}|{{ 'é\"\\n<>&' | tojson }}|{{ [1.0, 2.5, none, true] | tojson }}|{{ {'b': 1, 'a': [1, 2]} | tojson(indent=2) }}|{{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }}|{{ {} | tojson(indent=2) }}|{{ [[], {}] | tojson(indent=1) }}",
    "{{ {'a': 1} | tojson(separators=(',', ':')) }}|{{ {'x': {'y': [1]}} | tojson(indent='\\t') }}|{{ {1: 2, true: 3} | tojson }}",
    "{{ '3' | int }}|{{ '3.7' | int }}|{{ 'x' | int }}|{{ 'x' | int(5) }}|{{ 3.9 | int }}|{{ '2.5' | float }}|{{ 3 | float }}|{{ -3 | abs }}|{{ 2.567 | round(2) }}|{{ 2.5 | round }}|{{ 3.5 | round }}|{{ 7 | round }}|{{ 2.1 | round(method='ceil') }}",
    "{{ i | string }}|{{ n | string }}|{{ items | string }}|{{ f | string }}|{{ t | string }}|{{ 'x' | safe }}|{{ '<a&b>' | e }}|{{ '<\\'\"' | escape }}",
    "{{ 'a\\nb\\n\\nc' | indent(2) }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'a\\n\\nb' | indent(width='> ', blank=true) }}|{{ 'one two  three' | wordcount }}|[{{ 'ab' | center(6) }}]|[{{ 'abc' | center(6) }}]",
    "{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ 'xxaxx'.strip('x') }}|{{ '\\n\\nhi\\n'.lstrip('\\n') }}|{{ 'a,b,,c'.split(',') }}|{{ 'a b  c '.split() }}|{{ 'a,b,c'.split(',', 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}|{{ '  a  b '.split(none, 1) }}",
    "{{ 'hello'.startswith('he') }}|{{ 'hello'.endswith(('x', 'lo')) }}|{{ 'hello'.replace('l', 'L', 1) }}|{{ 'hello'.upper() }}|{{ 'HeLLo'.lower() }}|{{ 'hello world'.title() }}|{{ 'hello'.capitalize() }}|{{ 'hello'.find('l') }}|{{ 'hello'.find('z') }}|{{ 'hello'.rfind('l') }}|{{ 'hello'.count('l') }}",
    "{{ '-'.join(['a', 'b']) }}|{{ 'a\\nb\\r\\nc'.splitlines() }}|{{ '123'.isdigit() }}|{{ 'abc'.isalpha() }}|{{ ' '.isspace() }}|{{ 'ABC'.isupper() }}|{{ 'abc'.islower() }}|{{ '{} and {}'.format('x', 1) }}|{{ '{name}!'.format(name='N') }}|{{ 'ab'.center(6, '*') }}",
    "{{ u.upper() }}|{{ u.title() }}|{{ u | length }}|{{ u[0] }}|{{ u[-1] }}|{{ 'x'.join(u[:3]) }}|{{ u.split('ö') }}|{{ u.find('w') }}",
    "{% for x in items %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}{{ loop.revindex0 }};{% endfor %}",
    "{% for x in items %}[{{ loop.previtem }}|{{ loop.nextitem }}]{% endfor %}|{% for x in items %}{{ loop.cycle('a', 'b') }}{% endfor %}",
    "{% for x in items if x > 1 %}{{ x }}{{ loop.length }}{% else %}none{% endfor %}|{% for x in [] %}x{% else %}empty{% endfor %}",
    "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{% for k in d %}{{ k }}{% endfor %}|{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}|{% for c in 'hé' %}<{{ c }}>{% endfor %}",
    "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}|{{ range(3) | list }}|{{ range(1, 10, 3) | list }}|{{ range(5, 0, -2) | list }}",
    "{% for i in range(2) %}{% for j in range(2) %}{{ loop.index }}{{ i }}{{ j }} {% endfor %}{{ loop.index }}|{% endfor %}",
    "{% set x = 1 %}{% for i in range(2) %}{{ x }}{% set x = x + 1 %}{{ x }}{% endfor %}{{ x }}",
    "{% for i in range(3) %}{% if i == 0 %}{% set y = 'a' %}{% endif %}[{{ y }}]{% endfor %}[{{ y }}]",
    "{% set ns = namespace(count=0, items=[]) %}{% for i in range(4) %}{% set ns.count = ns.count + i %}{% set ns.items = ns.items + [i] %}{% endfor %}{{ ns.count }}|{{ ns.items }}|{{ ns.missing }}",
    "{% set a, b = 1, 2 %}{{ a }}{{ b }}|{% set t = (1, 2) %}{{ t }}|{% set l = [1, 2] %}{{ l }}",
    "{% set block %}  Hello {{ 'W' }}  {% endset %}[{{ block }}]|{% set b2 | upper %}abc{% endset %}{{ b2 }}",
    "{% macro greet(name, greeting='Hello') %}{{ greeting }}, {{ name }}!{% endmacro %}{{ greet('A') }}|{{ greet('B', 'Hi') }}|{{ greet(greeting='Yo', name='C') }}|{{ greet() }}",
    "{% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, 3) }}|{{ m(1, x=2) }}",
    "{% macro outer() %}[{{ caller() }}]{% endmacro %}{% call outer() %}inside{% endcall %}|{% macro lst(xs) %}{% for x in xs %}{{ caller(x) }}{% endfor %}{% endmacro %}{% call(v) lst([1, 2]) %}<{{ v }}>{% endcall %}",
    "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1) | int }}{% endif %}{% endmacro %}{{ fact(5) }}",
    "{% filter upper %}hello {{ 'x' }}{% endfilter %}|{% filter trim | replace('a', 'b') %}  aaa  {% endfilter %}",
    "{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}|{{ a }}",
    "{# comment #}A{#- trimmed -#}  B  {{- ' C ' -}}  D {%- if true -%}  E  {%- endif -%}  F",
    "line1\n  {% if true %}\n  yes\n  {% endif %}\nline2\n  {# c #}\nline3\n{{ 'v' }}\n",
    "a\n{% for i in range(2) %}\n  - {{ i }}\n{% endfor %}\nb",
    "  {%+ if true %}keep{% endif %}\n{% if true +%}\nX{% endif %}",
    "{% raw %}{{ not evaluated }} {% if %}{% endraw %}|{%- raw -%}  raw  {%- endraw -%}|",
    "{{ strftime_now('%Y-%m-%d %H:%M %d %B %b %A %a %j %p %I') }}",
    "{{ raise_exception('Custom failure message') }}",
    "{{ [1, 2].append(3) }}",
    "{{ range(1000000) | length }}",
    "{{ unknownfunc() }}",
    "{{ 1 | nosuchfilter }}",
    "{% if %}{% endif %}",
    "{% for x in items %}",
    "{{ 'unterminated }}",
    "{% set ns = namespace(_x=1) %}",
    "{{ 1 / 0 }}",
    "{{ none + 1 }}",
    "{{ items['a'] }}|{{ d[0] }}",
    "{{ msgs[0].content.strip() }}{{ msgs[1]['content'] | trim }}{{ msgs | length }}",
    "{%- for m in msgs -%}{{- m.role + ': ' + m.content }}{%- if not loop.last %}\n{% endif -%}{%- endfor -%}",
    "{{ d | items | list }}|{{ missing | items | list }}|{{ missing | length }}|{{ missing | list }}|{{ missing | join(',') }}|{% for x in missing %}x{% endfor %}",
    "{{ dict(a=1, b='x') }}|{{ dict(a=1).a }}|{{ {'a': 1}.items() | list }}|{{ namespace(a=1).a }}",
    "{{ 'x' is sameas 'x' }}|{{ none is sameas none }}|{{ (1 + 2) * 3 }}|{{ 2 ** 3 ** 2 }}|{{ -2 ** 2 }}|{{ -items | length }}",
    "{{ 'ab' ~ 'cd' | upper }}|{{ 1 ~ 2 + 3 }}|{{ 'a' ~ missing ~ 'b' }}|{{ not 1 == 2 }}|{{ 1 in [1] and 2 not in [1] }}",
    "{{ '%s-%d' % ('a', 3) }}|{{ '%s' % 'x' }}|{{ '%s' | format('y') }}",
    "{{ items | sum }}|{{ items | min }}|{{ items | max }}|{{ items | reverse | list }}|{{ 'abc' | reverse }}|{{ items | batch(2) | list }}",
    "{{ [none, false, 0] | tojson }}|{{ 12345678901234 }}|{{ 2.0 * 3 }}|{{ 10 / 4 }}|{{ 1 - 0.9 }}",
    "{{ '\\u00e9\\x41\\101' }}|{{ 'a' 'b' }}|{{ 1_000 }}|{{ True }}{{ False }}{{ None }}",
    "{{ s[100:] }}|{{ items[1:100] }}|{{ items[-100:1] }}|{{ items[::2] }}|{{ 'abcdef'[-2:] }}",
    "{% if messages is defined %}x{% elif items %}y{% else %}z{% endif %}",
    "{{ msgs[0] }}|{{ nested }}|{{ [d] }}",
    "{% set x = {'a': [1, 2]} %}{{ x.a[1] }}|{{ x['a'] | length }}|{{ (x.a + [3]) | join('-') }}",
    "{{ 'a' == 'a' and 'b' or 'c' }}|{{ '' or none or 0 }}|{{ [] and 1 }}",
    "{{ loop }}|{% for x in [1] %}{{ loop.depth }}{{ loop.depth0 }}{% endfor %}",
    "{{ 'A' | lower is string }}|{{ 'abc' is lower }}|{{ 'ABC' is upper }}",
    "{% generation %}gen{{ 1 }}{% endgeneration %}",
    "{{ [3, 1, 2] | sort | first }}|{{ words | map('lower') | sort | join }}|{{ msgs | map(attribute='content') | map('lower') | list }}",
    "{% for m in msgs | selectattr('role', 'in', ['user', 'assistant']) %}{{ m.content }}{% endfor %}",
    "{{ (msgs | last).role }}|{{ msgs[-1].role == 'assistant' }}|{{ msgs | selectattr('role', '==', 'system') | list | length > 0 }}",
    "{% set content = '<think>\\nabc\\n</think>\\n\\nanswer' %}{{ content.split('</think>')[-1].lstrip('\\n') }}|{{ content.split('<think>')[-1].split('</think>')[0].rstrip('\\n').lstrip('\\n') }}",
    "{{ 'Line1\\nLine2' | replace('\\n', '\\\\n') }}|{{ 'a\\tb' | tojson }}|{{ '\\u2028\\x7f\\x01' | tojson }}",
    "{{ ['\\x01', '\\u00a0', '\\u200b', 'é', '\\U0001F600'] }}",
    "{% if false %}{{ 1 | nosuch }}{% endif %}ok",
    "{% if true %}{{ 1 | nosuch }}{% endif %}",
    "{% for x in [] %}{{ x | nosuch }}{% endfor %}",
    "{{ 1 | nosuch if false else 2 }}|{{ 3 if true else 4 is nosuchtest }}",
    "{% if false %}{% for x in [] %}{{ x | nosuch }}{% endfor %}{% endif %}",
    "{% break %}",
    "{% for x in [1] %}{% macro m() %}{% continue %}{% endmacro %}{% endfor %}",
    "{% for x in [] %}{% else %}{% break %}{% endfor %}",
    "{% for x in [1, 2] %}{% if x == 1 %}{% continue %}{% endif %}{{ x }}{% endfor %}",
    "{% for x in [3, 4] %}{% for y in [1, 2] %}{% if y == 2 %}{% break %}{% endif %}{{ x }}{{ y }}{% endfor %}{% endfor %}",
    "{{ x is nosuchtest }}",
    "{{ 'é\\u2028😀\\x7f\\x1f\"' | tojson(ensure_ascii=true) }}|{{ {'k': 'ü'} | tojson(true, 1) }}|{{ [1, 'a'] | pprint }}|{{ 'x' | pprint }}",
    "{% if [] | select %}gen-true{% endif %}|{% if 5 | map('upper') %}lazy{% endif %}|{% if 3 | items %}lazy2{% endif %}|{{ [] | reject | list }}",
    "{{ 5 | map('upper') | list }}",
    "{{ items | select('odd') | length }}",
    "{% set g = items | select('odd') %}{{ g | list }}|{{ g | list }}|{{ (items | map('string'))[0] }}",
    "{{ 'straße ﬁx' | upper }}|{{ 'ß' | title }}|{{ 'ǆa' | capitalize }}|{{ 'İ'.lower() | length }}|{{ 'ǆ ß'.title() }}",
    "{{ [missing, n.x] }}|{{ missing is callable }}|{{ d.items() }}|{{ d.keys() }}|{{ d.values() }}|{{ 12 is lower }}|{{ 'ab' is lower }}",
    "{{ (1, 2) | indent }}",
    "{{ 3 | reverse }}",
    "{{ items | reverse | list }}|{% if [] | reverse %}rev-true{% endif %}",
    "{{ 'o' % [1] }}|{{ 'o' % {'a': 1} }}|{{ '%s!' % missing }}|{% if [] | select | reverse %}yes{% else %}no{% endif %}|{{ 'a' is string(1) }}",
    "{{ 'o' % 5 }}",
    "{{ x is iterable not in [1] }}",
    "{{ d | attr('a') }}|{{ 'abc' | attr('upper') is callable }}|{{ 2.5 | round(method='floor') }}|{{ {'a': 1} | tojson(separators=(' ,', ':  ')) }}",
]] + [
    ("{{ x }}|{{ x | tojson }}|{{ x.a }}", {"x": {"a": 1.0, "b": [1, 2.5, "s"], "c": None, "d": True}}),
    ("{% for m in messages %}{{ m['role'] }}:{{ m['content'] }};{% endfor %}", {"messages": [{"role": "user", "content": "hi"}]}),
    ("{{ tools | tojson(indent=4) }}", {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]}),
    ("{% if x is string %}s{% elif x is iterable %}i{% endif %}|{{ x[0].text }}", {"x": [{"type": "text", "text": "T"}]}),
]


def special_from_config(cfg):
    out = {}
    for k in NAMED:
        v = cfg.get(k)
        if isinstance(v, dict):
            v = v.get("content")
        if isinstance(v, str):
            out[k] = v
    return out


def c_string_literals(src, start):
    """Concatenate the C string literal(s) starting at src[start:]; returns (text, end)."""
    i = start
    parts = []
    while True:
        m = re.compile(r'\s*(u8)?"').match(src, i)
        if not m:
            break
        i = m.end()
        buf = []
        while src[i] != '"':
            if src[i] == "\\":
                buf.append(src[i:i + 2])
                i += 2
            else:
                buf.append(src[i])
                i += 1
        i += 1
        raw = "".join(buf)
        parts.append(raw.encode("utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8"))
    return "".join(parts), i


def import_llamacpp(root):
    mt = os.path.join(root, "models", "templates")
    for fn, name in LLAMACPP_TEMPLATES.items():
        with open(os.path.join(mt, fn), encoding="utf-8", newline="") as f:
            text = f.read()
        with open(os.path.join(OUT_DIR, name + ".jinja"), "w", encoding="utf-8", newline="") as f:
            f.write(text)
    with open(os.path.join(root, "tests", "test-chat-template.cpp"), encoding="utf-8") as f:
        src = f.read()
    for tname, name in LLAMACPP_TEST_TEMPLATES.items():
        key = '/* .name= */ "%s"' % tname.replace('"', '\\"')
        at = src.index(key)
        t_at = src.index("/* .template_str= */", at) + len("/* .template_str= */")
        text, _ = c_string_literals(src, t_at)
        with open(os.path.join(OUT_DIR, name + ".jinja"), "w", encoding="utf-8", newline="") as f:
            f.write(text)


def import_openvino(path):
    """openvino.genai tests/python_tests/data/tokenizer_configs.py: HF tokenizer_config chat templates
    (+ special tokens) of many model repos; a dict-valued chat_template holds named templates."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("ov_tokenizer_configs", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    have = set()
    for p in glob.glob(os.path.join(OUT_DIR, "*.jinja")):
        with open(p, encoding="utf-8", newline="") as f:
            have.add(f.read())
    sources = load_sources()
    for model, cfg in mod.get_tokenizer_configs().items():
        cts = cfg.get("chat_template")
        if isinstance(cts, str):
            cts = {"default": cts}
        for tname, text in cts.items():
            if text in have:
                continue
            have.add(text)
            name = re.sub(r"[^a-z0-9.]+", "-", model.lower()).strip("-")
            if tname != "default":
                name += "-" + re.sub(r"[^a-z0-9.]+", "-", tname.lower())
            with open(os.path.join(OUT_DIR, name + ".jinja"), "w", encoding="utf-8", newline="") as f:
                f.write(text)
            sources[name] = {"model": model, "template_name": tname, "source": "openvino.genai tokenizer_configs.py",
                             "special_tokens": special_from_config(cfg)}
    with open(os.path.join(OUT_DIR, "sources.json"), "w", encoding="utf-8") as f:
        json.dump(sources, f, ensure_ascii=False, indent=1, sort_keys=True)
        f.write("\n")


def load_sources():
    p = os.path.join(OUT_DIR, "sources.json")
    return json.load(open(p, encoding="utf-8")) if os.path.exists(p) else {}


def import_fixtures(root):
    for d in sorted(glob.glob(os.path.join(root, "tokenizers", "*"))):
        cfgp = os.path.join(d, "tokenizer_config.json")
        if not os.path.exists(cfgp):
            continue
        cfg = json.load(open(cfgp, encoding="utf-8"))
        ct = cfg.get("chat_template")
        if isinstance(ct, str):
            name = os.path.basename(d)
            with open(os.path.join(OUT_DIR, name + ".jinja"), "w", encoding="utf-8", newline="") as f:
                f.write(ct)
    for p in sorted(glob.glob(os.path.join(root, "chat_templates", "*.jinja"))):
        with open(p, encoding="utf-8", newline="") as f:
            text = f.read()
        with open(os.path.join(OUT_DIR, os.path.basename(p)), "w", encoding="utf-8", newline="") as f:
            f.write(text)


def special_tokens_for(name, sources):
    if name in sources:
        return sources[name]["special_tokens"]
    cfgp = os.path.join("/work/shared/fixtures/tokenizers", name, "tokenizer_config.json")
    if name in SPECIAL:
        return {k: v for k, v in SPECIAL[name].items() if v is not None}
    if os.path.exists(cfgp):
        return special_from_config(json.load(open(cfgp, encoding="utf-8")))
    return {}


def render(ctu, template, special, conv, agp):
    messages = [{k: v for k, v in m.items() if v is not None} for m in conv["messages"]]
    kwargs = dict(special)
    kwargs.update(conv.get("extra", {}))
    try:
        out, _ = ctu.render_jinja_template(conversations=[messages], tools=conv.get("tools"), chat_template=template,
                                           add_generation_prompt=agp, **kwargs)
        return {"output": out[0]}
    except Exception as e:  # the template raised: the C side must fail too
        return {"error": "%s: %s" % (type(e).__name__, e)}


def gen_goldens():
    import transformers.utils.chat_template_utils as ctu

    class FixedDT(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return NOW

    ctu.datetime = FixedDT
    convs = json.load(open(os.path.join(OUT_DIR, "conversations.json"), encoding="utf-8"))
    names = sorted(os.path.basename(p)[:-6] for p in glob.glob(os.path.join(OUT_DIR, "*.jinja")))
    manifest = {}
    sources = load_sources()
    lines = []
    nerr = 0
    for name in names:
        with open(os.path.join(OUT_DIR, name + ".jinja"), encoding="utf-8", newline="") as f:
            template = f.read()
        special = special_tokens_for(name, sources)
        manifest[name] = {"special_tokens": special}
        for conv in convs:
            for agp in (False, True):
                r = render(ctu, template, special, conv, agp)
                nerr += "error" in r
                rec = {"template": name, "conversation": conv["name"], "add_generation_prompt": agp}
                rec.update(r)
                lines.append(json.dumps(rec, ensure_ascii=False))
    with open(os.path.join(OUT_DIR, "templates.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, ensure_ascii=False, indent=1, sort_keys=True)
        f.write("\n")
    data = ("\n".join(lines) + "\n").encode("utf-8")
    zst = subprocess.run(["zstd", "-19", "-q", "-c"], input=data, stdout=subprocess.PIPE, check=True).stdout
    with open(os.path.join(OUT_DIR, "golden.jsonl.zst"), "wb") as f:
        f.write(zst)
    print("goldens: %d templates x %d conversations x 2 = %d renders (%d errors)" % (len(names), len(convs), len(lines), nerr))


def gen_cases():
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    import transformers.utils.chat_template_utils as ctu

    class FixedDT(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return NOW

    ctu.datetime = FixedDT
    out = []
    for tmpl, ctx in CASES:
        rec = {"template": tmpl, "context": ctx}
        try:
            t = ctu._compile_jinja_template(tmpl)
            rec["output"] = t.render(**ctx)
        except Exception as e:
            rec["error"] = "%s: %s" % (type(e).__name__, e)
        out.append(json.dumps(rec, ensure_ascii=False))
    assert jinja2.__version__ >= "3.1"
    with open(os.path.join(OUT_DIR, "cases.jsonl"), "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    print("cases: %d (%d errors)" % (len(out), sum('"error"' in l for l in out)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--import-llamacpp", metavar="DIR", help="llama.cpp source tree (e.g. llama-cpp-python sdist vendor/llama.cpp)")
    ap.add_argument("--import-fixtures", metavar="DIR", help="shared fixtures dir (tokenizers/, chat_templates/)")
    ap.add_argument("--import-openvino", metavar="FILE", help="openvino.genai tests/python_tests/data/tokenizer_configs.py")
    a = ap.parse_args()
    os.makedirs(OUT_DIR, exist_ok=True)
    if a.import_llamacpp:
        import_llamacpp(a.import_llamacpp)
    if a.import_fixtures:
        import_fixtures(a.import_fixtures)
    if a.import_openvino:
        import_openvino(a.import_openvino)
    gen_cases()
    gen_goldens()


if __name__ == "__main__":
    main()
