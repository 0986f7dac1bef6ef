/* test_asr.c - the recogniser registry's shared parts: greedy CTC (argmax per
 * frame, repeats merged, blanks dropped, first/last frames), and detection of
 * Whisper folders and unsupported model types. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "stt/asr.h"

static void ctc(void) {
    /* V = 4, blank 0; frames' arg-max: 1 1 0 1 2 2 0 0 3 (ties -> lower index) */
    const int best[] = {1, 1, 0, 1, 2, 2, 0, 0, 3};
    enum { T = 9, V = 4 };
    float lg[T * V];
    for (int t = 0; t < T; t++)
        for (int v = 0; v < V; v++) lg[t * V + v] = v == best[t] ? 1.0f : -1.0f;
    lg[8 * V + 2] = 1.0f;   /* tie at frame 8 between 2 and 3: argmax takes 2 */
    int32_t ids[T], f[T], l[T];
    size_t k = mt_ctc_greedy(lg, T, V, 0, ids, f, l);
    CHECK_EQ_INT(k, 4);
    const int32_t want[] = {1, 1, 2, 2}, wf[] = {0, 3, 4, 8}, wl[] = {1, 3, 5, 8};
    for (size_t i = 0; i < 4 && i < k; i++) {
        CHECK_EQ_INT(ids[i], want[i]);
        CHECK_EQ_INT(f[i], wf[i]);
        CHECK_EQ_INT(l[i], wl[i]);
    }
    /* all blank: nothing; NULL frame arrays accepted */
    for (int i = 0; i < T * V; i++) lg[i] = (i % V) == 0 ? 2.0f : 0.0f;
    CHECK_EQ_INT(mt_ctc_greedy(lg, T, V, 0, ids, NULL, NULL), 0);
    /* blank at another index */
    CHECK_EQ_INT(mt_ctc_greedy(lg, T, V, 3, ids, NULL, NULL), 1);
    CHECK_EQ_INT(ids[0], 0);
}

static void detect(void) {
    char dir[] = "/tmp/test_asr_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    const struct { const char *cfg; int rc, whisper; const char *msg; } cases[] = {
        {"{\"model_type\": \"whisper\", \"d_model\": 4}", MT_OK, 1, NULL},
        {"{\"n_audio_state\": 4, \"n_mels\": 80}", MT_OK, 1, NULL},
        {"{\"d_model\": 4}", MT_OK, 1, NULL},
        {"{\"model_type\": \"bert\"}", MT_EUNSUPPORTED, 0, "model_type 'bert' is not a speech recogniser"},
        {"{\"vocab_size\": 4}", MT_EUNSUPPORTED, 0, "names no model_type"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        FILE *fp = fopen(path, "w");
        CHECK(fp != NULL);
        if (!fp) break;
        fputs(cases[i].cfg, fp);
        fclose(fp);
        const mt_asr_family *fam = (const mt_asr_family *)1;
        mt_err err = {0};
        int rc = mt_asr_detect(dir, &fam, &err);
        CHECK_EQ_INT(rc, cases[i].rc);
        if (cases[i].whisper) CHECK(fam == NULL);
        if (cases[i].msg) CHECK_MSG(strstr(err.msg, cases[i].msg) != NULL, "%s", err.msg);
        /* loading a Whisper folder through the registry is refused */
        if (cases[i].whisper) {
            mt_asr *a = (mt_asr *)1;
            CHECK(mt_asr_load(&a, dir, NULL, &err) != MT_OK);
            CHECK(a == NULL);
        }
    }
    unlink(path);
    rmdir(dir);
    /* every registered family names at least one model type and its functions */
    size_t n;
    const mt_asr_family *const *fs = mt_asr_families(&n);
    for (size_t i = 0; i < n; i++) {
        CHECK(fs[i]->name && fs[i]->model_types && fs[i]->model_types[0]);
        CHECK(fs[i]->load && fs[i]->transcribe && fs[i]->free);
    }
}

int main(void) {
    ctc();
    detect();
    return check_report("asr");
}
