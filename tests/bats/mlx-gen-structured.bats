#!/usr/bin/env bats
# mlx-gen structured output: --json-schema / --regex / --grammar and the per-record
# response_format (OpenAI Batch API shape), json_schema, regex and grammar fields.  Hundreds
# of generations at temperature 1 with the bundled model: every answer the grammar ended
# parses (jq) and validates (the run's summary line: the same automaton that constrained
# it; tests/gen/gen_structured.py checks the same kind of run with Python's jsonschema).

bats_require_minimum_version 1.5.0

setup_file() {
  export GEN="$PWD/${MT_BUILD:-build}/bin/mlx-gen"
  export M="$PWD/models/tinydocs-22m-4bit"
  export D="$PWD/tests/data/structured"
}

# records NAME N FIELD: N records at temperature 1 (seeds 0..N-1) asking for schema NAME
records() {
  for i in $(seq 0 $(($2 - 1))); do
    jq -nc --argjson s "$(cat "$D/$1.json")" --argjson i "$i" \
      '{id: $i, prompt: "Data:", max_tokens: 400, temperature: 1.0, seed: $i, json_schema: $s}'
  done
}

@test "200 answers under 5 schemas at temperature 1: all end, parse and validate" {
  for s in person ticket order choice event; do
    records $s 40 > "$BATS_TEST_TMPDIR/$s.jsonl"
    run --separate-stderr "$GEN" -m "$M" -t 2 --batch 8 < "$BATS_TEST_TMPDIR/$s.jsonl"
    [ "$status" -eq 0 ]
    echo "$output" > "$BATS_TEST_TMPDIR/$s.out"
    [[ "$stderr" == *"structured output: 40 answers, 40 ended by the grammar, 40 of them valid"* ]] || { echo "$s: $stderr"; return 1; }
    [ "$(jq -r .finish_reason "$BATS_TEST_TMPDIR/$s.out" | sort -u)" = stop ]
    jq -e -s 'length == 40 and all(.text | fromjson | type == "object")' "$BATS_TEST_TMPDIR/$s.out"
  done
  # what each schema demands, checked outside the automaton
  jq -e -s 'all(.text | fromjson | (.name | type == "string" and length >= 1 and length <= 24) and
            (.age | type == "number" and . == floor and . >= 0 and . <= 120) and
            (keys - ["name", "age", "email"] == []))' "$BATS_TEST_TMPDIR/person.out"
  jq -e -s 'all(.text | fromjson | (.id | test("^[A-Z]{2,4}-[0-9]{1,5}$")) and
            (.priority | IN("low", "medium", "high", "critical")) and .status == "open" and
            (.labels | length >= 1 and length <= 3) and (keys - ["id", "priority", "status", "labels", "due"] == []) and
            ((.due // "2000-01-01") | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}$")))' "$BATS_TEST_TMPDIR/ticket.out"
  jq -e -s 'all(.text | fromjson | (.customer.vip | type == "boolean") and (.items | length >= 1 and length <= 2) and
            all(.items[]; (.sku | test("^[a-z0-9]{3,8}$")) and (.qty >= 1 and .qty <= 99)) and
            (.note == null or (.note | type == "string")))' "$BATS_TEST_TMPDIR/order.out"
  jq -e -s 'all(.text | fromjson | (keys == ["answer", "confidence"] and (.answer | IN("yes", "no")) and
            (.confidence | type == "number")) or (keys == ["error"]))' "$BATS_TEST_TMPDIR/choice.out"
  jq -e -s 'all(.text | fromjson | (.uuid | test("^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")) and
            (.level > 0 and .level < 10) and (.tags | length <= 2))' "$BATS_TEST_TMPDIR/event.out"
}

@test "--json-schema for every record; a record's response_format overrides it, {\"type\": \"text\"} lifts it" {
  {
    echo '{"id": "a", "prompt": "Data:", "temperature": 1, "seed": 1, "max_tokens": 300}'
    jq -nc --argjson s "$(cat "$D/choice.json")" \
      '{id: "b", prompt: "Data:", temperature: 1, seed: 2, max_tokens: 300, response_format: {type: "json_schema", json_schema: {name: "c", strict: true, schema: $s}}}'
    echo '{"id": "c", "prompt": "Data:", "max_tokens": 8, "response_format": {"type": "text"}}'
    echo '{"id": "d", "prompt": "Data:", "temperature": 1, "seed": 4, "max_tokens": 300, "response_format": {"type": "json_object"}}'
  } > "$BATS_TEST_TMPDIR/in"
  run --separate-stderr "$GEN" -m "$M" -t 2 --json-schema "$D/person.json" < "$BATS_TEST_TMPDIR/in"
  [ "$status" -eq 0 ]
  echo "$output" | jq -e -s '(.[0].text | fromjson | has("name") and has("age")) and
                              (.[1].text | fromjson | has("answer") or has("error")) and
                              (.[2].text | (fromjson? // "not json") | type != "object") and
                              (.[3].text | fromjson | type == "object")'
  [[ "$stderr" == *"3 answers, 3 ended by the grammar, 3 of them valid"* ]]
}

@test "OpenAI Batch API lines with response_format: the message content parses" {
  jq -nc --argjson s "$(cat "$D/ticket.json")" \
    '{custom_id: "t1", method: "POST", url: "/v1/chat/completions", body: {model: "m", messages: [{role: "user", content: "A ticket"}],
      temperature: 1, seed: 5, max_tokens: 300, response_format: {type: "json_schema", json_schema: {name: "ticket", schema: $s}}}}' \
    > "$BATS_TEST_TMPDIR/in"
  out=$("$GEN" -m "$M" -q -t 2 < "$BATS_TEST_TMPDIR/in")
  echo "$out" | jq -e '.custom_id == "t1" and (.response.body.choices[0].message.content | fromjson | .status == "open")'
}

@test "--regex and a record's regex: every answer matches whole" {
  for i in $(seq 0 29); do echo "{\"id\": $i, \"prompt\": \"Code:\", \"temperature\": 1, \"seed\": $i, \"max_tokens\": 40}"; done \
    > "$BATS_TEST_TMPDIR/in"
  "$GEN" -m "$M" -q -t 2 --batch 6 --regex '[A-Z]{3}-[0-9]{2,4}( (ok|fail))?' < "$BATS_TEST_TMPDIR/in" > "$BATS_TEST_TMPDIR/out"
  [ "$(jq -r .text "$BATS_TEST_TMPDIR/out" | grep -cE '^[A-Z]{3}-[0-9]{2,4}( (ok|fail))?$')" -eq 30 ]
  echo '{"prompt": "Date:", "regex": "\\d{4}-\\d{2}-\\d{2}", "temperature": 1, "seed": 3}' | "$GEN" -m "$M" -q -t 2 \
    | jq -e '.text | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}$")'
}

@test "--grammar FILE (GBNF) and a record's grammar" {
  for i in $(seq 0 29); do echo "{\"id\": $i, \"prompt\": \"Is it safe?\", \"temperature\": 1, \"seed\": $i, \"max_tokens\": 60}"; done \
    > "$BATS_TEST_TMPDIR/in"
  "$GEN" -m "$M" -q -t 2 --batch 6 --grammar "$D/yesno.gbnf" < "$BATS_TEST_TMPDIR/in" > "$BATS_TEST_TMPDIR/out"
  [ "$(jq -r .text "$BATS_TEST_TMPDIR/out" | grep -cE '^(yes|no|maybe): [a-z]{1,10}( [a-z]{1,10}){0,5}\.$')" -eq 30 ]
  jq -nc '{prompt: "Pick:", grammar: "root ::= (\"red\" | \"green\" | \"blue\") \"!\"", temperature: 1, seed: 1}' \
    | "$GEN" -m "$M" -q -t 2 | jq -e '.text | IN("red!", "green!", "blue!")'
}

@test "bad constraints: the record fails with one line naming the problem, the others are answered" {
  {
    echo '{"id": "ok", "prompt": "x", "max_tokens": 3}'
    echo '{"id": "kw", "prompt": "x", "json_schema": {"type": "object", "patternProperties": {"a": {}}}}'
    echo '{"id": "re", "prompt": "x", "regex": "(a)\\1"}'
    echo '{"id": "gb", "prompt": "x", "grammar": "root ::= undefined-rule"}'
    echo '{"id": "two", "prompt": "x", "regex": "a", "grammar": "root ::= \"a\""}'
    echo '{"id": "rf", "prompt": "x", "response_format": {"type": "xml"}}'
  } > "$BATS_TEST_TMPDIR/in"
  run --separate-stderr "$GEN" -m "$M" -t 2 < "$BATS_TEST_TMPDIR/in"
  [ "$status" -eq 3 ]
  [ "$(echo "$output" | jq -r 'if .error then "E" else "T" end' | tr -d '\n')" = "TEEEEE" ]
  [[ "$stderr" == *'line 2: "json_schema": json schema: unsupported keyword "patternProperties" at /'* ]]
  [[ "$stderr" == *'line 3: "regex": '*'backreference'* ]]
  [[ "$stderr" == *'line 4: "grammar": '*'undefined-rule'* ]]
  [[ "$stderr" == *'line 5: "response_format", "json_schema", "regex" and "grammar" exclude each other'* ]]
  [[ "$stderr" == *'line 6: "response_format": '* ]]
  [ "$(echo "$stderr" | grep -c 'line ')" -eq 5 ]
}

@test "bad command-line constraints stop the run before any record, in one line" {
  printf 'root ::= "a" |\n  (\n' > "$BATS_TEST_TMPDIR/bad.gbnf"
  run --separate-stderr "$GEN" -m "$M" -t 2 --grammar "$BATS_TEST_TMPDIR/bad.gbnf" -p x
  [ "$status" -ne 0 ]
  [[ "$stderr" == "mlx-gen: --grammar $BATS_TEST_TMPDIR/bad.gbnf: "* ]]
  [ "$(echo "$stderr" | wc -l)" -eq 1 ]
  run --separate-stderr "$GEN" -m "$M" -t 2 --json-schema /nonexistent.json -p x
  [ "$status" -ne 0 ]
  [[ "$stderr" == "mlx-gen: --json-schema /nonexistent.json: "* ]]
  run --separate-stderr "$GEN" -m "$M" -t 2 --regex a --grammar "$D/yesno.gbnf" -p x
  [ "$status" -ne 0 ]
  [[ "$stderr" == *"exclude each other"* ]]
}

@test "constrained answers equal --batch 1 under --reproducible (each sequence's own grammar state)" {
  records order 12 > "$BATS_TEST_TMPDIR/in"
  a=$("$GEN" -m "$M" -q -t 2 --reproducible --batch 1 < "$BATS_TEST_TMPDIR/in")
  b=$("$GEN" -m "$M" -q -t 2 --reproducible --batch 5 < "$BATS_TEST_TMPDIR/in")
  [ "$a" = "$b" ]
}
