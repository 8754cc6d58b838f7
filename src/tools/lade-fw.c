/* lade-fw — firmware signing tool (docs/firmware.md "lade-fw").
 *
 *   lade-fw keygen  --out KEY
 *   lade-fw sign    --key KEY --image FILE --hw ID --version V --counter N [--notes FILE]
 *                   --out MANIFEST
 *   lade-fw verify  --pubkey B64[,B64] --manifest M [--image FILE] [--hw ID] [--counter N]
 *   lade-fw inspect M
 *
 * Exit status: 0 done / manifest good, 1 refused or failed (the reason on stderr), 2 usage.
 * The private key is read only from KEY (which must be mode 0600) and written only by keygen;
 * it is never printed or logged. Nothing here reads the clock: signing and verifying do not
 * depend on the date (no certificates).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lade/codec.h"
#include "lade/fwmanifest.h"
#include "lade/fwsig.h"

#define NOTES_FILE_MAX (16 * 1024) /* raw notes file; the escaped text must fit 1 KiB anyway */

struct opts {
    const char *out, *key, *image, *hw, *version, *notes, *manifest;
    const char *pubkeys[LADE_FWSIG_KEYS_MAX + 1];
    size_t n_pubkeys;
    long long counter; /* -1: not given */
};

static void usage(FILE *f)
{
    fputs("usage:\n"
          "  lade-fw keygen  --out KEY\n"
          "  lade-fw sign    --key KEY --image FILE --hw ID --version V --counter N\n"
          "                  [--notes FILE] --out MANIFEST\n"
          "  lade-fw verify  --pubkey B64[,B64] --manifest M [--image FILE] [--hw ID]\n"
          "                  [--counter N]\n"
          "  lade-fw inspect MANIFEST\n"
          "exit status: 0 good, 1 refused or failed, 2 usage\n",
          f);
}

static int need(const char *v, const char *flag)
{
    if (!v || !*v) {
        fprintf(stderr, "lade-fw: %s is required\n", flag);
        return 0;
    }
    return 1;
}

static int fail(const char *what, lade_err err)
{
    fprintf(stderr, "lade-fw: %s: %s\n", what, lade_strerror(err));
    return 1;
}

/* "lade-fw: M: line 3: bad image-sha256 ..." — the manifest reason, else the lade_err text. */
static int refused(const char *what, lade_err err, const struct lade_fwm_diag *d)
{
    const char *why =
        d->reason != LADE_FWM_R_NONE ? lade_fwm_reason_text(d->reason) : lade_strerror(err);
    if (d->line)
        fprintf(stderr, "lade-fw: %s: line %u: %s\n", what, d->line, why);
    else
        fprintf(stderr, "lade-fw: %s: %s\n", what, why);
    return 1;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
    static const char h[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = h[b[i] >> 4];
        out[2 * i + 1] = h[b[i] & 15];
    }
    out[2 * n] = 0;
}

/* Reads at most cap bytes of path into buf; *len = bytes read; *more = the file is longer. */
static int read_file(const char *path, char *buf, size_t cap, size_t *len, int *more)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "lade-fw: %s: %s\n", path, strerror(errno));
        return 1;
    }
    *len = fread(buf, 1, cap, f);
    *more = (*len == cap && fgetc(f) != EOF);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "lade-fw: %s: read error\n", path);
        return 1;
    }
    return 0;
}

/* SHA-256 and length of a file, streamed. */
static int hash_file(const char *path, uint8_t sha[LADE_FWM_SHA256_LEN], uint64_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "lade-fw: %s: %s\n", path, strerror(errno));
        return 1;
    }
    struct lade_fwsig_hash h;
    lade_err err = lade_fwsig_hash_init(&h);
    if (err) {
        fclose(f);
        return fail("SHA-256", err);
    }
    static char buf[64 * 1024];
    size_t n;
    while (!err && (n = fread(buf, 1, sizeof buf, f)) > 0)
        err = lade_fwsig_hash_update(&h, buf, n);
    int bad = ferror(f);
    fclose(f);
    if (err || bad) {
        lade_fwsig_hash_free(&h);
        if (bad) {
            fprintf(stderr, "lade-fw: %s: read error\n", path);
            return 1;
        }
        return fail("SHA-256", err);
    }
    *len = h.len;
    err = lade_fwsig_hash_final(&h, sha);
    return err ? fail("SHA-256", err) : 0;
}

/* --pubkey values (each "B64" or "B64,B64") into ks. */
static int load_pubkeys(const struct opts *o, struct lade_fwsig_keys *ks)
{
    memset(ks, 0, sizeof *ks);
    for (size_t i = 0; i < o->n_pubkeys; i++) {
        const char *p = o->pubkeys[i];
        for (;;) {
            const char *comma = strchr(p, ',');
            size_t n = comma ? (size_t)(comma - p) : strlen(p);
            lade_err err = lade_fwsig_keys_add_b64(ks, p, n);
            if (err == LADE_ERR_CONFIG) {
                fprintf(stderr, "lade-fw: --pubkey must be Base64 of a 32-byte Ed25519 public "
                                "key (44 characters), at most two separated by ','\n");
                return 2;
            }
            if (err == LADE_ERR_FULL) {
                fprintf(stderr, "lade-fw: --pubkey: at most %d keys are pinned\n",
                        LADE_FWSIG_KEYS_MAX);
                return 2;
            }
            if (err == LADE_ERR_EXISTS) {
                fprintf(stderr, "lade-fw: --pubkey: the same key given twice\n");
                return 2;
            }
            if (err)
                return fail("--pubkey", err);
            if (!comma)
                break;
            p = comma + 1;
        }
    }
    return 0;
}

static int cmd_keygen(const struct opts *o)
{
    if (!need(o->out, "--out"))
        return 2;
    uint8_t pub[LADE_FWSIG_PUB_LEN];
    char id[LADE_FWM_KEY_ID_LEN + 1], b64[LADE_FWSIG_PUB_B64_LEN + 1];
    lade_err err = lade_fwsig_keygen(o->out, pub);
    if (err == LADE_ERR_EXISTS) {
        fprintf(stderr, "lade-fw: %s exists; refusing to overwrite a key\n", o->out);
        return 1;
    }
    if (err == LADE_ERR_IO) {
        fprintf(stderr, "lade-fw: %s: %s\n", o->out, strerror(errno));
        return 1;
    }
    if (err)
        return fail("generating the key", err);
    if ((err = lade_fwsig_key_id(pub, id)) != LADE_OK ||
        (err = lade_base64_encode(pub, sizeof pub, b64, sizeof b64, NULL)) != LADE_OK)
        return fail("public key", err);
    printf("public-key: %s\nkey-id: %s\nprivate-key: %s\n", b64, id, o->out);
    return 0;
}

/* Notes file → escaped notes: CRLF taken as LF, trailing line ends dropped. */
static int load_notes(const char *path, char *esc, size_t cap, size_t *esc_len)
{
    static char raw[NOTES_FILE_MAX];
    size_t n;
    int more;
    if (read_file(path, raw, sizeof raw, &n, &more))
        return 1;
    if (more) {
        fprintf(stderr, "lade-fw: --notes %s: longer than %d bytes\n", path, NOTES_FILE_MAX);
        return 1;
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (raw[i] == '\r' && i + 1 < n && raw[i + 1] == '\n')
            continue;
        raw[w++] = raw[i];
    }
    while (w > 0 && raw[w - 1] == '\n')
        w--;
    lade_err err = lade_fwm_notes_escape(raw, w, esc, cap, esc_len);
    if (err == LADE_ERR_TOO_BIG || err == LADE_ERR_NOSPACE) {
        fprintf(stderr, "lade-fw: --notes %s: longer than %d bytes once escaped\n", path,
                LADE_FWM_NOTES_MAX);
        return 1;
    }
    if (err) {
        fprintf(stderr,
                "lade-fw: --notes %s: must be UTF-8 text without control characters other "
                "than line feed and tab\n",
                path);
        return 1;
    }
    return 0;
}

static int cmd_sign(const struct opts *o)
{
    if (!need(o->key, "--key") || !need(o->image, "--image") || !need(o->hw, "--hw") ||
        !need(o->version, "--version") || !need(o->out, "--out"))
        return 2;
    if (o->counter < 0) {
        fprintf(stderr, "lade-fw: --counter is required\n");
        return 2;
    }
    struct lade_fwm m = {.format = LADE_FWM_FORMAT,
                         .hw_id = lade_str_c(o->hw),
                         .version = lade_str_c(o->version),
                         .security_counter = (uint32_t)o->counter};
    if (!lade_fwm_hw_id_valid(m.hw_id)) {
        fprintf(stderr, "lade-fw: --hw must be 1-%d characters of [A-Za-z0-9._-]\n",
                LADE_FWM_HW_MAX);
        return 2;
    }
    if (!lade_fwm_version_valid(m.version)) {
        fprintf(stderr,
                "lade-fw: --version must be 1-%d characters of [0-9A-Za-z.+-] starting with a "
                "digit\n",
                LADE_FWM_VERSION_MAX);
        return 2;
    }
    static char notes[LADE_FWM_NOTES_MAX + 1];
    size_t notes_len = 0;
    if (o->notes) {
        if (load_notes(o->notes, notes, sizeof notes, &notes_len))
            return 1;
        m.notes = (struct lade_str){notes, notes_len};
    }
    if (hash_file(o->image, m.image_sha256, &m.image_len))
        return 1;
    if (m.image_len == 0) {
        fprintf(stderr, "lade-fw: --image %s is empty\n", o->image);
        return 1;
    }

    struct lade_fwsig_signer *s = NULL;
    lade_err err = lade_fwsig_signer_load(o->key, &s);
    if (err == LADE_ERR_AUTH) {
        fprintf(stderr, "lade-fw: %s is readable by group or others; chmod 600 it\n", o->key);
        return 1;
    }
    if (err == LADE_ERR_CONFIG) {
        fprintf(stderr, "lade-fw: %s is not an unencrypted Ed25519 private key (PEM)\n", o->key);
        return 1;
    }
    if (err == LADE_ERR_NOT_FOUND || err == LADE_ERR_IO) {
        fprintf(stderr, "lade-fw: %s: %s\n", o->key,
                err == LADE_ERR_NOT_FOUND ? "no such file" : strerror(errno));
        return 1;
    }
    if (err)
        return fail(o->key, err);

    int rc = 1;
    static char text[LADE_FWM_MAX + 1];
    size_t len = 0;
    uint8_t pub[LADE_FWSIG_PUB_LEN];
    char id[LADE_FWM_KEY_ID_LEN + 1];
    struct lade_fwm_diag d;
    struct lade_fwsig_keys self = {0};
    if ((err = lade_fwsig_signer_public(s, pub, id)) != LADE_OK) {
        fail("public key", err);
        goto out;
    }
    m.key_id = (struct lade_str){id, LADE_FWM_KEY_ID_LEN};
    if ((err = lade_fwm_encode(&m, false, text, sizeof text, &len, &d)) != LADE_OK) {
        refused("manifest", err, &d);
        goto out;
    }
    if ((err = lade_fwsig_sign(s, text, len, m.sig)) != LADE_OK) {
        fail("signing", err);
        goto out;
    }
    m.has_sig = true;
    if ((err = lade_fwm_encode(&m, true, text, sizeof text, &len, &d)) != LADE_OK) {
        refused("manifest", err, &d);
        goto out;
    }
    /* Check our own output the way a charger will before it leaves this machine. */
    struct lade_fwm back;
    self.n = 1;
    memcpy(self.k[0].pub, pub, sizeof pub);
    memcpy(self.k[0].id, id, sizeof id);
    if ((err = lade_fwsig_accept(&self, text, len, o->hw, m.security_counter, &back, &d)) !=
        LADE_OK) {
        refused("self-check of the signed manifest", err, &d);
        goto out;
    }
    int fd = open(o->out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        if (errno == EEXIST)
            fprintf(stderr, "lade-fw: %s exists; refusing to overwrite it\n", o->out);
        else
            fprintf(stderr, "lade-fw: %s: %s\n", o->out, strerror(errno));
        goto out;
    }
    ssize_t w = write(fd, text, len);
    if (w != (ssize_t)len || fsync(fd) != 0) {
        fprintf(stderr, "lade-fw: %s: write failed\n", o->out);
        close(fd);
        unlink(o->out);
        goto out;
    }
    close(fd);
    printf("signed %s: hardware %s version %s security-counter %u image-length %llu key-id %s\n",
           o->out, o->hw, o->version, m.security_counter, (unsigned long long)m.image_len, id);
    rc = 0;
out:
    lade_fwsig_signer_free(s);
    return rc;
}

static int load_manifest(const char *path, char *buf, size_t *len)
{
    int more;
    if (read_file(path, buf, LADE_FWM_MAX + 1, len, &more))
        return 1;
    (void)more; /* a file longer than LADE_FWM_MAX + 1 is refused as TOO_BIG all the same */
    return 0;
}

static int cmd_verify(const struct opts *o)
{
    if (!need(o->manifest, "--manifest"))
        return 2;
    if (o->n_pubkeys == 0) {
        fprintf(stderr, "lade-fw: --pubkey is required\n");
        return 2;
    }
    struct lade_fwsig_keys ks;
    int rc = load_pubkeys(o, &ks);
    if (rc)
        return rc;
    if (o->hw && !lade_fwm_hw_id_valid(lade_str_c(o->hw))) {
        fprintf(stderr, "lade-fw: --hw must be 1-%d characters of [A-Za-z0-9._-]\n",
                LADE_FWM_HW_MAX);
        return 2;
    }
    static char buf[LADE_FWM_MAX + 1];
    size_t len;
    if (load_manifest(o->manifest, buf, &len))
        return 1;
    struct lade_fwm m;
    struct lade_fwm_diag d;
    uint32_t installed = o->counter < 0 ? 0 : (uint32_t)o->counter;
    /* lade_fwsig_accept's steps one by one, so a refusal can name the values involved. */
    lade_err err = lade_fwm_parse(buf, len, &m, &d);
    if (!err)
        err = lade_fwsig_verify(&ks, &m, &d);
    if (err)
        return refused(o->manifest, err, &d);
    if (o->hw && (err = lade_fwm_check(&m, o->hw, installed, &d)) != LADE_OK) {
        refused(o->manifest, err, &d);
        if (d.reason == LADE_FWM_R_WRONG_HARDWARE)
            fprintf(stderr, "lade-fw: the manifest is for '%.*s', not '%s'\n", (int)m.hw_id.n,
                    m.hw_id.p, o->hw);
        if (d.reason == LADE_FWM_R_DOWNGRADE)
            fprintf(stderr, "lade-fw: security-counter %u < installed %u\n", m.security_counter,
                    installed);
        return 1;
    }
    if (!o->hw && m.security_counter < installed) {
        d = (struct lade_fwm_diag){.reason = LADE_FWM_R_DOWNGRADE};
        refused(o->manifest, LADE_ERR_STATE, &d);
        fprintf(stderr, "lade-fw: security-counter %u < installed %u\n", m.security_counter,
                installed);
        return 1;
    }
    if (o->image) {
        uint8_t sha[LADE_FWM_SHA256_LEN];
        uint64_t ilen;
        if (hash_file(o->image, sha, &ilen))
            return 1;
        if ((err = lade_fwm_check_image(&m, ilen, sha, &d)) != LADE_OK) {
            refused(o->image, err, &d);
            if (d.reason == LADE_FWM_R_IMAGE_LENGTH)
                fprintf(stderr, "lade-fw: image is %llu bytes, the manifest says %llu\n",
                        (unsigned long long)ilen, (unsigned long long)m.image_len);
            return 1;
        }
    }
    printf(
        "ok %s: hardware %.*s version %.*s security-counter %u image-length %llu key-id %.*s%s\n",
        o->manifest, (int)m.hw_id.n, m.hw_id.p, (int)m.version.n, m.version.p, m.security_counter,
        (unsigned long long)m.image_len, (int)m.key_id.n, m.key_id.p,
        o->image ? " image verified" : "");
    return 0;
}

static int cmd_inspect(const char *path)
{
    static char buf[LADE_FWM_MAX + 1];
    size_t len;
    if (load_manifest(path, buf, &len))
        return 1;
    struct lade_fwm m;
    struct lade_fwm_diag d;
    lade_err err = lade_fwm_parse(buf, len, &m, &d);
    if (err)
        return refused(path, err, &d);
    char sha[2 * LADE_FWM_SHA256_LEN + 1];
    hex(m.image_sha256, sizeof m.image_sha256, sha);
    printf("format: %u\n"
           "hardware: %.*s\n"
           "version: %.*s\n"
           "security-counter: %u\n"
           "image-length: %llu\n"
           "image-sha256: %s\n"
           "key-id: %.*s\n"
           "signed-bytes: %zu\n"
           "signature: present, NOT verified (lade-fw verify checks it)\n",
           m.format, (int)m.hw_id.n, m.hw_id.p, (int)m.version.n, m.version.p, m.security_counter,
           (unsigned long long)m.image_len, sha, (int)m.key_id.n, m.key_id.p, m.signed_len);
    if (m.notes.n) {
        static char notes[LADE_FWM_NOTES_MAX + 1];
        size_t n;
        if (lade_fwm_notes_unescape(m.notes, notes, sizeof notes, &n) != LADE_OK)
            return fail("notes", LADE_ERR_INVAL);
        fputs("notes:\n  ", stdout);
        for (size_t i = 0; i < n; i++) {
            putchar(notes[i]);
            if (notes[i] == '\n')
                fputs("  ", stdout);
        }
        putchar('\n');
    }
    return 0;
}

static long long parse_counter(const char *s)
{
    char *end;
    errno = 0;
    if (*s < '0' || *s > '9')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno || v > UINT32_MAX)
        return -1;
    return (long long)v;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    struct opts o = {.counter = -1};
    static const struct option lo[] = {
        {"out", required_argument, 0, 'o'},      {"key", required_argument, 0, 'k'},
        {"image", required_argument, 0, 'i'},    {"hw", required_argument, 0, 'h'},
        {"version", required_argument, 0, 'v'},  {"counter", required_argument, 0, 'c'},
        {"notes", required_argument, 0, 'n'},    {"pubkey", required_argument, 0, 'p'},
        {"manifest", required_argument, 0, 'm'}, {0, 0, 0, 0},
    };
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'o':
            o.out = optarg;
            break;
        case 'k':
            o.key = optarg;
            break;
        case 'i':
            o.image = optarg;
            break;
        case 'h':
            o.hw = optarg;
            break;
        case 'v':
            o.version = optarg;
            break;
        case 'c':
            o.counter = parse_counter(optarg);
            if (o.counter < 0) {
                fprintf(stderr, "lade-fw: --counter must be a number in 0..%u\n", UINT32_MAX);
                return 2;
            }
            break;
        case 'n':
            o.notes = optarg;
            break;
        case 'p':
            if (o.n_pubkeys >= LADE_FWSIG_KEYS_MAX) {
                fprintf(stderr, "lade-fw: --pubkey: at most %d keys are pinned\n",
                        LADE_FWSIG_KEYS_MAX);
                return 2;
            }
            o.pubkeys[o.n_pubkeys++] = optarg;
            break;
        case 'm':
            o.manifest = optarg;
            break;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (strcmp(cmd, "inspect") == 0) {
        if (optind + 1 != argc) {
            fprintf(stderr, "lade-fw: inspect takes one manifest file\n");
            return 2;
        }
        return cmd_inspect(argv[optind]);
    }
    if (optind != argc) {
        fprintf(stderr, "lade-fw: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (strcmp(cmd, "keygen") == 0)
        return cmd_keygen(&o);
    if (strcmp(cmd, "sign") == 0)
        return cmd_sign(&o);
    if (strcmp(cmd, "verify") == 0)
        return cmd_verify(&o);
    fprintf(stderr, "lade-fw: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
