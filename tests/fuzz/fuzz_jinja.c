/* fuzz_jinja.c - libFuzzer target: the bytes are a Jinja template, parsed and
 * rendered against a small fixed chat context under tight limits.  Any input
 * must end in success or a clean error, never a crash, hang or leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text/jinja.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char CTX[] =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
    " {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Hi \\u00e9\"}]},"
    " {\"role\": \"assistant\", \"content\": \"\", \"reasoning_content\": \"r\", \"tool_calls\": [{\"id\": \"a1\","
    " \"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": {\"x\": 1.5, \"y\": [true, null]}}}]},"
    " {\"role\": \"tool\", \"content\": \"42\"}],"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {\"type\": \"object\"}}}],"
    " \"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"n\": 3, \"documents\": null}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static json_t *ctx;
    if (!ctx) ctx = json_loads(CTX, 0, NULL);
    mt_err err;
    mt_jinja_tmpl *t = NULL;
    if (mt_jinja_parse(&t, (const char *)data, size, &err) != MT_OK) return 0;
    mt_jinja_limits lim = {1 << 16, 20000, 16};
    char *out = NULL;
    size_t len = 0;
    if (mt_jinja_render(t, ctx, &lim, 1768473000LL, &out, &len, &err) == MT_OK && strlen(out) > len) abort();
    free(out);
    mt_jinja_free(t);
    return 0;
}
