/* test_core.c - errors, file helpers (zstd, atomic write, mmap) and the JSONL loop. */
#include <stdlib.h>
#include <unistd.h>
#include <zstd.h>
#include "check.h"
#include "core/err.h"
#include "core/file.h"
#include "core/jsonl.h"
#include "core/pool.h"
#include <stdatomic.h>
#include "core/sig.h"
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* Handler: echoes "text" upper-cased as "out"; fails on text "bad". */
static int upper_fn(void *user, json_t *rec, size_t lineno, json_t **out, mt_err *err) {
    (void)lineno;
    int *calls = user;
    (*calls)++;
    const char *t;
    size_t n;
    MT_TRY(mt_json_get_string(rec, "text", &t, &n, 1, err));
    if (strcmp(t, "bad") == 0) return mt_seterr(err, MT_EINVAL, "text is bad");
    char *u = malloc(n + 1);
    for (size_t i = 0; i < n; i++) u[i] = (t[i] >= 'a' && t[i] <= 'z') ? t[i] - 32 : t[i];
    *out = json_object();
    json_object_set_new(*out, "out", json_stringn(u, n));
    free(u);
    return MT_OK;
}

static char *run_loop(const char *input, int text_mode, mt_jsonl_stats *st, int *calls, int *rc) {
    FILE *in = fmemopen((void *)input, strlen(input), "r");
    char *obuf = NULL;
    size_t olen = 0;
    FILE *out = open_memstream(&obuf, &olen);
    FILE *errf = fopen("/dev/null", "w");
    mt_jsonl_opts o = {.prog = "test", .text_mode = text_mode};
    mt_err e = {0};
    *rc = mt_jsonl_run(in, out, errf, &o, upper_fn, calls, st, &e);
    fclose(in);
    fclose(out);
    fclose(errf);
    return obuf;
}

static void test_jsonl(void) {
    mt_jsonl_stats st;
    int calls = 0, rc;
    char *o = run_loop("{\"id\":\"a\",\"text\":\"hi\"}\n\n{\"text\":\"x\"}\n{broken\n"
                       "{\"id\":7,\"text\":\"bad\"}\n[1]\n{\"id\":null,\"text\":\"z\"}", 0, &st, &calls, &rc);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(st.records, 6);
    CHECK_EQ_INT(st.ok, 3);
    CHECK_EQ_INT(st.failed, 3);
    CHECK_EQ_INT(calls, 4);
    CHECK_STR(o, "{\"id\":\"a\",\"out\":\"HI\"}\n"
                 "{\"id\":3,\"out\":\"X\"}\n"
                 "{\"id\":4,\"error\":\"line 4: invalid JSON at column 7: string or '}' expected near 'broken'\"}\n"
                 "{\"id\":7,\"error\":\"line 5: text is bad\"}\n"
                 "{\"id\":6,\"error\":\"line 6: record is not a JSON object\"}\n"
                 "{\"id\":null,\"out\":\"Z\"}\n");
    CHECK_EQ_INT(mt_jsonl_exit_code(rc, &st), MT_EXIT_PARTIAL);
    free(o);

    calls = 0;
    o = run_loop("abc\n\n  x y\r\n", 1, &st, &calls, &rc);
    CHECK_STR(o, "{\"id\":1,\"out\":\"ABC\"}\n{\"id\":2,\"out\":\"\"}\n{\"id\":3,\"out\":\"  X Y\"}\n");
    CHECK_EQ_INT(st.failed, 0);
    CHECK_EQ_INT(mt_jsonl_exit_code(rc, &st), MT_EXIT_OK);
    free(o);

    /* invalid UTF-8 in text mode and in JSON */
    o = run_loop("\xff\xfe\n{\"text\":\"\xc3\"}\n", 1, &st, &calls, &rc);
    CHECK(strstr(o, "line 1: not valid UTF-8") != NULL);
    CHECK_EQ_INT(st.failed, 2);
    free(o);
}

static void test_files(void) {
    mt_err e = {0};
    char dir[] = "/tmp/mt_test_core_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *p = mt_path_join(dir, "a/b/c");
    CHECK_OK(mt_mkdirs(p, &e), &e);
    CHECK(mt_is_dir(p));
    char *f = mt_path_join(p, "x.txt");
    CHECK_OK(mt_write_file_atomic(f, "hello", 5, &e), &e);
    char *buf;
    size_t n;
    CHECK_OK(mt_read_file(f, &buf, &n, &e), &e);
    CHECK_EQ_INT(n, 5);
    CHECK_STR(buf, "hello");
    free(buf);
    CHECK_EQ_INT(mt_read_file_max(f, 3, &buf, &n, &e), MT_ELIMIT);
    mt_mmap m;
    CHECK_OK(mt_mmap_open(&m, f, &e), &e);
    CHECK(m.size == 5 && memcmp(m.data, "hello", 5) == 0);
    mt_mmap_drop(m.data, m.size);   /* no whole page inside: nothing happens */
    CHECK(memcmp(m.data, "hello", 5) == 0);
    mt_mmap_close(&m);
    {   /* pages dropped from a map read back from the file */
        size_t big = 3 * 65536 + 123;
        char *bb = malloc(big);
        for (size_t i = 0; i < big; i++) bb[i] = (char)(i * 7 + 1);
        char *fb = mt_path_join(p, "big.bin");
        CHECK_OK(mt_write_file_atomic(fb, bb, big, &e), &e);
        mt_mmap mb;
        CHECK_OK(mt_mmap_open(&mb, fb, &e), &e);
        CHECK(mb.size == big && memcmp(mb.data, bb, big) == 0);
        mt_mmap_drop(mb.data + 100, big - 200);
        mt_mmap_drop(NULL, 10);
        CHECK_MSG(memcmp(mb.data, bb, big) == 0, "a dropped map reads back the file");
        mt_mmap_close(&mb);
        free(fb);
        free(bb);
    }
    /* zstd round trip through a .zst file */
    const char *msg = "compressed text, compressed text, compressed text";
    char cbuf[256];
    size_t cn = ZSTD_compress(cbuf, sizeof cbuf, msg, strlen(msg), 3);
    CHECK(!ZSTD_isError(cn));
    char *z = mt_path_join(p, "y.zst");
    CHECK_OK(mt_write_file_atomic(z, cbuf, cn, &e), &e);
    CHECK_OK(mt_read_file(z, &buf, &n, &e), &e);
    CHECK_STR(buf, msg);
    free(buf);
    CHECK_EQ_INT(mt_read_file_max(z, 10, &buf, &n, &e), MT_ELIMIT);
    /* truncated frame */
    CHECK_OK(mt_write_file_atomic(z, cbuf, cn / 2, &e), &e);
    CHECK(mt_read_file(z, &buf, &n, &e) != 0);
    CHECK_EQ_INT(mt_read_file("/nonexistent/x", &buf, &n, &e), MT_ENOTFOUND);
    CHECK(strstr(e.msg, "/nonexistent/x") != NULL);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    free(p); free(f); free(z);
}

static void test_err(void) {
    mt_err e = {0};
    CHECK_EQ_INT(mt_seterr(&e, MT_EFORMAT, "tensor %s", "w"), MT_EFORMAT);
    mt_preferr(&e, "file %d", 3);
    CHECK_STR(e.msg, "file 3: tensor w");
    CHECK_EQ_INT(mt_seterr(NULL, MT_EIO, "x"), MT_EIO);
}

typedef struct { long long *sum; int *hits; } pool_ctx;
static void pool_fn(void *c, size_t b, size_t e, int tid) {
    pool_ctx *pc = c;
    for (size_t i = b; i < e; i++) { pc->sum[tid] += (long long)i; pc->hits[i]++; }
}

/* tid 1 is slow: the caller's wait outlasts a short spin and must sleep */
static void slow_fn(void *c, size_t b, size_t e, int tid) {
    if (tid == 1) usleep(3000);
    pool_fn(c, b, e, tid);
}

/* Every index once, per-thread sums adding up, with MT_SPIN_US = 0 (always
 * sleep), short (workers fall asleep between jobs, the caller sleeps while a
 * slow worker finishes) and the default. */
static void test_pool_spin(const char *spin) {
    mt_err e = {0};
    if (spin) setenv("MT_SPIN_US", spin, 1);
    else unsetenv("MT_SPIN_US");
    for (int nt = 2; nt <= 3; nt++) {
        mt_pool *p;
        CHECK_OK(mt_pool_new(&p, nt, &e), &e);
        int bad = 0;
        for (int rep = 0; rep < 6; rep++) {
            size_t n = 64;
            long long sum[4] = {0};
            int hits[64] = {0};
            pool_ctx c = {sum, hits};
            mt_pool_for(p, n, 1, rep % 2 ? slow_fn : pool_fn, &c);
            for (size_t i = 0; i < n; i++) bad += hits[i] != 1;
            bad += sum[0] + sum[1] + sum[2] + sum[3] != 64 * 63 / 2;
            if (rep == 2) usleep(2000);   /* longer than a 50 us spin: workers sleep */
        }
        CHECK_EQ_INT(bad, 0);
        mt_pool_free(p);
    }
    unsetenv("MT_SPIN_US");
}

/* More threads than cores, thousands of short jobs: chunks are claimed by
 * whoever runs, so check that every index is done once, that a tid is never
 * used by two threads at once (callers keep per-tid scratch) and in range. */
typedef struct { int *hits; atomic_int *busy; atomic_int bad; int nt; } claim_ctx;
static void claim_fn(void *c, size_t b, size_t e, int tid) {
    claim_ctx *k = c;
    if (tid < 0 || tid >= k->nt) { atomic_fetch_add(&k->bad, 1); return; }
    if (atomic_exchange(&k->busy[tid], 1)) atomic_fetch_add(&k->bad, 1);
    for (size_t i = b; i < e; i++) k->hits[i]++;
    atomic_store(&k->busy[tid], 0);
}

static void test_pool_oversubscribed(void) {
    mt_err e = {0};
    int nt = 12;
    mt_pool *p;
    CHECK_OK(mt_pool_new(&p, nt, &e), &e);
    atomic_int busy[12];
    for (int i = 0; i < nt; i++) atomic_init(&busy[i], 0);
    int wrong = 0;
    for (int rep = 0; rep < 3000; rep++) {
        size_t n = 1 + (size_t)(rep * 7919) % 97;
        int hits[97] = {0};
        claim_ctx k = {hits, busy, 0, nt};
        mt_pool_for(p, n, 1 + (size_t)rep % 3, claim_fn, &k);
        for (size_t i = 0; i < n; i++) wrong += hits[i] != 1;
        wrong += atomic_load(&k.bad);
    }
    CHECK_EQ_INT(wrong, 0);
    mt_pool_free(p);
}

static void test_pool(void) {
    mt_err e = {0};
    test_pool_oversubscribed();
    test_pool_spin("0");
    test_pool_spin("50");
    test_pool_spin(NULL);
    for (int nt = 1; nt <= 4; nt++) {
        mt_pool *p;
        CHECK_OK(mt_pool_new(&p, nt, &e), &e);
        CHECK_EQ_INT(mt_pool_size(p), nt);
        size_t sizes[] = {0, 1, 3, 7, 1000, 4097};
        for (int rep = 0; rep < 50; rep++) {
            for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
                size_t n = sizes[s];
                long long sum[4] = {0};
                int *hits = calloc(n + 1, sizeof *hits);
                pool_ctx c = {sum, hits};
                mt_pool_for(p, n, 2, pool_fn, &c);
                long long tot = sum[0] + sum[1] + sum[2] + sum[3];
                int once = 1;
                for (size_t i = 0; i < n; i++) once &= hits[i] == 1;
                if (rep == 0 || tot != (long long)n * ((long long)n - 1) / 2 || !once) {
                    CHECK_EQ_INT(tot, (long long)n * ((long long)n - 1) / 2);
                    CHECK(once);
                }
                free(hits);
            }
        }
        mt_pool_free(p);
    }
    mt_pool_free(NULL);
}

/* ---- core/sig and the modes of written files ---- */

static int mode_of(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

/* New files and folders get 0666 / 0777 under the umask, like open(2) and mkdir(1). */
static void test_file_modes(void) {
    mt_err e = {0};
    char dir[] = "/tmp/mt_test_modes_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    mode_t old = umask(027);
    char *sub = mt_path_join(dir, "a/b"), *f = mt_path_join(dir, "a/f.txt"), *tmp = NULL;
    CHECK_OK(mt_mkdirs(sub, &e), &e);
    CHECK_EQ_INT(mode_of(sub), 0750);
    CHECK_OK(mt_write_file_atomic(f, "x", 1, &e), &e);
    CHECK_EQ_INT(mode_of(f), 0640);
    int fd = -1;
    CHECK_OK(mt_tmp_open(f, &tmp, &fd, &e), &e);
    CHECK(fd >= 0 && tmp && strncmp(tmp, f, strlen(f)) == 0 && strstr(tmp, ".tmp.") != NULL);
    CHECK_EQ_INT(mode_of(tmp), 0640);
    if (fd >= 0) close(fd);
    mt_tmp_discard(tmp);
    CHECK(access(tmp, F_OK) != 0);
    free(tmp);
    umask(old);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    free(sub); free(f);
}

/* SIGINT/SIGTERM remove the registered temporary file and folder (with what is
 * inside) and the process still ends by the signal; committed files stay. */
static void test_sig_cleanup(int sig) {
    mt_err e = {0};
    char dir[] = "/tmp/mt_test_sig_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *f = mt_path_join(dir, "out.npy"), *kept = mt_path_join(dir, "kept.txt"), *d = mt_path_join(dir, "model");
    char *ftmp = NULL, *dtmp = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int fd;
        signal(sig, SIG_DFL);   /* a run started in the background may inherit it ignored (kept by mt_sig_install) */
        if (mt_sig_install("test") || mt_tmp_open(f, &ftmp, &fd, &e) || mt_tmpdir_make(d, &dtmp, &e)) _exit(90);
        if (mt_write_file_atomic(kept, "k", 1, &e)) _exit(91);
        char *sub = mt_path_join(dtmp, "x/y/z"), *leaf = mt_path_join(sub, "w.safetensors");
        if (mt_mkdirs(sub, &e) || mt_write_file_atomic(leaf, "w", 1, &e)) _exit(92);
        for (int i = 0; i < 300; i++) {   /* more entries than one getdents64 buffer */
            char name[64];
            snprintf(name, sizeof name, "%s/file-with-a-longish-name-%03d", dtmp, i);
            int k = open(name, O_CREAT | O_WRONLY, 0644);
            if (k < 0) _exit(93);
            close(k);
        }
        raise(sig);
        _exit(94);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == sig, "status %#x", status);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "test \"$(ls -A %s)\" = kept.txt", dir);
    CHECK_MSG(system(cmd) == 0, "left in %s:", dir);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    free(f); free(kept); free(d);
}

/* A mapped file truncated under the process: one line naming it, exit 1. */
static void test_sig_bus(void) {
    char dir[] = "/tmp/mt_test_bus_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *f = mt_path_join(dir, "model.safetensors"), *errp = mt_path_join(dir, "stderr");
    char page[65536];
    memset(page, 7, sizeof page);
    mt_err e = {0};
    CHECK_OK(mt_write_file_atomic(f, page, sizeof page, &e), &e);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(errp, O_CREAT | O_WRONLY | O_TRUNC, 0644);
        if (fd < 0 || dup2(fd, 2) < 0) _exit(90);
        mt_mmap m;
        if (mt_sig_install("mlx-test") || mt_mmap_open(&m, f, &e)) _exit(91);
        if (truncate(f, 0) != 0) _exit(92);
        volatile unsigned char c = m.data[40000];
        (void)c;
        _exit(93);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %#x", status);
    char *msg = NULL, want[512];
    size_t n = 0;
    CHECK_OK(mt_read_file(errp, &msg, &n, &e), &e);
    snprintf(want, sizeof want, "mlx-test: %s: the file changed or was truncated while mapped (SIGBUS)\n", f);
    CHECK_STR(msg, want);
    free(msg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    free(f); free(errp);
}

int main(void) {
    test_file_modes();
    test_sig_cleanup(SIGINT);
    test_sig_cleanup(SIGTERM);
    test_sig_bus();
    test_pool();
    test_err();
    test_files();
    test_jsonl();
    return check_report("core");
}
