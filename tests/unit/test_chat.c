/* test_chat.c - real model chat templates x conversations rendered byte-for-byte
 * like transformers' apply_chat_template (goldens in tests/data/templates,
 * made by tests/gen/gen_template_goldens.py), and chat template discovery. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/file.h"
#include "text/chat.h"

#define NOW_EPOCH 1768473000LL
#define DIR "tests/data/templates"

static json_t *find_conv(json_t *convs, const char *name) {
    size_t i;
    json_t *c;
    json_array_foreach(convs, i, c) if (!strcmp(json_string_value(json_object_get(c, "name")), name)) return c;
    return NULL;
}

static void goldens(void) {
    json_error_t je;
    json_t *convs = json_load_file(DIR "/conversations.json", 0, &je);
    json_t *manifest = json_load_file(DIR "/templates.json", 0, &je);
    CHECK(convs && manifest);
    if (!convs || !manifest) return;
    char *buf;
    size_t n;
    mt_err err = {0};
    CHECK_OK(mt_read_file(DIR "/golden.jsonl.zst", &buf, &n, &err), &err);
    if (!buf) return;
    int total = 0, same = 0, errors = 0, shown = 0;
    char *line = buf;
    while (line && *line) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        json_t *g = json_loads(line, 0, &je);
        line = nl ? nl + 1 : NULL;
        if (!g) { CHECK_MSG(0, "bad golden line: %s", je.text); continue; }
        const char *tname = json_string_value(json_object_get(g, "template"));
        json_t *conv = find_conv(convs, json_string_value(json_object_get(g, "conversation")));
        char path[512];
        snprintf(path, sizeof path, DIR "/%s.jinja", tname);
        char *tmpl = NULL;
        size_t tl;
        mt_err e = {0};
        CHECK_OK(mt_read_file(path, &tmpl, &tl, &e), &e);
        json_t *cfg = json_object_get(json_object_get(manifest, tname), "special_tokens");
        char *out = NULL;
        size_t len = 0;
        int rc = tmpl && conv ? mt_chat_render(tmpl, cfg, json_object_get(conv, "messages"), json_object_get(conv, "tools"),
                                               json_is_true(json_object_get(g, "add_generation_prompt")),
                                               json_object_get(conv, "extra"), NOW_EPOCH, &out, &len, &e)
                              : -1;
        json_t *want = json_object_get(g, "output");
        int ok;
        total++;
        if (want) ok = rc == 0 && len == json_string_length(want) && memcmp(out, json_string_value(want), len) == 0;
        else { ok = rc != 0; errors++; }
        same += ok;
        if (!ok && shown++ < 8)
            fprintf(stderr, "MISMATCH %s x %s agp=%d rc=%d %s\n--- want (%s)\n%s\n--- got\n%s\n---\n", tname,
                    json_string_value(json_object_get(g, "conversation")),
                    json_is_true(json_object_get(g, "add_generation_prompt")), rc, e.msg,
                    want ? "output" : "error", want ? json_string_value(want) : json_string_value(json_object_get(g, "error")),
                    out ? out : "");
        CHECK(ok);
        free(out);
        free(tmpl);
        json_decref(g);
    }
    printf("chat goldens: %d/%d renders byte-identical to transformers (%d expected errors)\n", same, total, errors);
    CHECK(total >= 600);
    free(buf);
    json_decref(convs);
    json_decref(manifest);
}

static void write_str(const char *path, const char *s) {
    mt_err e = {0};
    CHECK_OK(mt_write_file_atomic(path, s, strlen(s), &e), &e);
}

static void find(void) {
    char dir[] = "/tmp/mt_chat_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char p[256], *t = NULL;
    mt_err e = {0};
    CHECK_EQ_INT(mt_chat_template_find(dir, NULL, &t, &e), MT_ENOTFOUND);
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    write_str(p, "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"}, {\"name\": \"default\", \"template\": \"D\"}],"
                 " \"bos_token\": {\"content\": \"<s>\", \"lstrip\": false}, \"eos_token\": \"</s>\", \"pad_token\": null}");
    CHECK_OK(mt_chat_template_find(dir, NULL, &t, &e), &e);
    CHECK_STR(t, "D");
    free(t);
    CHECK_OK(mt_chat_template_find(dir, "tool_use", &t, &e), &e);
    CHECK_STR(t, "T");
    free(t);
    CHECK_EQ_INT(mt_chat_template_find(dir, "nope", &t, &e), MT_ENOTFOUND);
    snprintf(p, sizeof p, "%s/chat_template.jinja", dir);
    write_str(p, "J{{ bos_token }}{{ eos_token }}{{ pad_token is defined }}");
    CHECK_OK(mt_chat_template_find(dir, NULL, &t, &e), &e);
    CHECK_STR(t, "J{{ bos_token }}{{ eos_token }}{{ pad_token is defined }}");
    /* AddedToken dicts become strings, null tokens are absent */
    json_error_t je;
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    json_t *cfg = json_load_file(p, JSON_DECODE_INT_AS_REAL, &je);
    char *out = NULL;
    size_t len;
    json_t *empty = json_array();
    CHECK_OK(mt_chat_render(t, cfg, empty, NULL, 0, NULL, NOW_EPOCH, &out, &len, &e), &e);
    CHECK_STR(out, "J<s></s>False");
    free(out);
    free(t);
    json_decref(cfg);
    unlink(p);
    snprintf(p, sizeof p, "%s/chat_template.jinja", dir);
    unlink(p);
    rmdir(dir);
    /* the shared fixtures, when present beside the checkout */
    if (mt_is_dir("../shared/fixtures/tokenizers/qwen3")) {
        CHECK_OK(mt_chat_template_find("../shared/fixtures/tokenizers/qwen3", NULL, &t, &e), &e);
        CHECK(t && strstr(t, "<|im_start|>") != NULL);
        free(t);
        CHECK_EQ_INT(mt_chat_template_find("../shared/fixtures/tokenizers/llama2", NULL, &t, &e), MT_ENOTFOUND);
    }
    /* a syntax error names the line */
    CHECK_EQ_INT(mt_chat_render("ok\n{% if %}", NULL, empty, NULL, 1, NULL, NOW_EPOCH, &out, &len, &e), MT_EFORMAT);
    CHECK(strstr(e.msg, "template line 2") != NULL);
    json_decref(empty);
}

int main(void) {
    goldens();
    find();
    return check_report("chat");
}
