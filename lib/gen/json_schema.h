/* json_schema.h - structured output: JSON Schema, "any JSON object" and regular
 * expressions turned into GBNF grammar text (gen/grammar.h parses and runs it).
 *
 * Every function returns MT_OK and a malloc'd, NUL-terminated GBNF text whose start
 * rule is "root" (the caller frees it), or an error code with a one-line message in
 * err: MT_EUNSUPPORTED for a keyword, format or regex construct outside the subset
 * below (the message names it and where it is), MT_EINVAL for a malformed schema or
 * regex, MT_ELIMIT for sizes past the limits below, MT_ENOMEM.
 *
 * The JSON layout the grammars accept (one canonical form per value, so generation
 * cannot wander): no whitespace before or after the document; between tokens at most
 * one space, or one newline followed by up to 20 spaces or tabs (pretty-printed
 * documents up to ten levels of two-space indentation match); object members in a
 * fixed order (required properties in schema order, then the optional ones in schema
 * order, each of which may be left out, then any additional properties); strings hold
 * raw UTF-8 with the escapes \" \\ \b \f \n \r \t and \u00xx (lower-case hex) for the
 * other control characters only; integers without a leading zero, a '+', or "-0";
 * numbers in JSON's own syntax with at most 16 integer digits, 16 fraction digits and a
 * 3-digit exponent (integers: 16 digits), so that an answer cannot run away in digits.
 *
 * Schema subset: type (one or a list), properties, required, additionalProperties
 * (false when absent beside "properties", true when there are none; true or a schema
 * when given: extra members then have any other name), enum, const, items,
 * prefixItems, minItems, maxItems, uniqueItems false, anyOf / oneOf (alternatives;
 * oneOf's "exactly one" is not enforced, so overlapping alternatives accept more),
 * allOf and the keywords beside an anyOf / oneOf / $ref (merged keyword by keyword:
 * types intersected, bounds tightened, properties and required united; other
 * conflicts refused), $ref to any "#..." JSON pointer of the same document (recursion
 * allowed; a $ref that names itself, or left recursion, is refused), $defs /
 * definitions, pattern (a regex as below, ECMA search semantics: a side without its
 * anchor lets anything come before or after; '$' is the end of the string), format
 * (date and date-time exact incl. leap years, time as RFC 3339 full-time with upper-case
 * 'T'/'Z', uuid, and email as the conservative local@domain.tld form
 * [A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+; other formats refused; format or
 * pattern beside min/maxLength refused), minLength / maxLength (in code points),
 * minimum / maximum / exclusiveMinimum / exclusiveMaximum (exact: for integers any
 * bounds within +-1e18; for "number" whole-number bounds within +-1e18, the numbers
 * then written without an exponent; other number bounds refused).  Annotations (title, description,
 * $schema, $id, $comment, examples, default, deprecated, readOnly, writeOnly) are
 * ignored.  A schema without "type" accepts every type, each with the keywords that
 * apply to it. */
#ifndef MT_JSON_SCHEMA_H
#define MT_JSON_SCHEMA_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

/* Limits: nesting of the schema, repetition counts ({m,n}, minItems, maxLength...),
 * and the size of the GBNF text. */
#define MT_SCHEMA_MAX_DEPTH 64
#define MT_SCHEMA_MAX_REPEAT 4096
#define MT_SCHEMA_MAX_GBNF (4u << 20)

/* GBNF accepting exactly the JSON documents schema validates (within the subset and
 * layout above). schema is borrowed. */
int mt_json_schema_to_gbnf(json_t *schema, char **gbnf, mt_err *err);

/* Any JSON object (OpenAI's {"type": "json_object"}), same layout. */
int mt_json_object_gbnf(char **gbnf, mt_err *err);

/* An OpenAI response_format object: {"type": "json_schema", "json_schema": {"name":
 * ..., "schema": {...}, "strict": ...}}, {"type": "json_object"}; {"type": "text"}
 * gives MT_OK with *gbnf = NULL (no constraint). */
int mt_response_format_gbnf(json_t *response_format, char **gbnf, mt_err *err);

/* A regular expression -> GBNF whose sentences are exactly the strings the whole of
 * which it matches (as Python's re.fullmatch with re.ASCII).  Subset: literals (UTF-8),
 * escapes (\d \w \s \D \W \S, \t \n \r \f \v \0, \xHH, \uHHHH, any escaped punctuation),
 * classes [a-z] [^...] with those escapes, '.' (any character but newline), groups
 * (...), (?:...), (?P<name>...), (?<name>...), alternation |, quantifiers * + ? {m}
 * {m,} {m,n} {,n} (a lazy '?' suffix is accepted and means the same), ^ at the start
 * and $ at the end of a top-level alternative.  Backreferences, lookarounds, word
 * boundaries, inline flags and possessive quantifiers are refused by name. */
int mt_regex_to_gbnf(const char *re, size_t n, char **gbnf, mt_err *err);

/* For json_schema.c: the GBNF expression (one term, no rules) for regex re.
 * json_content = 0: the whole string matches re (mt_regex_to_gbnf's sentences).
 * json_content = 1: the bytes between a JSON string's quotes, in the layout above,
 * whose decoded value re matches with search semantics ("pattern"). Appends to out. */
int mt_regex_gbnf_expr(const char *re, size_t n, int json_content, mt_buf *out, mt_err *err);

/* For json_schema.c: a GBNF literal (with its quotes) for the JSON string whose value
 * is the UTF-8 bytes s[0..n), in the layout above. */
void mt_gbnf_json_string(mt_buf *out, const char *s, size_t n);
/* For json_schema.c: a GBNF literal for code point c as written in a JSON string. */
void mt_gbnf_json_char(mt_buf *out, uint32_t c);
/* For json_schema.c: a GBNF term for one character of a JSON string's content (as
 * written in the layout above) that is none of the n code points cps. */
void mt_gbnf_json_char_except(mt_buf *out, const uint32_t *cps, size_t n);

/* The GBNF expression for one character of a JSON string's content in the layout
 * above (used by both files). */
#define MT_JSON_CHAR_GBNF \
    "( [^\\x22\\x5C\\x00-\\x1F] | \"\\\\\" [\\x22\\x5Cbfnrt] | \"\\\\u00\" ( \"0\" [0-7bef] | \"1\" [0-9a-f] ) )"

#endif
