/*
** test_ops_extra.c — the extra op family: NonMaxSuppression, DFT/STFT,
** windows, MelWeightMatrix, string ops and the regex engine, TfIdf, the
** ai.onnx.ml ops, the training optimizers and Optional*: values against
** hand-worked results, errors naming the node, allocation-failure sweeps.
*/
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "harness.h"
#include "op_node.h"
#include "ir/ctx.h"
#include "ir/interp.h"
#include "ir/mem.h"
#include "ir/ops/extra_ops.h"

static bool near(double a, double b) { return fabs(a - b) <= 1e-5 + 1e-5 * fabs(b); }

static bool all_near(const kiln_tensor *t, const double *want, int count) {
    if (kiln_numel(t) != count) return false;
    for (int i = 0; i < count; i++) {
        double v = kiln_load_f64(t->dtype, t->data, i);
        if (!near(v, want[i])) {
            fprintf(stderr, "  element %d: got %.9g want %.9g\n", i, v, want[i]);
            return false;
        }
    }
    return true;
}

static bool strs_are(const kiln_tensor *t, int count, const char *const *want) {
    if (t->dtype != KILN_STRING || kiln_numel(t) != count) return false;
    for (int i = 0; i < count; i++)
        if (strcmp(((char **)t->data)[i], want[i])) {
            fprintf(stderr, "  string %d: got '%s' want '%s'\n", i, ((char **)t->data)[i], want[i]);
            return false;
        }
    return true;
}

/* ---- NonMaxSuppression ---- */

static void nms_selects_and_suppresses(void) {
    float boxes[16] = {0, 0, 1, 1, 0, 0.1f, 1, 1.1f, 0, 10, 1, 11, 0, 0, 1, 1};
    float scores[8] = {0.9f, 0.8f, 0.7f, 0.95f, /* class 1 */ 0.1f, 0.2f, 0.3f, 0.4f};
    int64_t max_out = 5;
    float iou = 0.5f, thr = 0.25f;
    kiln_tensor tb = tn_view(KILN_F32, 3, (int64_t[]){1, 4, 4}, boxes);
    kiln_tensor ts = tn_view(KILN_F32, 3, (int64_t[]){1, 2, 4}, scores);
    kiln_tensor tm = tn_view(KILN_I64, 1, (int64_t[]){1}, &max_out), ti = tn_view(KILN_F32, 0, NULL, &iou);
    kiln_tensor tt = tn_view(KILN_F32, 0, NULL, &thr);
    tnode t;
    tn_init(&t, "NonMaxSuppression", 11, 5, 1);
    CHECK(tn_run(&t, (const kiln_tensor *[]){&tb, &ts, &tm, &ti, &tt}) == KILN_OK);
    /* class 0: box 3 (0.95) suppresses 0 and 1 (identical / overlapping), box 2 is apart;
    ** class 1: only box 2 (0.3) and box 3 (0.4) pass the threshold and do not overlap */
    int64_t want[12] = {0, 0, 3, 0, 0, 2, 0, 1, 3, 0, 1, 2};
    CHECK(tn_dims_are(&t.out[0], 2, (int64_t[]){4, 3}));
    CHECK(kiln_numel(&t.out[0]) == 12 && !memcmp(t.out[0].data, want, sizeof want));
    tn_free(&t);
    /* no max_output_boxes_per_class: nothing is selected */
    tn_init(&t, "NonMaxSuppression", 11, 2, 1);
    CHECK(tn_run(&t, (const kiln_tensor *[]){&tb, &ts}) == KILN_OK);
    CHECK(tn_dims_are(&t.out[0], 2, (int64_t[]){0, 3}));
    tn_free(&t);
}

static void nms_center_format_and_errors(void) {
    float boxes[8] = {0.5f, 0.5f, 1, 1, 0.5f, 0.6f, 1, 1};
    float scores[2] = {0.5f, 0.9f};
    int64_t max_out = 10;
    kiln_tensor tb = tn_view(KILN_F32, 3, (int64_t[]){1, 2, 4}, boxes);
    kiln_tensor ts = tn_view(KILN_F32, 3, (int64_t[]){1, 1, 2}, scores);
    kiln_tensor tm = tn_view(KILN_I64, 0, NULL, &max_out);
    tnode t;
    tn_init(&t, "NonMaxSuppression", 11, 3, 1);
    tn_int(&t, "center_point_box", 1);
    CHECK(tn_run(&t, (const kiln_tensor *[]){&tb, &ts, &tm}) == KILN_OK);
    /* iou threshold 0: any overlap suppresses */
    CHECK(tn_dims_are(&t.out[0], 2, (int64_t[]){1, 3}) && ((int64_t *)t.out[0].data)[2] == 1);
    tn_free(&t);
    kiln_tensor bad = tn_view(KILN_F32, 3, (int64_t[]){1, 2, 3}, boxes);
    tn_init(&t, "NonMaxSuppression", 11, 3, 1);
    CHECK(tn_run(&t, (const kiln_tensor *[]){&bad, &ts, &tm}) == KILN_ERR_SHAPE && tn_names_node(&t));
    tn_free(&t);
}

/* ---- DFT, STFT ---- */

static void dft_forward_inverse_onesided(void) {
    float x[4] = {1, 2, 3, 4};
    kiln_tensor tx = tn_view(KILN_F32, 3, (int64_t[]){1, 4, 1}, x);
    tnode t;
    tn_init(&t, "DFT", 17, 1, 1);
    CHECK(tn_run(&t, (const kiln_tensor *[]){&tx}) == KILN_OK);
    CHECK(tn_dims_are(&t.out[0], 3, (int64_t[]){1, 4, 2}));
    CHECK(all_near(&t.out[0], (double[]){10, 0, -2, 2, -2, 0, -2, -2}, 8));
    kiln_tensor spec = t.out[0];
    t.out[0] = (kiln_tensor){0};
    tn_free(&t);
    /* the inverse gives the signal back, as complex values */
    tn_init(&t, "DFT", 17, 1, 1);
    tn_int(&t, "inverse", 1);
    CHECK(tn_run(&t, (const kiln_tensor *[]){&spec}) == KILN_OK);
    CHECK(all_near(&t.out[0], (double[]){1, 0, 2, 0, 3, 0, 4, 0}, 8));
    tn_free(&t);
    kiln_tensor_release(&spec);
    /* rfft keeps n/2+1 bins; irfft (opset 20, axis input) rebuilds the real signal */
    int64_t axis = 1;
    kiln_tensor ta = tn_view(KILN_I64, 0, NULL, &axis);
    tn_init(&t, "DFT", 20, 3, 1);
    t.n->inputs[1] = NULL;
    tn_int(&t, "onesided", 1);
    CHECK(tn_run(&t, (const kiln_tensor *[]){&tx, NULL, &ta}) == KILN_OK);
    CHECK(tn_dims_are(&t.out[0], 3, (int64_t[]){1, 3, 2}));
    spec = t.out[0];
    t.out[0] = (kiln_tensor){0};
    tn_free(&t);
    tn_init(&t, "DFT", 20, 3, 1);
    t.n->inputs[1] = NULL;
    tn_int(&t, "onesided", 1);
    tn_int(&t, "inverse", 1);
    CHECK(tn_run(&t, (const kiln_tensor *[]){&spec, NULL, &ta}) == KILN_OK);
    CHECK(tn_dims_are(&t.out[0], 3, (int64_t[]){1, 4, 1}));
    CHECK(all_near(&t.out[0], (double[]){1, 2, 3, 4}, 4));
    tn_free(&t);
    kiln_tensor_release(&spec);
}

static void dft_length_and_errors(void) {
    double x[6] = {1, 0, 1, 0, 1, 0}; /* complex [1, 1, 1] along axis 0 */
    int64_t len = 4, bad_axis = -1;
    kiln_tensor tx = tn_view(KILN_F64, 2, (int64_t[]){3, 2}, x), tl = tn_view(KILN_I64, 0, NULL, &len);
    kiln_tensor tbad = tn_view(KILN_I64, 0, NULL, &bad_axis);
    tnode t;
    tn_init(&t, "DFT", 20, 2, 1); /* axis -2 = 0: zero-padded to 4 */
    CHECK(tn_run(&t, (const kiln_tensor *[]){&tx, &tl}) == KILN_OK);
    CHECK(t.out[0].dtype == KILN_F64 && tn_dims_are(&t.out[0], 2, (int64_t[]){4, 2}));
    CHECK(all_near(&t.out[0], (double[]){3, 0, 0, -1, 1, 0, 0, 1}, 8));
    tn_free(&t);
    tn_init(&t, "DFT", 20, 3, 1);
    CHECK(tn_run(&t, (const kiln_tensor *[]){&tx, &tl, &tbad}) == KILN_ERR_INVALID && tn_names_node(&t));
    tn_free(&t);
    kiln_tensor odd = tn_view(KILN_F64, 2, (int64_t[]){2, 3}, x);
    tn_init(&t, "DFT", 17, 1, 1);
    CHECK(tn_run(&t, (const kiln_tensor *[]){&odd}) == KILN_ERR_SHAPE && tn_names_node(&t));
    tn_free(&t);
}

static void stft_frames_with_window(void) {
    float x[6] = {1, 2, 3, 4, 5, 6}, w[2] = {1, 0.5f};
    int64_t step = 2;
    kiln_tensor tx = tn_view(KILN_F32, 3, (int64_t[]){1, 6, 1}, x), ts = tn_view(KILN_I64, 0, NULL, &step);
    kiln_tensor tw = tn_view(KILN_F32, 1, (int64_t[]){2}, w);
    tnode t;
    tn_init(&t, "STFT", 17, 3, 1);
    CHECK(tn_run(&t, (const kiln_tensor *[]){&tx, &ts, &tw}) == KILN_OK);
    /* frames [1,2] [3,4] [5,6] weighted: sums and differences of (a, b/2) */
    CHECK(tn_dims_are(&t.out[0], 4, (int64_t[]){1, 3, 2, 2}));
    CHECK(all_near(&t.out[0], (double[]){2, 0, 0, 0, 5, 0, 1, 0, 8, 0, 2, 0}, 12));
    tn_free(&t);
    int64_t fl = 3;
    kiln_tensor tf = tn_view(KILN_I64, 0, NULL, &fl);
    tn_init(&t, "STFT", 17, 4, 1);
    CHECK(tn_run(&t, (const kiln_tensor *[]){&tx, &ts, &tw, &tf}) == KILN_ERR_SHAPE && tn_names_node(&t));
    tn_free(&t);
}

/* ---- windows, MelWeightMatrix ---- */

static void windows_periodic_symmetric(void) {
    int32_t four = 4, three = 3;
    kiln_tensor t4 = tn_view(KILN_I32, 0, NULL, &four), t3 = tn_view(KILN_I32, 0, NULL, &three);
    tnode t;
    tn_init(&t, "HannWindow", 17, 1, 1);
    CHECK(tn_run(&t, (const kiln_tensor *[]){&t4}) == KILN_OK);
    CHECK(t.out[0].dtype == KILN_F32 && all_near(&t.out[0], (double[]){0, 0.5, 1, 0.5}, 4));
    tn_free(&t);
    tn_init(&t, "HammingWindow", 17, 1, 1);
    tn_int(&t, "periodic", 0);
    tn_int(&t, "output_datatype", KILN_F64);
    CHECK(tn_run(&t, (const kiln_tensor *[]){&t3}) == KILN_OK);
    CHECK(t.out[0].dtype == KILN_F64 && all_near(&t.out[0], (double[]){4.0 / 46, 1, 4.0 / 46}, 3));
    tn_free(&t);
    tn_init(&t, "BlackmanWindow", 17, 1, 1);
    tn_int(&t, "periodic", 0);
    CHECK(tn_run(&t, (const kiln_tensor *[]){&t3}) == KILN_OK);
    CHECK(all_near(&t.out[0], (double[]){0, 1, 0}, 3));
    tn_free(&t);
    int32_t neg = -2;
    kiln_tensor tn = tn_view(KILN_I32, 0, NULL, &neg);
    tn_init(&t, "HannWindow", 17, 1, 1);
    CHECK(tn_run(&t, (const kiln_tensor *[]){&tn}) == KILN_ERR_INVALID && tn_names_node(&t));
    tn_free(&t);
}

static void mel_triangles_peak_at_one(void) {
    int32_t mels = 8, dft = 16, rate = 8192;
    float lo = 0, hi = 4096, beyond = 8000;
    kiln_tensor a = tn_view(KILN_I32, 0, NULL, &mels), b = tn_view(KILN_I32, 0, NULL, &dft);
    kiln_tensor c = tn_view(KILN_I32, 0, NULL, &rate), d = tn_view(KILN_F32, 0, NULL, &lo);
    kiln_tensor e = tn_view(KILN_F32, 0, NULL, &hi), f = tn_view(KILN_F32, 0, NULL, &beyond);
    tnode t;
    tn_init(&t, "MelWeightMatrix", 17, 5, 1);
    CHECK(tn_run(&t, (const kiln_tensor *[]){&a, &b, &c, &d, &e}) == KILN_OK);
    CHECK(tn_dims_are(&t.out[0], 2, (int64_t[]){9, 8}));
    for (int m = 0; m < 8; m++) {
        double peak = 0;
        for (int k = 0; k < 9; k++) peak = fmax(peak, ((float *)t.out[0].data)[k * 8 + m]);
        CHECK(peak == 1.0);
    }
    tn_free(&t);
    tn_init(&t, "MelWeightMatrix", 17, 5, 1);
    CHECK(tn_run(&t, (const kiln_tensor *[]){&a, &b, &c, &d, &f}) == KILN_ERR_INVALID && tn_names_node(&t));
    tn_free(&t);
}

/* ---- StringNormalizer, StringSplit ---- */

static void strnorm_caseless_utf8(void) {
    const char *x[4] = {"Ärger", "straße", "MONDAY", "été"};
    const char *stops[2] = {"ärger", "monday"};
    kiln_tensor tx = tn_view(KILN_STRING, 1, (int64_t[]){4}, x);
    tnode t;
    tn_init(&t, "StringNormalizer", 10, 1, 1);
    tn_strings(&t, "stopwords", 2, stops);
    tn_string(&t, "case_change_action", "UPPER");
    CHECK(tn_run(&t, (const kiln_tensor *[]){&tx}) == KILN_OK);
    CHECK(strs_are(&t.out[0], 2, (const char *[]){"STRAßE", "ÉTÉ"}));
    tn_free(&t);
    /* case-sensitive: nothing matches; [1, C] stays 2-D */
    kiln_tensor t2 = tn_view(KILN_STRING, 2, (int64_t[]){1, 4}, x);
    tn_init(&t, "StringNormalizer", 10, 1, 1);
    tn_strings(&t, "stopwords", 2, stops);
    tn_int(&t, "is_case_sensitive", 1);
    tn_string(&t, "case_change_action", "LOWER");
    CHECK(tn_run(&t, (const kiln_tensor *[]){&t2}) == KILN_OK);
    CHECK(tn_dims_are(&t.out[0], 2, (int64_t[]){1, 4}));
    CHECK(strs_are(&t.out[0], 4, (const char *[]){"ärger", "straße", "monday", "été"}));
    tn_free(&t);
    /* everything removed: one empty string, shape [1, 1] */
    kiln_tensor t1 = tn_view(KILN_STRING, 2, (int64_t[]){1, 1}, x + 2);
    tn_init(&t, "StringNormalizer", 10, 1, 1);
    tn_strings(&t, "stopwords", 2, stops);
    CHECK(tn_run(&t, (const kiln_tensor *[]){&t1}) == KILN_OK);
    CHECK(tn_dims_are(&t.out[0], 2, (int64_t[]){1, 1}) && strs_are(&t.out[0], 1, (const char *[]){""}));
    tn_free(&t);
    tn_init(&t, "StringNormalizer", 10, 1, 1);
    tn_string(&t, "case_change_action", "TITLE");
    CHECK(tn_run(&t, (const kiln_tensor *[]){&tx}) == KILN_ERR_INVALID && tn_names_node(&t));
    tn_free(&t);
}

static void strsplit_delimiters_and_maxsplit(void) {
    const char *x[3] = {"aXYbXYXYc", "  p  q r ", ""};
    kiln_tensor tx = tn_view(KILN_STRING, 1, (int64_t[]){3}, x);
    tnode t;
    tn_init(&t, "StringSplit", 20, 1, 2);
    tn_string(&t, "delimiter", "XY");
    CHECK(tn_run(&t, (const kiln_tensor *[]){&tx}) == KILN_OK);
    CHECK(tn_dims_are(&t.out[0], 2, (int64_t[]){3, 4}));
    CHECK(strs_are(&t.out[0], 12, (const char *[]){"a", "b", "", "c", "  p  q r ", "", "", "", "", "", "", ""}));
    CHECK(!memcmp(t.out[1].data, (int64_t[]){4, 1, 1}, 3 * sizeof(int64_t)));
    tn_free(&t);
    tn_init(&t, "StringSplit", 20, 1, 2);
    tn_int(&t, "maxsplit", 1);
    CHECK(tn_run(&t, (const kiln_tensor *[]){&tx}) == KILN_OK);
    CHECK(strs_are(&t.out[0], 6, (const char *[]){"aXYbXYXYc", "", "p", "q r ", "", ""}));
    CHECK(!memcmp(t.out[1].data, (int64_t[]){1, 2, 0}, 3 * sizeof(int64_t)));
    tn_free(&t);
}

/* ---- the regex engine and RegexFullMatch ---- */

static bool full_match(const char *pattern, const char *s) {
    xo_regex *re;
    char err[128];
    bool m = false;
    if (xo_regex_compile(pattern, strlen(pattern), &re, err, sizeof err)) {
        fprintf(stderr, "  pattern '%s': %s\n", pattern, err);
        return false;
    }
    CHECK(xo_regex_full_match(re, s, strlen(s), &m) == KILN_OK);
    xo_regex_free(re);
    return m;
}

static void regex_syntax_and_semantics(void) {
    static const struct {
        const char *p, *s;
        bool m;
    } cases[] = {
        {"abc", "abc", true},          {"abc", "abcd", false},          {"a|b|cd", "cd", true},
        {"(ab)+", "ababab", true},     {"(ab)+", "aba", false},         {"a{2,3}", "aaaa", false},
        {"a{2,3}", "aaa", true},       {"a{2,}", "aaaaaa", true},       {"a{2}", "a", false},
        {"x{,2}", "x{,2}", true},      {"[a-c]+z", "abcabz", true},     {"[^a-c]", "d", true},
        {"[^a-c]", "b", false},        {"[]a]+", "]a]", true},          {"[a-]+", "-a-", true},
        {"\\d+\\.\\d*", "12.", true},  {"\\w+", "ab_9", true},          {"\\W", "_", false},
        {"\\s\\S", "\tx", true},       {"[\\d\\s]+", "1 2", true},      {"[[:alpha:]]+", "abZ", true},
        {"[[:^digit:]]", "7", false},  {".", "\n", false},              {"(?s).", "\n", true},
        {"(?i)hello", "HeLLo", true},  {"(?i:a)b", "Ab", true},         {"(?i:a)b", "AB", false},
        {"^a$", "a", true},            {"a$b", "ab", false},            {"(?m)a$\\nb", "a\nb", true},
        {"\\bfoo\\b", "foo", true},    {"a\\Bb", "ab", true},           {"a\\bb", "ab", false},
        {"^.$", "é", true},            {"é+", "ééé", true},             {"(?i)É", "é", true},
        {"", "", true},                {"a*", "", true},                {"(a*)*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
        {"(a|aa)*", "aaaaaaa", true},  {"a+?b", "aab", true},           {"\\x41\\x{42}", "AB", true},
        {"\\Qa.b\\E", "a.b", true},    {"\\Qa.b\\E", "axb", false},     {"(?P<n>x)y", "xy", true},
        {"\\Aab\\z", "ab", true},      {"[\\]\\-]+", "]-", true},       {"a.c", "a\xff" "c", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK_MSG(full_match(cases[i].p, cases[i].s) == cases[i].m, "'%s' on '%s'", cases[i].p, cases[i].s);
    static const char *const bad[] = {"(", "a)", "a**", "*a", "[z-a]", "[a", "\\1", "x{1001}",
                                      "\\pL", "(?z)", "\\", "a{3,2}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        xo_regex *re = NULL;
        char err[128] = "";
        CHECK_MSG(xo_regex_compile(bad[i], strlen(bad[i]), &re, err, sizeof err) == KILN_ERR_INVALID,
                  "'%s' should be rejected", bad[i]);
        CHECK(err[0] != '\0');
    }
}

/* Random patterns over the metacharacters: each compiles or is rejected
** with a message, and matching never fails (run under ASan/UBSan). */
static void regex_random_patterns_are_safe(void) {
    static const char alphabet[] = "ab.|*+?(){}[]^$\\-,:0123dwsbBAzQEPx=<>i";
    static const char *const texts[] = {"", "a", "ab1", "b-a{2}", "\xc3\xa9z", "aaaaaaaaaaaaaaaaaaab"};
    uint32_t seed = 12345;
    int compiled = 0;
    for (int k = 0; k < 3000; k++) {
        char p[24];
        int len = (int)(seed % 20);
        for (int i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            p[i] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
        }
        seed = seed * 1103515245u + 12345u;
        xo_regex *re = NULL;
        char err[128] = "";
        kiln_status s = xo_regex_compile(p, (size_t)len, &re, err, sizeof err);
        CHECK(s == KILN_OK || (s == KILN_ERR_INVALID && err[0]));
        if (s) continue;
        compiled++;
        for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
            bool m;
            CHECK(xo_regex_full_match(re, texts[t], strlen(texts[t]), &m) == KILN_OK);
        }
        xo_regex_free(re);
    }
    CHECK(compiled > 300);
}

static void regex_op_on_tensor(void) {
    const char *x[3] = {"user@gmail.com", "user@hotmail.com", "gmail.com"};
    kiln_tensor tx = tn_view(KILN_STRING, 1, (int64_t[]){3}, x);
    tnode t;
    tn_init(&t, "RegexFullMatch", 20, 1, 1);
    tn_string(&t, "pattern", "[\\w.]+@(gmail|yahoo)\\.com");
    CHECK(tn_run(&t, (const kiln_tensor *[]){&tx}) == KILN_OK);
    CHECK(t.out[0].dtype == KILN_BOOL && !memcmp(t.out[0].data, (bool[]){true, false, false}, 3));
    tn_free(&t);
    tn_init(&t, "RegexFullMatch", 20, 1, 1);
    tn_string(&t, "pattern", "(unclosed");
    CHECK(tn_run(&t, (const kiln_tensor *[]){&tx}) == KILN_ERR_INVALID && tn_names_node(&t));
    tn_free(&t);
}

/* ---- TfIdfVectorizer ---- */

static void tfidf_weights_and_strings(void) {
    const char *x[6] = {"a", "b", "a", "b", "c", "a"};
    const char *pool[4] = {"a", "c", "a", "b"}; /* 1-grams a, c; the 2-gram (a b) */
    int64_t counts[2] = {0, 2}, idx[3] = {3, 0, 1};
    double w[4] = {0.5, 2, 3, 4};
    kiln_tensor tx = tn_view(KILN_STRING, 1, (int64_t[]){6}, x);
    tnode t;
    tn_init(&t, "TfIdfVectorizer", 9, 1, 1);
    tn_int(&t, "min_gram_length", 1);
    tn_int(&t, "max_gram_length", 2);
    tn_int(&t, "max_skip_count", 0);
    tn_string(&t, "mode", "TFIDF");
    tn_ints(&t, "ngram_counts", 2, counts);
    tn_ints(&t, "ngram_indexes", 3, idx);
    tn_strings(&t, "pool_strings", 4, pool);
    tn_floats(&t, "weights", 4, w);
    CHECK(tn_run(&t, (const kiln_tensor *[]){&tx}) == KILN_OK);
    /* counts: a 3 -> col 3, c 1 -> col 0, (a b) 2 -> col 1 */
    CHECK(tn_dims_are(&t.out[0], 1, (int64_t[]){4}) && all_near(&t.out[0], (double[]){0.5, 4, 0, 12}, 4));
    tn_free(&t);
    int32_t xi[4] = {7, 7, 8, 7};
    int64_t ipool[1] = {7}, c1[1] = {0}, i1[1] = {0};
    kiln_tensor txi = tn_view(KILN_I32, 2, (int64_t[]){2, 2}, xi);
    tn_init(&t, "TfIdfVectorizer", 9, 1, 1);
    tn_int(&t, "min_gram_length", 1);
    tn_int(&t, "max_gram_length", 1);
    tn_int(&t, "max_skip_count", 3);
    tn_string(&t, "mode", "IDF");
    tn_ints(&t, "ngram_counts", 1, c1);
    tn_ints(&t, "ngram_indexes", 1, i1);
    tn_ints(&t, "pool_int64s", 1, ipool);
    CHECK(tn_run(&t, (const kiln_tensor *[]){&txi}) == KILN_OK);
    CHECK(tn_dims_are(&t.out[0], 2, (int64_t[]){2, 1}) && all_near(&t.out[0], (double[]){1, 1}, 2));
    tn_free(&t);
    tn_init(&t, "TfIdfVectorizer", 9, 1, 1);
    tn_string(&t, "mode", "TF");
    tn_ints(&t, "ngram_counts", 1, c1);
    tn_ints(&t, "ngram_indexes", 1, i1);
    tn_ints(&t, "pool_int64s", 1, ipool);
    CHECK(tn_run(&t, (const kiln_tensor *[]){&tx}) == KILN_ERR_SHAPE && tn_names_node(&t));
    tn_free(&t);
}

/* ---- LabelEncoder, ArrayFeatureExtractor ---- */

static void labelenc_forms(void) {
    float xf[4] = {1.5f, NAN, 2, 1.5f};
    double kf[3] = {1.5, NAN, 1.5};
    const char *vs[3] = {"first", "nan", "last"};
    kiln_tensor tx = tn_view(KILN_F32, 1, (int64_t[]){4}, xf);
    tnode t;
    tn_init_dom(&t, "ai.onnx.ml", "LabelEncoder", 2, 1, 1);
    tn_floats(&t, "keys_floats", 3, kf);
    tn_strings(&t, "values_strings", 3, vs);
    tn_string(&t, "default_string", "?");
    CHECK(tn_run(&t, (const kiln_tensor *[]){&tx}) == KILN_OK);
    CHECK(strs_are(&t.out[0], 4, (const char *[]){"last", "nan", "?", "last"}));
    tn_free(&t);
    /* v1 both ways */
    const char *classes[2] = {"x", "y"}, *xs[3] = {"y", "z", "x"};
    int64_t xi[3] = {1, 5, 0};
    kiln_tensor ts = tn_view(KILN_STRING, 1, (int64_t[]){3}, xs), ti = tn_view(KILN_I64, 1, (int64_t[]){3}, xi);
    tn_init_dom(&t, "ai.onnx.ml", "LabelEncoder", 1, 1, 1);
    tn_strings(&t, "classes_strings", 2, classes);
    CHECK(tn_run(&t, (const kiln_tensor *[]){&ts}) == KILN_OK);
    CHECK(t.out[0].dtype == KILN_I64 && !memcmp(t.out[0].data, (int64_t[]){1, -1, 0}, 3 * sizeof(int64_t)));
    tn_free(&t);
    tn_init_dom(&t, "ai.onnx.ml", "LabelEncoder", 1, 1, 1);
    tn_strings(&t, "classes_strings", 2, classes);
    CHECK(tn_run(&t, (const kiln_tensor *[]){&ti}) == KILN_OK);
    CHECK(strs_are(&t.out[0], 3, (const char *[]){"y", "_Unused", "x"}));
    tn_free(&t);
    /* v4 tensors: int32 keys to double values with a default tensor */
    int32_t keys[2] = {10, 20}, x32[3] = {20, 30, 10};
    double vals[2] = {0.25, 0.5}, dflt = 9;
    kiln_tensor tk = tn_view(KILN_I32, 1, (int64_t[]){2}, keys), tv = tn_view(KILN_F64, 1, (int64_t[]){2}, vals);
    kiln_tensor td = tn_view(KILN_F64, 1, (int64_t[]){1}, &dflt), t32 = tn_view(KILN_I32, 1, (int64_t[]){3}, x32);
    tn_init_dom(&t, "ai.onnx.ml", "LabelEncoder", 4, 1, 1);
    tn_tensor(&t, "keys_tensor", &tk);
    tn_tensor(&t, "values_tensor", &tv);
    tn_tensor(&t, "default_tensor", &td);
    CHECK(tn_run(&t, (const kiln_tensor *[]){&t32}) == KILN_OK);
    CHECK(t.out[0].dtype == KILN_F64 && all_near(&t.out[0], (double[]){0.5, 9, 0.25}, 3));
    tn_free(&t);
    tn_init_dom(&t, "ai.onnx.ml", "LabelEncoder", 4, 1, 1);
    tn_tensor(&t, "keys_tensor", &tk);
    tn_tensor(&t, "values_tensor", &tv);
    CHECK(tn_run(&t, (const kiln_tensor *[]){&ts}) == KILN_ERR_SHAPE && tn_names_node(&t));
    tn_free(&t);
}

static void afe_picks_last_axis(void) {
    const char *x[3] = {"p", "q", "r"};
    int64_t idx[2] = {2, 0}, bad[1] = {3};
    kiln_tensor tx = tn_view(KILN_STRING, 1, (int64_t[]){3}, x), ti = tn_view(KILN_I64, 1, (int64_t[]){2}, idx);
    kiln_tensor tb = tn_view(KILN_I64, 1, (int64_t[]){1}, bad);
    tnode t;
    tn_init_dom(&t, "ai.onnx.ml", "ArrayFeatureExtractor", 1, 2, 1);
    CHECK(tn_run(&t, (const kiln_tensor *[]){&tx, &ti}) == KILN_OK);
    CHECK(tn_dims_are(&t.out[0], 2, (int64_t[]){1, 2}) && strs_are(&t.out[0], 2, (const char *[]){"r", "p"}));
    tn_free(&t);
    tn_init_dom(&t, "ai.onnx.ml", "ArrayFeatureExtractor", 1, 2, 1);
    CHECK(tn_run(&t, (const kiln_tensor *[]){&tx, &tb}) == KILN_ERR_INVALID && tn_names_node(&t));
    tn_free(&t);
}

/* ---- TreeEnsemble ---- */

/* Two stumps on feature 0 / feature 1 feeding targets 0 and 1. */
static void tree_setup(tnode *t, kiln_tensor *splits, kiln_tensor *modes, kiln_tensor *weights, int agg, int post) {
    static int64_t feat[2] = {0, 1}, tid[2] = {0, 2}, fid[2] = {1, 3}, leafs[2] = {1, 1}, roots[2] = {0, 1};
    static int64_t targets[4] = {0, 0, 1, 1}, miss[2] = {1, 0};
    tn_init_dom(t, "ai.onnx.ml", "TreeEnsemble", 5, 1, 1);
    tn_ints(t, "nodes_featureids", 2, feat);
    tn_ints(t, "nodes_truenodeids", 2, tid);
    tn_ints(t, "nodes_falsenodeids", 2, fid);
    tn_ints(t, "nodes_trueleafs", 2, leafs);
    tn_ints(t, "nodes_falseleafs", 2, leafs);
    tn_ints(t, "nodes_missing_value_tracks_true", 2, miss);
    tn_ints(t, "leaf_targetids", 4, targets);
    tn_ints(t, "tree_roots", 2, roots);
    tn_tensor(t, "nodes_splits", splits);
    tn_tensor(t, "nodes_modes", modes);
    tn_tensor(t, "leaf_weights", weights);
    tn_int(t, "n_targets", 3);
    tn_int(t, "aggregate_function", agg);
    tn_int(t, "post_transform", post);
}

static void tree_ensemble_aggregates(void) {
    float splits[2] = {0.5f, 2}, w[4] = {1, 2, 3, 4};
    uint8_t modes[2] = {0, 3}; /* x0 <= 0.5 ; x1 > 2 */
    float x[6] = {0, 3, 1, 1, NAN, 5};
    kiln_tensor ts = tn_view(KILN_F32, 1, (int64_t[]){2}, splits), tm = tn_view(KILN_U8, 1, (int64_t[]){2}, modes);
    kiln_tensor tw = tn_view(KILN_F32, 1, (int64_t[]){4}, w), tx = tn_view(KILN_F32, 2, (int64_t[]){3, 2}, x);
    tnode t;
    tree_setup(&t, &ts, &tm, &tw, 1, 0);
    CHECK(tn_run(&t, (const kiln_tensor *[]){&tx}) == KILN_OK);
    /* row 0: leaf 0 (1), leaf 2 (3); row 1: leaf 1 (2), leaf 3 (4); row 2: NaN tracks true -> 1, leaf 2 -> 3 */
    CHECK(tn_dims_are(&t.out[0], 2, (int64_t[]){3, 3}) && all_near(&t.out[0], (double[]){1, 3, 0, 2, 4, 0, 1, 3, 0}, 9));
    tn_free(&t);
    tree_setup(&t, &ts, &tm, &tw, 3, 2); /* MAX, then LOGISTIC; target 2 stays at -FLT_MAX -> 0 */
    CHECK(tn_run(&t, (const kiln_tensor *[]){&tx}) == KILN_OK);
    double l1 = 1 / (1 + exp(-1.0)), l3 = 1 / (1 + exp(-3.0));
    double l2 = 1 / (1 + exp(-2.0)), l4 = 1 / (1 + exp(-4.0));
    CHECK(all_near(&t.out[0], (double[]){l1, l3, 0, l2, l4, 0, l1, l3, 0}, 9));
    tn_free(&t);
    int64_t cyc_t[2] = {1, 0};
    tree_setup(&t, &ts, &tm, &tw, 1, 0);
    gir_attr *a = (gir_attr *)gir_attr_find(t.n, "nodes_trueleafs");
    a->ints = (int64_t[]){0, 0};
    a = (gir_attr *)gir_attr_find(t.n, "nodes_truenodeids");
    a->ints = cyc_t;
    a = (gir_attr *)gir_attr_find(t.n, "nodes_falseleafs");
    a->ints = (int64_t[]){0, 0};
    a = (gir_attr *)gir_attr_find(t.n, "nodes_falsenodeids");
    a->ints = cyc_t;
    CHECK(tn_run(&t, (const kiln_tensor *[]){&tx}) == KILN_ERR_INVALID && tn_names_node(&t));
    CHECK(strstr(kiln_errmsg(t.ctx), "cycle") != NULL);
    tn_free(&t);
}

/* One tree: node 0 tests x0 <= 1 (NaN goes true), leaves 1 and 2. */
static void legacy_setup(tnode *t, const char *op, const char *prefix) {
    static int64_t tree[3] = {0, 0, 0}, nodes[3] = {0, 1, 2}, feat[3] = {0, 0, 0}, tid[3] = {1, 0, 0};
    static int64_t fid[3] = {2, 0, 0}, miss[3] = {1, 0, 0}, ptree[3] = {0, 0, 0}, pnode[3] = {1, 2, 2};
    static int64_t pid[3] = {0, 1, 0};
    static double values[3] = {1, 0, 0}, weights[3] = {0.5, 2, 0.25};
    static const char *modes[3] = {"BRANCH_LEQ", "LEAF", "LEAF"};
    static char names[3][32];
    tn_init_dom(t, "ai.onnx.ml", op, 3, 1, 2);
    t->n->n_outputs = !strcmp(prefix, "class") ? 2 : 1;
    tn_ints(t, "nodes_treeids", 3, tree);
    tn_ints(t, "nodes_nodeids", 3, nodes);
    tn_ints(t, "nodes_featureids", 3, feat);
    tn_ints(t, "nodes_truenodeids", 3, tid);
    tn_ints(t, "nodes_falsenodeids", 3, fid);
    tn_ints(t, "nodes_missing_value_tracks_true", 3, miss);
    tn_floats(t, "nodes_values", 3, values);
    tn_strings(t, "nodes_modes", 3, modes);
    snprintf(names[0], sizeof names[0], "%s_treeids", prefix);
    snprintf(names[1], sizeof names[1], "%s_nodeids", prefix);
    snprintf(names[2], sizeof names[2], "%s_ids", prefix);
    tn_ints(t, names[0], 3, ptree);
    tn_ints(t, names[1], 3, pnode);
    tn_ints(t, names[2], 3, pid);
    tn_floats(t, !strcmp(prefix, "class") ? "class_weights" : "target_weights", 3, weights);
}

static void tree_legacy_forms(void) {
    float x[3] = {0, 5, NAN};
    kiln_tensor tx = tn_view(KILN_F32, 2, (int64_t[]){3, 1}, x);
    double base[2] = {1, -1};
    tnode t;
    legacy_setup(&t, "TreeEnsembleRegressor", "target");
    tn_floats(&t, "base_values", 2, base);
    CHECK(tn_run(&t, (const kiln_tensor *[]){&tx}) == KILN_OK);
    CHECK(t.out[0].dtype == KILN_F32 && tn_dims_are(&t.out[0], 2, (int64_t[]){3, 2}));
    CHECK(all_near(&t.out[0], (double[]){1.5, -1, 1.25, 1, 1.5, -1}, 6));
    tn_free(&t);
    const char *labels[2] = {"no", "yes"};
    legacy_setup(&t, "TreeEnsembleClassifier", "class");
    tn_strings(&t, "classlabels_strings", 2, labels);
    tn_string(&t, "post_transform", "SOFTMAX");
    CHECK(tn_run(&t, (const kiln_tensor *[]){&tx}) == KILN_OK);
    CHECK(strs_are(&t.out[0], 3, (const char *[]){"no", "yes", "no"}));
    double e = exp(1.75), z = 1 / (1 + e), q = 1 / (1 + exp(0.5));
    CHECK(all_near(&t.out[1], (double[]){1 - q, q, z, 1 - z, 1 - q, q}, 6));
    tn_free(&t);
    legacy_setup(&t, "TreeEnsembleRegressor", "target");
    gir_attr *m = (gir_attr *)gir_attr_find(t.n, "nodes_falsenodeids");
    m->ints = (int64_t[]){7, 0, 0};
    CHECK(tn_run(&t, (const kiln_tensor *[]){&tx}) == KILN_ERR_INVALID && tn_names_node(&t));
    tn_free(&t);
}

/* ---- training optimizers ---- */

static void optimizers_two_groups(void) {
    float r = 0.1f, x1 = 1, x2[2] = {1, 2}, g1 = -1, g2[2] = {-1, -3}, v1 = 2, v2[2] = {4, 1};
    int64_t step = 3;
    kiln_tensor tr = tn_view(KILN_F32, 0, NULL, &r), tt = tn_view(KILN_I64, 0, NULL, &step);
    kiln_tensor tx1 = tn_view(KILN_F32, 1, (int64_t[]){1}, &x1), tx2 = tn_view(KILN_F32, 1, (int64_t[]){2}, x2);
    kiln_tensor tg1 = tn_view(KILN_F32, 1, (int64_t[]){1}, &g1), tg2 = tn_view(KILN_F32, 1, (int64_t[]){2}, g2);
    kiln_tensor tv1 = tn_view(KILN_F32, 1, (int64_t[]){1}, &v1), tv2 = tn_view(KILN_F32, 1, (int64_t[]){2}, v2);
    const kiln_tensor *in[8] = {&tr, &tt, &tx1, &tx2, &tg1, &tg2, &tv1, &tv2};
    tnode t;
    tn_init_dom(&t, "ai.onnx.preview.training", "Momentum", 1, 8, 4);
    tn_float(&t, "alpha", 0.5);
    tn_float(&t, "beta", 0.25);
    tn_float(&t, "norm_coefficient", 0);
    tn_string(&t, "mode", "nesterov");
    CHECK(tn_run(&t, in) == KILN_OK);
    /* v' = 0.5 v + 0.25 g; x' = x - r (g + 0.5 v') */
    CHECK(all_near(&t.out[2], (double[]){0.75}, 1) && all_near(&t.out[3], (double[]){1.75, 0.5 - 0.75}, 2));
    CHECK(all_near(&t.out[0], (double[]){1 - 0.1 * (-1 + 0.375)}, 1));
    tn_free(&t);
    tn_init_dom(&t, "ai.onnx.preview.training", "Adagrad", 1, 8, 4);
    tn_float(&t, "decay_factor", 1);
    tn_float(&t, "epsilon", 0);
    CHECK(tn_run(&t, in) == KILN_OK);
    /* r' = 0.1 / 4; h' = h + g^2; x' = x - r' g / sqrt(h') */
    CHECK(all_near(&t.out[2], (double[]){3}, 1) && all_near(&t.out[3], (double[]){5, 10}, 2));
    CHECK(all_near(&t.out[1], (double[]){1 + 0.025 / sqrt(5), 2 + 0.025 * 3 / sqrt(10)}, 2));
    tn_free(&t);
    tn_init_dom(&t, "ai.onnx.preview.training", "Adam", 1, 8, 4);
    CHECK(tn_run(&t, in) == KILN_ERR_INVALID && tn_names_node(&t));
    tn_free(&t);
}

static void optional_ops(void) {
    float x[2] = {1, 2};
    kiln_tensor tx = tn_view(KILN_F32, 1, (int64_t[]){2}, x);
    tnode t;
    tn_init(&t, "OptionalHasElement", 18, 1, 1);
    t.n->inputs[0] = NULL;
    CHECK(tn_run(&t, (const kiln_tensor *[]){NULL}) == KILN_OK && !*(bool *)t.out[0].data);
    tn_free(&t);
    tn_init(&t, "OptionalHasElement", 18, 1, 1);
    CHECK(tn_run(&t, (const kiln_tensor *[]){&tx}) == KILN_OK && *(bool *)t.out[0].data);
    tn_free(&t);
    tn_init(&t, "OptionalGetElement", 18, 1, 1);
    CHECK(tn_run(&t, (const kiln_tensor *[]){&tx}) == KILN_OK && all_near(&t.out[0], (double[]){1, 2}, 2));
    tn_free(&t);
}

/* ---- allocation failures: every failure point gives an error, never a leak ---- */

static void sweep(tnode *t, const kiln_tensor *const *in) {
    CHECK(gir_bind_op(t->ctx, t->n) == KILN_OK);
    for (long k = 0; k < 2000; k++) {
        long live = kiln_mem_live();
        kiln_mem_fail_after(k);
        kiln_status s = gir_run_node(t->ctx, t->n, in, t->out);
        kiln_mem_fail_after(-1);
        if (s == KILN_OK) {
            for (int i = 0; i < t->n->n_outputs; i++) kiln_tensor_release(&t->out[i]);
            CHECK(kiln_mem_live() == live);
            return;
        }
        CHECK_MSG(s == KILN_ERR_NOMEM, "%s: %s", t->n->op_type, kiln_errmsg(t->ctx));
        CHECK_MSG(kiln_mem_live() == live, "%s leaks after failure %ld", t->n->op_type, k);
    }
    CHECK_MSG(false, "%s never succeeded", t->n->op_type);
}

static void allocation_sweeps(void) {
    float boxes[8] = {0, 0, 1, 1, 0, 0, 1, 1}, scores[2] = {0.5f, 0.6f}, sig[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int64_t max_out = 2, step = 2;
    const char *strs[2] = {"a b", "c"}, *keys[2] = {"a b", "c"};
    int64_t vals[2] = {1, 2};
    kiln_tensor tb = tn_view(KILN_F32, 3, (int64_t[]){1, 2, 4}, boxes);
    kiln_tensor ts = tn_view(KILN_F32, 3, (int64_t[]){1, 1, 2}, scores), tm = tn_view(KILN_I64, 0, NULL, &max_out);
    kiln_tensor tsig = tn_view(KILN_F32, 3, (int64_t[]){1, 8, 1}, sig), tstep = tn_view(KILN_I64, 0, NULL, &step);
    kiln_tensor tstr = tn_view(KILN_STRING, 1, (int64_t[]){2}, strs);
    tnode t;
    tn_init(&t, "NonMaxSuppression", 11, 3, 1);
    sweep(&t, (const kiln_tensor *[]){&tb, &ts, &tm});
    tn_free(&t);
    tn_init(&t, "DFT", 17, 1, 1);
    sweep(&t, (const kiln_tensor *[]){&tsig});
    tn_free(&t);
    tn_init(&t, "STFT", 17, 2, 1);
    sweep(&t, (const kiln_tensor *[]){&tsig, &tstep});
    tn_free(&t);
    tn_init(&t, "StringSplit", 20, 1, 2);
    sweep(&t, (const kiln_tensor *[]){&tstr});
    tn_free(&t);
    tn_init(&t, "StringNormalizer", 10, 1, 1);
    tn_string(&t, "case_change_action", "UPPER");
    sweep(&t, (const kiln_tensor *[]){&tstr});
    tn_free(&t);
    tn_init(&t, "RegexFullMatch", 20, 1, 1);
    tn_string(&t, "pattern", "(?i)[a-c ]+|\\w{1,3}");
    sweep(&t, (const kiln_tensor *[]){&tstr});
    tn_free(&t);
    tn_init_dom(&t, "ai.onnx.ml", "LabelEncoder", 2, 1, 1);
    tn_strings(&t, "keys_strings", 2, keys);
    tn_ints(&t, "values_int64s", 2, vals);
    sweep(&t, (const kiln_tensor *[]){&tstr});
    tn_free(&t);
    float splits[2] = {0.5f, 2}, w[4] = {1, 2, 3, 4}, x[2] = {0, 3};
    uint8_t modes[2] = {0, 3};
    kiln_tensor tsp = tn_view(KILN_F32, 1, (int64_t[]){2}, splits), tmo = tn_view(KILN_U8, 1, (int64_t[]){2}, modes);
    kiln_tensor tw = tn_view(KILN_F32, 1, (int64_t[]){4}, w), tx = tn_view(KILN_F32, 2, (int64_t[]){1, 2}, x);
    tree_setup(&t, &tsp, &tmo, &tw, 0, 1);
    sweep(&t, (const kiln_tensor *[]){&tx});
    tn_free(&t);
}

TEST_MAIN(T(nms_selects_and_suppresses), T(nms_center_format_and_errors), T(dft_forward_inverse_onesided),
          T(dft_length_and_errors), T(stft_frames_with_window), T(windows_periodic_symmetric),
          T(mel_triangles_peak_at_one), T(strnorm_caseless_utf8), T(strsplit_delimiters_and_maxsplit),
          T(regex_syntax_and_semantics), T(regex_random_patterns_are_safe), T(regex_op_on_tensor), T(tfidf_weights_and_strings), T(labelenc_forms),
          T(afe_picks_last_axis), T(tree_ensemble_aggregates), T(tree_legacy_forms), T(optimizers_two_groups), T(optional_ops),
          T(allocation_sweeps))
