/* test_wtok.c - Whisper tokenizer (lib/stt/wtok) against openai-whisper's
 * tiktoken tokenizer: special ids for the three vocabulary sizes,
 * non_speech_tokens, encode / decode / decode_with_timestamps of sample texts
 * (goldens: tests/gen/gen_whisper_tokenizers.py -> tests/data/stt/wtok_golden.json). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "stt/wtok.h"

static void check_ids(const json_t *arr, const int32_t *ids, size_t n, const char *what)
{
    CHECK_MSG(json_array_size(arr) == n, "%s: %zu ids, want %zu", what, n, json_array_size(arr));
    if (json_array_size(arr) != n) return;
    for (size_t i = 0; i < n; i++)
        CHECK_MSG(json_integer_value(json_array_get(arr, i)) == ids[i], "%s: id %zu = %d", what, i, (int)ids[i]);
}

static void json_ids(const json_t *arr, int32_t **ids, size_t *n)
{
    *n = json_array_size(arr);
    *ids = malloc((*n + 1) * sizeof **ids);
    for (size_t i = 0; i < *n; i++) (*ids)[i] = (int32_t)json_integer_value(json_array_get(arr, i));
}

int main(void)
{
    json_error_t je;
    json_t *g = json_load_file("tests/data/stt/wtok_golden.json", 0, &je);
    CHECK(g != NULL);
    if (!g) return check_report("wtok");
    const json_t *texts = json_object_get(g, "texts");
    const json_t *vocabs = json_object_get(g, "vocab");
    mt_err err = {0};
    for (size_t v = 0; v < json_array_size(vocabs); v++) {
        const json_t *e = json_array_get(vocabs, v);
        int n_vocab = (int)json_integer_value(json_object_get(e, "n_vocab"));
        mt_wtok t;
        CHECK_OK(mt_wtok_open(&t, NULL, n_vocab, "share", &err), &err);
        if (err.code) break;
        CHECK_EQ_INT(t.multilingual, json_is_true(json_object_get(e, "multilingual")));
        CHECK_EQ_INT(t.n_langs, json_integer_value(json_object_get(e, "n_langs")));
#define SP(f) CHECK_EQ_INT(t.f, json_integer_value(json_object_get(e, #f)))
        SP(eot); SP(sot); SP(translate); SP(transcribe); SP(sot_lm); SP(sot_prev); SP(no_speech);
        SP(no_timestamps); SP(timestamp_begin); SP(lang_begin);
        CHECK_EQ_INT(t.lang_begin + t.n_langs - 1, json_integer_value(json_object_get(e, "lang_last")));

        int32_t *ns = NULL;
        size_t nns = 0;
        CHECK_OK(mt_wtok_non_speech(&t, &ns, &nns, &err), &err);
        check_ids(json_object_get(e, "non_speech"), ns, nns, "non_speech");
        free(ns);

        const json_t *cases = json_object_get(e, "cases");
        for (size_t i = 0; i < json_array_size(cases); i++) {
            const json_t *c = json_array_get(cases, i);
            const char *text = json_string_value(json_array_get(texts, i));
            int32_t *ids = NULL;
            size_t n = 0;
            CHECK_OK(mt_wtok_encode(&t, text, &ids, &n, &err), &err);
            check_ids(json_object_get(c, "ids"), ids, n, text);
            char *dec = NULL;
            CHECK_OK(mt_wtok_decode(&t, ids, n, &dec, &err), &err);
            CHECK_STR(dec, json_string_value(json_object_get(c, "dec")));
            free(dec);
            free(ids);
        }
        const json_t *mixed = json_object_get(e, "mixed");
        int32_t *ids;
        size_t n;
        json_ids(json_object_get(mixed, "ids"), &ids, &n);
        char *dec = NULL;
        CHECK_OK(mt_wtok_decode(&t, ids, n, &dec, &err), &err);
        CHECK_STR(dec, json_string_value(json_object_get(mixed, "dec")));
        free(dec);
        CHECK_OK(mt_wtok_decode_ts(&t, ids, n, &dec, &err), &err);
        CHECK_STR(dec, json_string_value(json_object_get(mixed, "dec_ts")));
        free(dec);
        CHECK_OK(mt_wtok_decode_text(&t, ids, n, &dec, &err), &err);
        CHECK_STR(dec, " 東京 ok");
        free(dec);
        free(ids);
        const json_t *part = json_object_get(e, "partial");
        for (size_t i = 0; i < json_array_size(part); i++) {
            const json_t *c = json_array_get(part, i);
            json_ids(json_object_get(c, "ids"), &ids, &n);
            CHECK_OK(mt_wtok_decode(&t, ids, n, &dec, &err), &err);
            CHECK_STR(dec, json_string_value(json_object_get(c, "dec")));
            free(dec);
            free(ids);
        }
        /* token bytes: specials by name, base tokens raw */
        size_t len;
        const char *b = mt_wtok_token_bytes(&t, t.timestamp_begin + 54, &len);
        CHECK(b && len == 8 && !memcmp(b, "<|1.08|>", 8));
        b = mt_wtok_token_bytes(&t, t.lang_begin + 2, &len);
        CHECK(b && len == 6 && !memcmp(b, "<|de|>", 6));
        b = mt_wtok_token_bytes(&t, 0, &len);
        CHECK(b && len == 1 && b[0] == '!');
        CHECK(mt_wtok_token_bytes(&t, n_vocab, &len) == NULL);
        int32_t seq[4];
        CHECK_EQ_INT(mt_wtok_sot_sequence(&t, -1, 0, 1, seq), 2);
        CHECK_EQ_INT(seq[1], t.no_timestamps);
        CHECK_EQ_INT(mt_wtok_sot_sequence(&t, 2, 1, 0, seq), 3);
        CHECK_EQ_INT(seq[1], t.lang_begin + 2);
        CHECK_EQ_INT(seq[2], t.translate);
        /* languages */
        CHECK_EQ_INT(mt_wtok_lang_index(&t, "de"), 2);
        CHECK_EQ_INT(mt_wtok_lang_index(&t, "German"), 2);
        CHECK_EQ_INT(mt_wtok_lang_index(&t, "mandarin"), 1);
        CHECK_EQ_INT(mt_wtok_lang_index(&t, "xx"), -1);
        CHECK_EQ_INT(mt_wtok_lang_index(&t, "yue"), t.n_langs == 100 ? 99 : -1);
        mt_wtok_close(&t);
    }
    CHECK_STR(mt_wtok_lang_code(99), "yue");
    CHECK_STR(mt_wtok_lang_name(80), "haitian creole");
    CHECK(mt_wtok_lang_code(100) == NULL);
    /* bad vocabulary sizes and a missing data folder */
    mt_wtok t;
    CHECK(mt_wtok_open(&t, NULL, 50000, "share", &err) == MT_EFORMAT);
    CHECK(mt_wtok_open(&t, NULL, 51865, "/nonexistent", &err) == MT_ENOTFOUND);
    /* the data folder of the build tree */
    char buf[4096];
    unsetenv("MLX_TOOLS_DATA");
    const char *d = mt_wtok_data_dir(buf, sizeof buf);
    CHECK(d && strstr(d, "share") != NULL);
    CHECK_OK(mt_wtok_open(&t, NULL, 51864, NULL, &err), &err);
    mt_wtok_close(&t);
    json_decref(g);
    return check_report("wtok");
}
