/* bench_balancer — time of one balancer step (src/cloud/balancer) for installations of 10, 100,
 * 1 000 and 10 000 chargers, for `make bench` (scripts/bench.sh, section "balancer").
 *
 *   bench_balancer [RUNS [MS_PER_RUN]]        defaults: 7 runs, 200 ms per run
 *
 * The installation: a main fuse, boards of 10 circuits, circuits of 5 chargers (32 A; one in
 * five wired 1-phase, on L1/L2/L3 in turn; one in ten at priority 1 with a 16 A max; one in ten
 * with a 6 A fallback); every car wants energy and supply is short at the main fuse, so admission,
 * the rotation groups and water-filling all run. Two kinds of step are timed, each call on its own
 * with clock_gettime(CLOCK_MONOTONIC):
 *   - a full step in steady state (nothing to send: the whole allocation is recomputed);
 *   - a step after the main fuse's limit changed (±10 %, alternately), which sends a setpoint to
 *     most chargers (replies are fed back outside the timed call).
 * Baseline, timed in the same process, interleaved run by run: a naive allocator over the same
 * tree — an equal share of each node's limit for every charger below it, the least along its
 * path (no phases, no safety, no state). Prints a Markdown table of medians over the runs.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lade/balancer.h"

#define A(x) ((int32_t)((x)*1000))

static volatile uint64_t sink;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void fail(const char *what)
{
    fprintf(stderr, "bench_balancer: %s failed\n", what);
    exit(1);
}

struct inst {
    uint32_t n_chargers, n_nodes;
    struct lade_bal_node_config *nodes;
    struct lade_bal_charger_config *ch;
    struct lade_balancer *bal;
    uint64_t now_ms;
    int32_t main_ma;
    bool low;
    uint32_t last_setpoints;
    /* baseline scratch */
    uint32_t *below; /* chargers below each node */
    int32_t *share;
};

static void build(struct inst *in, uint32_t n)
{
    memset(in, 0, sizeof *in);
    uint32_t circuits = (n + 4) / 5, boards = circuits > 10 ? (circuits + 9) / 10 : 0;
    in->n_chargers = n;
    in->n_nodes = 1 + boards + circuits;
    in->nodes = calloc(in->n_nodes, sizeof *in->nodes);
    in->ch = calloc(n, sizeof *in->ch);
    in->below = calloc(in->n_nodes, sizeof *in->below);
    in->share = calloc(in->n_nodes, sizeof *in->share);
    if (!in->nodes || !in->ch || !in->below || !in->share)
        fail("calloc");
    /* short at the main fuse: 8 A per charger (boards 10 A, circuits 12.6 A), so the main fuse
     * binds and a ±10 % change moves everyone */
    in->main_ma = (int32_t)(n * 8000 > 40000 ? n * 8000 : 40000);
    in->nodes[0] = (struct lade_bal_node_config){-1, {in->main_ma, in->main_ma, in->main_ma}};
    for (uint32_t b = 0; b < boards; b++)
        in->nodes[1 + b] = (struct lade_bal_node_config){0, {A(500), A(500), A(500)}};
    for (uint32_t c = 0; c < circuits; c++) {
        int32_t parent = boards ? (int32_t)(1 + c / 10) : 0; /* 10 circuits a board */
        in->nodes[1 + boards + c] = (struct lade_bal_node_config){parent, {A(63), A(63), A(63)}};
    }
    for (uint32_t i = 0; i < n; i++) {
        uint8_t r = (uint8_t)(i / 5 % 3);
        in->ch[i] = (struct lade_bal_charger_config){
            .node = 1 + boards + i / 5,
            .max_ma = i % 10 == 3 ? A(16) : A(32),
            .min_ma = A(6),
            .max_phases = i % 5 == 4 ? 1 : 3,
            .rotation = {r, (uint8_t)((r + 1) % 3), (uint8_t)((r + 2) % 3)},
            .priority = i % 10 == 3 ? 1 : 0,
            .fallback_ma = i % 10 == 7 ? A(6) : 0,
            .fallback_phases = 1,
            .link_loss_deadline_ms = 100000,
        };
    }
    struct lade_bal_config cfg = {LADE_BAL_TN, in->nodes, in->n_nodes, in->ch, n, {0}};
    lade_balancer_params_default(&cfg.params);
    cfg.params.increase_hold_ms = 0; /* every limit change sends at once */
    cfg.params.periodic_ms = 3600000;
    struct lade_bal_config_error err;
    in->now_ms = 1000000;
    if (lade_balancer_create(&cfg, in->now_ms, &in->bal, &err) != LADE_OK)
        fail("create");
    for (uint32_t i = 0; i < n; i++)
        if (lade_balancer_charger_assume(in->bal, i, 0, in->ch[i].max_phases) ||
            lade_balancer_charger_online(in->bal, i, true, in->now_ms) ||
            lade_balancer_charger_demand(in->bal, i, true, in->now_ms))
            fail("events");
    for (uint32_t i = 0; i < n; i++)
        for (int32_t k = (int32_t)in->ch[i].node; k >= 0; k = in->nodes[k].parent)
            in->below[k]++;
}

/* One step at now; every setpoint confirmed at once (outside the caller's timing). */
static uint64_t step(struct inst *in)
{
    struct lade_bal_step_out out;
    uint64_t t0 = now_ns();
    if (lade_balancer_step(in->bal, in->now_ms, &out) != LADE_OK)
        fail("step");
    uint64_t dt = now_ns() - t0;
    in->last_setpoints = out.n_setpoints;
    for (uint32_t k = 0; k < out.n_setpoints; k++)
        if (lade_balancer_ack(in->bal, out.setpoints[k].charger, out.setpoints[k].seq, in->now_ms))
            fail("ack");
    sink += out.n_setpoints;
    return dt;
}

static void settle(struct inst *in)
{
    for (int k = 0; k < 20; k++) {
        in->now_ms += 20000;
        step(in);
    }
}

static uint64_t step_steady(struct inst *in)
{
    return step(in);
}

static uint64_t step_change(struct inst *in)
{
    in->low = !in->low;
    int32_t l = in->low ? in->main_ma / 10 * 9 : in->main_ma;
    int32_t lim[3] = {l, l, l};
    if (lade_balancer_set_limit(in->bal, 0, lim, NULL))
        fail("set_limit");
    in->now_ms += 6000; /* measurements from before the change no longer count */
    return step(in);
}

static uint64_t baseline(struct inst *in)
{
    uint64_t t0 = now_ns();
    for (uint32_t k = 0; k < in->n_nodes; k++)
        in->share[k] = in->below[k] ? in->nodes[k].limit_ma[0] / (int32_t)in->below[k] : 0;
    uint64_t sum = 0;
    for (uint32_t i = 0; i < in->n_chargers; i++) {
        int32_t s = in->ch[i].max_ma;
        for (int32_t k = (int32_t)in->ch[i].node; k >= 0; k = in->nodes[k].parent)
            s = in->share[k] < s ? in->share[k] : s;
        sum += s >= A(6) ? (uint64_t)s : 0;
    }
    uint64_t dt = now_ns() - t0;
    sink += sum;
    return dt;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Median ns of fn's calls during about ms milliseconds (at least 3 calls). */
static double run(struct inst *in, uint64_t (*fn)(struct inst *), unsigned ms)
{
    static double v[200000];
    int n = 0;
    uint64_t end = now_ns() + (uint64_t)ms * 1000000u;
    while (n < (int)(sizeof v / sizeof v[0]) && (n < 3 || now_ns() < end))
        v[n++] = (double)fn(in);
    return median(v, n);
}

#define MAX_RUNS 99

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 7;
    unsigned ms = argc > 2 ? (unsigned)atoi(argv[2]) : 200;
    if (runs < 1 || runs > MAX_RUNS || ms < 1)
        fail("arguments");
    static const uint32_t sizes[] = {10, 100, 1000, 10000};
    printf("%d runs per size, each ~%u ms of steps per kind; medians of the runs' medians.\n\n",
           runs, ms);
    printf("| chargers | nodes | full step, steady (µs) | min–max | step after a limit change "
           "(µs) | min–max | setpoints sent | baseline: equal split (µs) | ratio steady / "
           "baseline | steady per charger (ns) |\n");
    printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        struct inst in;
        build(&in, sizes[s]);
        settle(&in);
        double a[MAX_RUNS], b[MAX_RUNS], c[MAX_RUNS];
        uint32_t sent = 0;
        for (int r = 0; r < runs; r++) {
            a[r] = run(&in, step_steady, ms);
            b[r] = run(&in, step_change, ms);
            sent = in.last_setpoints > sent ? in.last_setpoints : sent;
            settle(&in);
            c[r] = run(&in, baseline, ms);
        }
        double ma = median(a, runs), mb = median(b, runs), mc = median(c, runs);
        printf("| %u | %u | %.1f | %.1f–%.1f | %.1f | %.1f–%.1f | %u | %.2f | %.0f | %.0f |\n",
               sizes[s], in.n_nodes, ma / 1000, a[0] / 1000, a[runs - 1] / 1000, mb / 1000,
               b[0] / 1000, b[runs - 1] / 1000, sent, mc / 1000, ma / mc, ma / sizes[s]);
        fflush(stdout);
        lade_balancer_destroy(in.bal);
        free(in.nodes);
        free(in.ch);
        free(in.below);
        free(in.share);
    }
    return 0;
}
