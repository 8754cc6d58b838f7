/* The boot-state record codec (include/lade/fwslot.h, docs/firmware.md "Slots and boot state").
 *
 * Fixed length, little-endian, no padding left to the compiler:
 *
 *   off  len  field
 *     0    4  magic "LFWS"
 *     4    2  format (LADE_FWSLOT_FORMAT)
 *     6    2  record length (LADE_FWSLOT_RECORD_LEN)
 *     8    8  seq
 *    16    1  primary      17  1  booted      18  1  last_good      19  1  tries
 *    20    8  counter (device anti-rollback counter)
 *    28    4  rollbacks
 *    32    1  rejected_why, 33..35 zero
 *    36  117  slot a: state (1), zero (3), image (113)
 *   153  117  slot b
 *   270  113  rejected image
 *   383    4  CRC-32 of bytes 0..382
 *
 *   image: version length (1), version (64, zero-padded), security counter (8), length (8),
 *          SHA-256 (32)
 *
 * Why a CRC and not a hash: the checksum guards against torn and stale writes, not against an
 * attacker (who could rewrite the slots as well); CRC-32 is what U-Boot's redundant
 * environment uses, and it needs no library in this pure module. Every field is range-checked
 * on decode (U4: a damaged file is an error, never undefined behaviour). */
#include "lade/fwslot.h"

#include <string.h>

#define IMG_LEN   (1 + LADE_FWSLOT_VERSION_MAX + 8 + 8 + LADE_FWSLOT_SHA256_LEN)
#define SLOT_LEN  (4 + IMG_LEN)
#define OFF_SLOT0 36
#define OFF_REJ   (OFF_SLOT0 + 2 * SLOT_LEN)
#define OFF_CRC   (OFF_REJ + IMG_LEN)

_Static_assert(OFF_CRC + 4 == LADE_FWSLOT_RECORD_LEN, "record layout");

static const uint8_t magic[4] = {'L', 'F', 'W', 'S'};

uint32_t lade_fwslot_crc32(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static bool version_chars_ok(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] < 0x21 || v[i] > 0x7e)
            return false;
    return true;
}

static bool is_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* An EMPTY slot and "no rejected image" may have an empty version; anything else needs one. */
static bool put_image(uint8_t *p, const struct lade_fwslot_image *img, bool may_be_blank)
{
    size_t n = strnlen(img->version, LADE_FWSLOT_VERSION_MAX + 1);
    if (n > LADE_FWSLOT_VERSION_MAX || !version_chars_ok(img->version, n) ||
        (n == 0 && !may_be_blank))
        return false;
    memset(p, 0, IMG_LEN);
    p[0] = (uint8_t)n;
    memcpy(p + 1, img->version, n);
    put_le(p + 1 + LADE_FWSLOT_VERSION_MAX, img->security_counter, 8);
    put_le(p + 9 + LADE_FWSLOT_VERSION_MAX, img->length, 8);
    memcpy(p + 17 + LADE_FWSLOT_VERSION_MAX, img->sha256, LADE_FWSLOT_SHA256_LEN);
    return true;
}

static bool get_image(const uint8_t *p, struct lade_fwslot_image *img, bool may_be_blank)
{
    size_t n = p[0];
    if (n > LADE_FWSLOT_VERSION_MAX || (n == 0 && !may_be_blank))
        return false;
    if (!version_chars_ok((const char *)p + 1, n) ||
        !is_zero(p + 1 + n, LADE_FWSLOT_VERSION_MAX - n))
        return false;
    memset(img, 0, sizeof *img);
    memcpy(img->version, p + 1, n);
    img->security_counter = get_le(p + 1 + LADE_FWSLOT_VERSION_MAX, 8);
    img->length = get_le(p + 9 + LADE_FWSLOT_VERSION_MAX, 8);
    memcpy(img->sha256, p + 17 + LADE_FWSLOT_VERSION_MAX, LADE_FWSLOT_SHA256_LEN);
    return true;
}

static bool ranges_ok(const struct lade_fwslot *fs)
{
    if (fs->primary > 1 || fs->booted > 1 || fs->last_good > 1 ||
        fs->tries > LADE_FWSLOT_TRIES_MAX || (unsigned)fs->rejected_why >= LADE_FWSLOT_WHY__COUNT)
        return false;
    for (int i = 0; i < LADE_FWSLOT_COUNT; i++)
        if ((unsigned)fs->slot[i].state > LADE_FWSLOT_BAD)
            return false;
    return true;
}

lade_err lade_fwslot_encode(const struct lade_fwslot *fs, uint8_t *buf, size_t cap, size_t *len)
{
    if (!fs || !buf)
        return LADE_ERR_INVAL;
    if (cap < LADE_FWSLOT_RECORD_LEN)
        return LADE_ERR_NOSPACE;
    if (!ranges_ok(fs))
        return LADE_ERR_INVAL;
    uint8_t *p = buf;
    memset(p, 0, LADE_FWSLOT_RECORD_LEN);
    memcpy(p, magic, 4);
    put_le(p + 4, LADE_FWSLOT_FORMAT, 2);
    put_le(p + 6, LADE_FWSLOT_RECORD_LEN, 2);
    put_le(p + 8, fs->seq, 8);
    p[16] = fs->primary;
    p[17] = fs->booted;
    p[18] = fs->last_good;
    p[19] = fs->tries;
    put_le(p + 20, fs->counter, 8);
    put_le(p + 28, fs->rollbacks, 4);
    p[32] = (uint8_t)fs->rejected_why;
    for (int i = 0; i < LADE_FWSLOT_COUNT; i++) {
        uint8_t *s = p + OFF_SLOT0 + i * SLOT_LEN;
        s[0] = (uint8_t)fs->slot[i].state;
        if (!put_image(s + 4, &fs->slot[i].img, fs->slot[i].state == LADE_FWSLOT_EMPTY))
            return LADE_ERR_INVAL;
    }
    if (!put_image(p + OFF_REJ, &fs->rejected, fs->rejected_why == LADE_FWSLOT_WHY_NONE))
        return LADE_ERR_INVAL;
    put_le(p + OFF_CRC, lade_fwslot_crc32(p, OFF_CRC), 4);
    if (len)
        *len = LADE_FWSLOT_RECORD_LEN;
    return LADE_OK;
}

lade_err lade_fwslot_decode(const uint8_t *buf, size_t len, struct lade_fwslot *out)
{
    if (!out || (!buf && len))
        return LADE_ERR_INVAL;
    if (len < 8 || memcmp(buf, magic, 4) != 0)
        return LADE_ERR_INVAL;
    uint64_t format = get_le(buf + 4, 2);
    if (format == 0)
        return LADE_ERR_INVAL;
    if (format > LADE_FWSLOT_FORMAT) {
        /* Written by newer firmware (a downgrade of the updater itself): a clear error, not a
         * guess. Only a CRC-valid copy says so; a torn one is just invalid. */
        uint64_t n = get_le(buf + 6, 2);
        if (n >= 12 && n <= len && get_le(buf + n - 4, 4) == lade_fwslot_crc32(buf, n - 4))
            return LADE_ERR_CONFIG;
        return LADE_ERR_INVAL;
    }
    if (len != LADE_FWSLOT_RECORD_LEN || get_le(buf + 6, 2) != LADE_FWSLOT_RECORD_LEN)
        return LADE_ERR_INVAL;
    if (get_le(buf + OFF_CRC, 4) != lade_fwslot_crc32(buf, OFF_CRC))
        return LADE_ERR_INVAL;
    struct lade_fwslot fs;
    memset(&fs, 0, sizeof fs);
    fs.seq = get_le(buf + 8, 8);
    fs.primary = buf[16];
    fs.booted = buf[17];
    fs.last_good = buf[18];
    fs.tries = buf[19];
    fs.counter = get_le(buf + 20, 8);
    fs.rollbacks = (uint32_t)get_le(buf + 28, 4);
    if (buf[32] >= LADE_FWSLOT_WHY__COUNT || !is_zero(buf + 33, 3))
        return LADE_ERR_INVAL;
    fs.rejected_why = (enum lade_fwslot_why)buf[32];
    for (int i = 0; i < LADE_FWSLOT_COUNT; i++) {
        const uint8_t *s = buf + OFF_SLOT0 + i * SLOT_LEN;
        if (s[0] > LADE_FWSLOT_BAD || !is_zero(s + 1, 3))
            return LADE_ERR_INVAL;
        fs.slot[i].state = (enum lade_fwslot_state)s[0];
        if (!get_image(s + 4, &fs.slot[i].img, fs.slot[i].state == LADE_FWSLOT_EMPTY))
            return LADE_ERR_INVAL;
    }
    if (!get_image(buf + OFF_REJ, &fs.rejected, fs.rejected_why == LADE_FWSLOT_WHY_NONE))
        return LADE_ERR_INVAL;
    if (!ranges_ok(&fs))
        return LADE_ERR_INVAL;
    *out = fs;
    return LADE_OK;
}

lade_err lade_fwslot_decode2(const uint8_t *c0, size_t n0, const uint8_t *c1, size_t n1,
                             struct lade_fwslot *fs, int *used, int *next, int *valid)
{
    if (!fs || !used || !next || !valid)
        return LADE_ERR_INVAL;
    struct lade_fwslot r[2];
    lade_err e0 = c0 ? lade_fwslot_decode(c0, n0, &r[0]) : LADE_ERR_NOT_FOUND;
    lade_err e1 = c1 ? lade_fwslot_decode(c1, n1, &r[1]) : LADE_ERR_NOT_FOUND;
    bool ok[2] = {e0 == LADE_OK, e1 == LADE_OK};
    *valid = (int)ok[0] + (int)ok[1];
    *used = -1;
    *next = 0;
    /* A copy in a newer format: a newer updater wrote it, and its state may be the current
     * one. Guessing from the older copy could undo a confirmed update; say so instead. */
    if (e0 == LADE_ERR_CONFIG || e1 == LADE_ERR_CONFIG)
        return LADE_ERR_CONFIG;
    if (!ok[0] && !ok[1])
        return LADE_ERR_NOT_FOUND;
    /* Equal sequences cannot come from our saves (each save is max + 1); copy 0 wins then. */
    int u = !ok[0] ? 1 : !ok[1] ? 0 : (r[1].seq > r[0].seq ? 1 : 0);
    *fs = r[u];
    *used = u;
    *next = u ^ 1;
    return LADE_OK;
}
