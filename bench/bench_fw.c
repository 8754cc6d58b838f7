/* bench_fw — figure 16 of `make bench` (scripts/bench.sh): what verifying a firmware update costs.
 *
 *   bench_fw IMAGE MANIFEST PUBKEY_B64 HW_ID RUNS DIR
 *
 * IMAGE is the image MANIFEST (signed by lade-fw) describes; PUBKEY_B64 the key that signed it.
 * Three measurements, RUNS runs each, every run timed with clock_gettime(CLOCK_MONOTONIC):
 *
 *   sha     lade_fwsig_hash_init/update/final over the image in memory, fed in 16 KiB pieces
 *           (what libcurl hands the downloader's write callback at most);           → MB/s
 *   accept  lade_fwsig_accept (parse, Ed25519 verify against the pinned key, field checks) of
 *           the manifest in a loop for at least 200 ms;                            → per second
 *   finish  lade_fwslot_file_finish on a slot in DIR (the Linux port: slot files and the record)
 *           that holds the image: begin, write in 256 KiB pieces, sync — untimed — then the timed
 *           finish (sync, close, read back, SHA-256, record saved). "hot": the slot's pages are in
 *           the page cache, as right after a download; "cold": dropped first with
 *           posix_fadvise(DONTNEED), so the read-back comes from the disk.           → MB/s
 *
 * Output, one line each: "<what> <median> <sample> <sample> ..." (MB = 10^6 bytes).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lade/fwmanifest.h"
#include "lade/fwsig.h"
#include "lade/fwslot.h"

#define MAX_RUNS 64

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, lade_err err)
{
    fprintf(stderr, "bench_fw: %s: %s\n", what, lade_strerror(err));
    exit(1);
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "bench_fw: cannot read %s\n", path);
        exit(1);
    }
    fclose(f);
    buf[n] = 0;
    *len = (size_t)n;
    return buf;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, const double *v, int n)
{
    double s[MAX_RUNS];
    memcpy(s, v, sizeof(double) * (size_t)n);
    qsort(s, (size_t)n, sizeof s[0], cmp_double);
    double med = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    printf("%s %.1f", what, med);
    for (int i = 0; i < n; i++)
        printf(" %.1f", v[i]);
    printf("\n");
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: bench_fw IMAGE MANIFEST PUBKEY_B64 HW_ID RUNS DIR\n");
        return 2;
    }
    int runs = atoi(argv[5]);
    if (runs < 1 || runs > MAX_RUNS)
        runs = 5;
    size_t img_len, man_len;
    uint8_t *img = (uint8_t *)read_all(argv[1], &img_len);
    char *man = read_all(argv[2], &man_len);
    const char *hw = argv[4];
    struct lade_fwsig_keys ks;
    memset(&ks, 0, sizeof ks);
    lade_err err = lade_fwsig_keys_parse(argv[3], &ks);
    if (err)
        die("public key", err);
    struct lade_fwm m;
    struct lade_fwm_diag diag;
    err = lade_fwsig_accept(&ks, man, man_len, hw, 0, &m, &diag);
    if (err)
        die("manifest", err);
    if (m.image_len != img_len) {
        fprintf(stderr, "bench_fw: the manifest is for %llu bytes, the image has %zu\n",
                (unsigned long long)m.image_len, img_len);
        return 1;
    }
    double v[MAX_RUNS];

    /* SHA-256, streaming, 16 KiB pieces. */
    for (int r = 0; r < runs; r++) {
        struct lade_fwsig_hash h;
        uint8_t d[LADE_FWM_SHA256_LEN];
        double t0 = now_s();
        if ((err = lade_fwsig_hash_init(&h)))
            die("hash init", err);
        for (size_t off = 0; off < img_len; off += 16384) {
            size_t n = img_len - off < 16384 ? img_len - off : 16384;
            if ((err = lade_fwsig_hash_update(&h, img + off, n)))
                die("hash update", err);
        }
        if ((err = lade_fwsig_hash_final(&h, d)))
            die("hash final", err);
        double t1 = now_s();
        if (memcmp(d, m.image_sha256, sizeof d) != 0) {
            fprintf(stderr, "bench_fw: the image does not match its manifest\n");
            return 1;
        }
        v[r] = (double)img_len / 1e6 / (t1 - t0);
    }
    report("sha_mbs", v, runs);

    /* Manifest acceptance (Ed25519 verify dominates). */
    for (int r = 0; r < runs; r++) {
        double t0 = now_s(), t1;
        long n = 0;
        do {
            for (int i = 0; i < 50; i++, n++)
                if ((err = lade_fwsig_accept(&ks, man, man_len, hw, 0, &m, &diag)))
                    die("accept", err);
            t1 = now_s();
        } while (t1 - t0 < 0.2);
        v[r] = (double)n / (t1 - t0);
    }
    report("accept_per_s", v, runs);

    /* Slot read-back: hot and cold. */
    struct lade_fwslot_file_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.dir = argv[6];
    cfg.factory_version = "1.0.0";
    cfg.factory_counter = 0;
    struct lade_fwslot_file *f;
    if ((err = lade_fwslot_file_open(&cfg, &f)))
        die("slot open", err);
    struct lade_fwslot_image im;
    memset(&im, 0, sizeof im);
    snprintf(im.version, sizeof im.version, "%.*s", (int)m.version.n, m.version.p);
    im.security_counter = m.security_counter;
    im.length = m.image_len;
    memcpy(im.sha256, m.image_sha256, sizeof im.sha256);
    for (int cold = 0; cold < 2; cold++) {
        for (int r = 0; r < runs; r++) {
            int slot = -1;
            uint64_t resume_max = 0;
            if ((err = lade_fwslot_file_begin(f, &im, false, &slot, &resume_max)))
                die("slot begin", err);
            for (size_t off = 0; off < img_len; off += 262144) {
                size_t n = img_len - off < 262144 ? img_len - off : 262144;
                if ((err = lade_fwslot_file_write(f, off, img + off, n)))
                    die("slot write", err);
            }
            if ((err = lade_fwslot_file_sync(f)))
                die("slot sync", err);
            if (cold) {
                int fd = open(lade_fwslot_file_slot_path(f, slot), O_RDONLY);
                if (fd < 0 || posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) != 0) {
                    perror("posix_fadvise");
                    return 1;
                }
                close(fd);
            }
            double t0 = now_s();
            if ((err = lade_fwslot_file_finish(f)))
                die("slot finish", err);
            double t1 = now_s();
            v[r] = (double)img_len / 1e6 / (t1 - t0);
        }
        report(cold ? "finish_cold_mbs" : "finish_hot_mbs", v, runs);
    }
    lade_fwslot_file_close(f);
    free(img);
    free(man);
    return 0;
}
