/* The portal store's interface: argument checks and dispatch to a backend (see store.h,
 * docs/store.md).
 *
 * Why the checks live here and not in each backend: the REST API, ingest and the balancer
 * must see the same refusals whatever database is behind the store, and a PostgreSQL backend
 * should not have to re-implement (and drift from) the rules of R14/R15.
 */
#include "lade/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lade/codec.h"
#include "lade/log.h"
#include "lade/registry.h"

#define MOD "store"

_Static_assert(LADE_STORE_DEVICE_ID_MAX == LADE_REGISTRY_ID_MAX, "device ids are registry ids");

struct lade_store {
    const struct lade_store_ops *ops;
    void *be;
    bool in_list; /* a list callback is running: the store refuses re-entry */
    char errmsg[LADE_STORE_ERRMSG_SIZE];
};

/* ---- backend support ---- */

lade_err lade_store_new(const struct lade_store_ops *ops, void *be, struct lade_store **out)
{
    if (!ops || !out || !ops->close)
        return LADE_ERR_INVAL;
        /* Every op must be set: a missing one would be a NULL call much later. */
#define REQ(op) (ops->op != NULL)
    bool all =
        REQ(installation_add) && REQ(installation_get) && REQ(installation_update) &&
        REQ(installation_remove) && REQ(installation_list) && REQ(circuit_add) &&
        REQ(circuit_get) && REQ(circuit_update) && REQ(circuit_remove) && REQ(circuit_list) &&
        REQ(charger_add) && REQ(charger_get) && REQ(charger_get_by_device) && REQ(charger_update) &&
        REQ(charger_remove) && REQ(charger_list) && REQ(charger_presence) && REQ(state_put) &&
        REQ(state_list) && REQ(sample_add) && REQ(sample_list) && REQ(sample_prune) &&
        REQ(session_add) && REQ(session_get) && REQ(session_list) && REQ(setpoint_add) &&
        REQ(setpoint_confirm) && REQ(setpoint_last) && REQ(setpoint_prune) && REQ(user_add) &&
        REQ(user_get) && REQ(user_get_by_name) && REQ(user_update) && REQ(user_remove) &&
        REQ(user_list) && REQ(access_set) && REQ(access_get) && REQ(token_add) && REQ(token_get) &&
        REQ(token_revoke) && REQ(token_revoke_user) && REQ(token_prune);
#undef REQ
    if (!all)
        return LADE_ERR_INVAL;
    struct lade_store *st = calloc(1, sizeof *st);
    if (!st)
        return LADE_ERR_NOMEM;
    st->ops = ops;
    st->be = be;
    *out = st;
    return LADE_OK;
}

void lade_store_fail(struct lade_store *st, const char *fmt, ...)
{
    char buf[LADE_STORE_ERRMSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    LOG_W(MOD, "%s", buf);
    if (st)
        memcpy(st->errmsg, buf, sizeof buf);
}

void lade_store_close(struct lade_store *st)
{
    if (!st)
        return;
    st->ops->close(st->be);
    free(st);
}

const char *lade_store_errmsg(const struct lade_store *st)
{
    return st ? st->errmsg : "";
}

const char *lade_store_backend_name(const struct lade_store *st)
{
    return st && st->ops->name ? st->ops->name : "";
}

/* ---- checks ---- */

/* Text a person typed: 1..max bytes of UTF-8, no control characters. */
static bool text_ok(const char *s, size_t max)
{
    if (!s)
        return false;
    size_t n = strnlen(s, max + 1);
    if (n == 0 || n > max || !lade_utf8_valid((const uint8_t *)s, n, false))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

static bool name_ok(const char *s)
{
    return text_ok(s, LADE_STORE_NAME_MAX);
}

static bool username_ok(const char *s)
{
    if (!text_ok(s, LADE_STORE_USERNAME_MAX))
        return false;
    size_t n = strlen(s);
    return s[0] != ' ' && s[n - 1] != ' ';
}

static bool hash_text_ok(const char *s)
{
    if (!s)
        return false;
    size_t n = strnlen(s, LADE_STORE_HASH_MAX + 1);
    if (n == 0 || n > LADE_STORE_HASH_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= 0x20 || s[i] >= 0x7f)
            return false;
    return true;
}

static bool id_ok(int64_t id)
{
    return id > 0;
}

static bool opt_id_ok(int64_t id)
{
    return id >= 0;
}

static bool ma_ok(int32_t ma, int32_t max)
{
    return ma >= 0 && ma <= max;
}

static bool phases_ok(uint8_t p)
{
    return p == 1 || p == 3;
}

/* Each configured limit within its fuse, each fuse within the sanity bound. */
static bool limits_ok(const int32_t limit_ma[LADE_STORE_PHASES],
                      const int32_t fuse_ma[LADE_STORE_PHASES])
{
    for (int i = 0; i < LADE_STORE_PHASES; i++)
        if (!ma_ok(fuse_ma[i], LADE_STORE_FUSE_MAX_MA) || !ma_ok(limit_ma[i], fuse_ma[i]))
            return false;
    return fuse_ma[0] > 0;
}

static bool installation_ok(const struct lade_store_installation *in)
{
    return in && name_ok(in->name) && in->network_type >= LADE_NET_UNKNOWN &&
           in->network_type <= LADE_NET_TN_3_PHASE && limits_ok(in->available_ma, in->fuse_ma);
}

static bool circuit_ok(const struct lade_store_circuit *c)
{
    return c && id_ok(c->installation_id) && opt_id_ok(c->parent_id) && name_ok(c->name) &&
           limits_ok(c->limit_ma, c->fuse_ma);
}

bool lade_store_rotation_valid(const uint8_t phase_map[LADE_STORE_PHASES])
{
    if (!phase_map)
        return false;
    unsigned seen = 0;
    for (int i = 0; i < LADE_STORE_PHASES; i++) {
        if (phase_map[i] < 1 || phase_map[i] > 3)
            return false;
        seen |= 1u << phase_map[i];
    }
    return seen == 0xe; /* bits 1, 2 and 3 */
}

lade_err lade_store_rotation_parse(const char *s, uint8_t phase_map[LADE_STORE_PHASES])
{
    uint8_t m[LADE_STORE_PHASES];
    if (!s || !phase_map || strlen(s) != 6)
        return LADE_ERR_INVAL;
    for (int i = 0; i < LADE_STORE_PHASES; i++) {
        if (s[2 * i] != 'L' || s[2 * i + 1] < '1' || s[2 * i + 1] > '3')
            return LADE_ERR_INVAL;
        m[i] = (uint8_t)(s[2 * i + 1] - '0');
    }
    if (!lade_store_rotation_valid(m))
        return LADE_ERR_INVAL;
    memcpy(phase_map, m, sizeof m);
    return LADE_OK;
}

lade_err lade_store_rotation_format(const uint8_t phase_map[LADE_STORE_PHASES], char out[7])
{
    if (!out || !lade_store_rotation_valid(phase_map))
        return LADE_ERR_INVAL;
    for (int i = 0; i < LADE_STORE_PHASES; i++) {
        out[2 * i] = 'L';
        out[2 * i + 1] = (char)('0' + phase_map[i]);
    }
    out[6] = '\0';
    return LADE_OK;
}

void lade_store_charger_defaults(struct lade_store_charger *c)
{
    if (!c)
        return;
    memset(c, 0, sizeof *c);
    c->phase_map[0] = 1;
    c->phase_map[1] = 2;
    c->phase_map[2] = 3;
    c->max_current_ma = 32000;
    c->min_current_ma = 6000;
    c->max_phases = 3;
    c->offline_current_ma = 6000;
    c->offline_phases = 1;
    c->active = true;
}

static bool charger_ok(const struct lade_store_charger *c)
{
    return c && lade_registry_id_valid(c->device_id) && name_ok(c->name) &&
           opt_id_ok(c->installation_id) && opt_id_ok(c->circuit_id) &&
           (c->circuit_id == 0 || c->installation_id > 0) && c->priority >= 0 &&
           c->priority <= LADE_STORE_PRIORITY_MAX && lade_store_rotation_valid(c->phase_map) &&
           ma_ok(c->max_current_ma, LADE_STORE_CHARGER_MAX_MA) &&
           ma_ok(c->min_current_ma, c->max_current_ma) && phases_ok(c->max_phases) &&
           ma_ok(c->offline_current_ma, c->max_current_ma) && phases_ok(c->offline_phases);
}

static bool obs_ok(const struct lade_store_obs *o)
{
    if (!o->value)
        return false;
    size_t n = strnlen(o->value, LADE_STORE_VALUE_MAX + 1);
    return n <= LADE_STORE_VALUE_MAX && lade_utf8_valid((const uint8_t *)o->value, n, false);
}

static bool session_id_ok(const char *id)
{
    if (!id)
        return false;
    for (int i = 0; i < LADE_STORE_SESSION_ID_LEN; i++) {
        char c = id[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return id[LADE_STORE_SESSION_ID_LEN] == '\0';
}

static bool session_ok(const struct lade_store_session *s)
{
    if (!s || !session_id_ok(s->session_id) || !lade_registry_id_valid(s->device_id) ||
        s->energy_wh > (uint64_t)INT64_MAX || s->peak_power_w < 0 || s->phases > 3)
        return false;
    /* An empty end reason is allowed (an old charger that did not say). */
    return s->end_reason[0] == '\0' || text_ok(s->end_reason, LADE_STORE_END_REASON_MAX);
}

static bool sample_ok(const struct lade_store_sample *s)
{
    if (!s || !id_ok(s->charger_id) || s->allocated_ma < 0 || s->power_w < 0)
        return false;
    for (int i = 0; i < LADE_STORE_PHASES; i++)
        if (s->current_ma[i] < 0)
            return false;
    return true;
}

static bool setpoint_ok(const struct lade_store_setpoint *sp)
{
    return sp && id_ok(sp->charger_id) && ma_ok(sp->current_ma, LADE_STORE_CHARGER_MAX_MA) &&
           phases_ok(sp->phases) && sp->confirmed_ms >= 0;
}

static bool user_ok(const struct lade_store_user *u)
{
    return u && username_ok(u->username) && u->roles <= LADE_ROLE_ALL &&
           hash_text_ok(u->password_hash);
}

/* ---- dispatch ---- */

/* Every entry point: a store, not inside one of its own list callbacks; a fresh errmsg. */
#define ENTER(st)                                                                                  \
    do {                                                                                           \
        if (!(st))                                                                                 \
            return LADE_ERR_INVAL;                                                                 \
        if ((st)->in_list)                                                                         \
            return LADE_ERR_STATE;                                                                 \
        (st)->errmsg[0] = '\0';                                                                    \
    } while (0)

/* Runs a list op with re-entry refused while its callbacks run. */
#define LIST_CALL(st, call)                                                                        \
    do {                                                                                           \
        (st)->in_list = true;                                                                      \
        lade_err list_err_ = (call);                                                               \
        (st)->in_list = false;                                                                     \
        return list_err_;                                                                          \
    } while (0)

lade_err lade_store_installation_add(struct lade_store *st,
                                     const struct lade_store_installation *in, int64_t *id_out)
{
    ENTER(st);
    if (!installation_ok(in))
        return LADE_ERR_INVAL;
    int64_t id = 0;
    lade_err err = st->ops->installation_add(st->be, in, &id);
    if (id_out)
        *id_out = err == LADE_OK ? id : 0;
    return err;
}

lade_err lade_store_installation_get(struct lade_store *st, int64_t id,
                                     struct lade_store_installation *out)
{
    ENTER(st);
    if (!id_ok(id) || !out)
        return LADE_ERR_INVAL;
    return st->ops->installation_get(st->be, id, out);
}

lade_err lade_store_installation_update(struct lade_store *st,
                                        const struct lade_store_installation *in)
{
    ENTER(st);
    if (!installation_ok(in) || !id_ok(in->id))
        return LADE_ERR_INVAL;
    return st->ops->installation_update(st->be, in);
}

lade_err lade_store_installation_remove(struct lade_store *st, int64_t id)
{
    ENTER(st);
    if (!id_ok(id))
        return LADE_ERR_INVAL;
    return st->ops->installation_remove(st->be, id);
}

lade_err lade_store_installation_list(struct lade_store *st, int64_t user_id,
                                      lade_store_installation_fn fn, void *ud)
{
    ENTER(st);
    if (!opt_id_ok(user_id) || !fn)
        return LADE_ERR_INVAL;
    LIST_CALL(st, st->ops->installation_list(st->be, user_id, fn, ud));
}

lade_err lade_store_circuit_add(struct lade_store *st, const struct lade_store_circuit *c,
                                int64_t *id_out)
{
    ENTER(st);
    if (!circuit_ok(c))
        return LADE_ERR_INVAL;
    int64_t id = 0;
    lade_err err = st->ops->circuit_add(st->be, c, &id);
    if (id_out)
        *id_out = err == LADE_OK ? id : 0;
    return err;
}

lade_err lade_store_circuit_get(struct lade_store *st, int64_t id, struct lade_store_circuit *out)
{
    ENTER(st);
    if (!id_ok(id) || !out)
        return LADE_ERR_INVAL;
    return st->ops->circuit_get(st->be, id, out);
}

lade_err lade_store_circuit_update(struct lade_store *st, const struct lade_store_circuit *c)
{
    ENTER(st);
    if (!circuit_ok(c) || !id_ok(c->id) || c->parent_id == c->id)
        return LADE_ERR_INVAL;
    return st->ops->circuit_update(st->be, c);
}

lade_err lade_store_circuit_remove(struct lade_store *st, int64_t id)
{
    ENTER(st);
    if (!id_ok(id))
        return LADE_ERR_INVAL;
    return st->ops->circuit_remove(st->be, id);
}

lade_err lade_store_circuit_list(struct lade_store *st, int64_t installation_id,
                                 lade_store_circuit_fn fn, void *ud)
{
    ENTER(st);
    if (!id_ok(installation_id) || !fn)
        return LADE_ERR_INVAL;
    LIST_CALL(st, st->ops->circuit_list(st->be, installation_id, fn, ud));
}

lade_err lade_store_charger_add(struct lade_store *st, const struct lade_store_charger *c,
                                int64_t *id_out)
{
    ENTER(st);
    if (!charger_ok(c))
        return LADE_ERR_INVAL;
    int64_t id = 0;
    lade_err err = st->ops->charger_add(st->be, c, &id);
    if (id_out)
        *id_out = err == LADE_OK ? id : 0;
    return err;
}

lade_err lade_store_charger_get(struct lade_store *st, int64_t id, struct lade_store_charger *out)
{
    ENTER(st);
    if (!id_ok(id) || !out)
        return LADE_ERR_INVAL;
    return st->ops->charger_get(st->be, id, out);
}

lade_err lade_store_charger_get_by_device(struct lade_store *st, const char *device_id,
                                          struct lade_store_charger *out)
{
    ENTER(st);
    if (!lade_registry_id_valid(device_id) || !out)
        return LADE_ERR_INVAL;
    return st->ops->charger_get_by_device(st->be, device_id, out);
}

lade_err lade_store_charger_update(struct lade_store *st, const struct lade_store_charger *c)
{
    ENTER(st);
    if (!charger_ok(c) || !id_ok(c->id))
        return LADE_ERR_INVAL;
    return st->ops->charger_update(st->be, c);
}

lade_err lade_store_charger_remove(struct lade_store *st, int64_t id)
{
    ENTER(st);
    if (!id_ok(id))
        return LADE_ERR_INVAL;
    return st->ops->charger_remove(st->be, id);
}

lade_err lade_store_charger_list(struct lade_store *st, int64_t installation_id, int64_t user_id,
                                 lade_store_charger_fn fn, void *ud)
{
    ENTER(st);
    if (!opt_id_ok(installation_id) || !opt_id_ok(user_id) || !fn)
        return LADE_ERR_INVAL;
    LIST_CALL(st, st->ops->charger_list(st->be, installation_id, user_id, fn, ud));
}

lade_err lade_store_charger_presence(struct lade_store *st, int64_t charger_id, bool online,
                                     int64_t seen_s)
{
    ENTER(st);
    if (!id_ok(charger_id) || seen_s < 0)
        return LADE_ERR_INVAL;
    return st->ops->charger_presence(st->be, charger_id, online, seen_s);
}

lade_err lade_store_state_put(struct lade_store *st, int64_t charger_id,
                              const struct lade_store_obs *items, size_t n)
{
    ENTER(st);
    if (!id_ok(charger_id) || (n > 0 && !items) || n > LADE_STORE_STATE_BATCH_MAX)
        return LADE_ERR_INVAL;
    for (size_t i = 0; i < n; i++)
        if (!obs_ok(&items[i]))
            return LADE_ERR_INVAL;
    return st->ops->state_put(st->be, charger_id, items, n);
}

lade_err lade_store_state_list(struct lade_store *st, int64_t charger_id, lade_store_obs_fn fn,
                               void *ud)
{
    ENTER(st);
    if (!id_ok(charger_id) || !fn)
        return LADE_ERR_INVAL;
    LIST_CALL(st, st->ops->state_list(st->be, charger_id, fn, ud));
}

lade_err lade_store_sample_add(struct lade_store *st, const struct lade_store_sample *s)
{
    ENTER(st);
    if (!sample_ok(s))
        return LADE_ERR_INVAL;
    return st->ops->sample_add(st->be, s);
}

lade_err lade_store_sample_list(struct lade_store *st, int64_t charger_id, int64_t from_s,
                                int64_t to_s, lade_store_sample_fn fn, void *ud)
{
    ENTER(st);
    if (!id_ok(charger_id) || !fn || to_s < from_s)
        return LADE_ERR_INVAL;
    LIST_CALL(st, st->ops->sample_list(st->be, charger_id, from_s, to_s, fn, ud));
}

lade_err lade_store_sample_prune(struct lade_store *st, int64_t before_s, uint32_t max_rows,
                                 uint64_t *deleted_out)
{
    uint64_t n = 0;
    ENTER(st);
    lade_err err = st->ops->sample_prune(st->be, before_s, max_rows, &n);
    if (deleted_out)
        *deleted_out = err == LADE_OK ? n : 0;
    return err;
}

lade_err lade_store_session_add(struct lade_store *st, const struct lade_store_session *s,
                                enum lade_store_ingest *result)
{
    ENTER(st);
    if (!session_ok(s) || !result)
        return LADE_ERR_INVAL;
    return st->ops->session_add(st->be, s, result);
}

lade_err lade_store_session_get(struct lade_store *st, const char *session_id,
                                struct lade_store_session *out)
{
    ENTER(st);
    if (!session_id_ok(session_id) || !out)
        return LADE_ERR_INVAL;
    return st->ops->session_get(st->be, session_id, out);
}

lade_err lade_store_session_list(struct lade_store *st, const struct lade_store_session_query *q,
                                 lade_store_session_fn fn, void *ud, uint64_t *total_out)
{
    uint64_t total = 0;
    ENTER(st);
    if (!q || !fn || !opt_id_ok(q->installation_id) || !opt_id_ok(q->charger_id) ||
        !opt_id_ok(q->user_id) || q->page_size > LADE_STORE_PAGE_SIZE_MAX ||
        (q->to_s != 0 && q->to_s < q->from_s))
        return LADE_ERR_INVAL;
    struct lade_store_session_query qq = *q;
    if (qq.page_size == 0)
        qq.page_size = LADE_STORE_PAGE_SIZE_DEFAULT;
    if (qq.to_s == 0)
        qq.to_s = INT64_MAX;
    st->in_list = true;
    lade_err err = st->ops->session_list(st->be, &qq, fn, ud, &total);
    st->in_list = false;
    if (total_out)
        *total_out = err == LADE_OK ? total : 0;
    return err;
}

lade_err lade_store_setpoint_add(struct lade_store *st, const struct lade_store_setpoint *sp,
                                 int64_t *id_out)
{
    ENTER(st);
    if (!setpoint_ok(sp))
        return LADE_ERR_INVAL;
    int64_t id = 0;
    lade_err err = st->ops->setpoint_add(st->be, sp, &id);
    if (id_out)
        *id_out = err == LADE_OK ? id : 0;
    return err;
}

lade_err lade_store_setpoint_confirm(struct lade_store *st, int64_t id, int64_t confirmed_ms)
{
    ENTER(st);
    if (!id_ok(id) || confirmed_ms <= 0)
        return LADE_ERR_INVAL;
    return st->ops->setpoint_confirm(st->be, id, confirmed_ms);
}

lade_err lade_store_setpoint_last(struct lade_store *st, int64_t charger_id,
                                  struct lade_store_setpoint *out)
{
    ENTER(st);
    if (!id_ok(charger_id) || !out)
        return LADE_ERR_INVAL;
    return st->ops->setpoint_last(st->be, charger_id, out);
}

lade_err lade_store_setpoint_prune(struct lade_store *st, int64_t before_ms, uint32_t max_rows,
                                   uint64_t *deleted_out)
{
    uint64_t n = 0;
    ENTER(st);
    lade_err err = st->ops->setpoint_prune(st->be, before_ms, max_rows, &n);
    if (deleted_out)
        *deleted_out = err == LADE_OK ? n : 0;
    return err;
}

lade_err lade_store_user_add(struct lade_store *st, const struct lade_store_user *u,
                             int64_t *id_out)
{
    ENTER(st);
    if (!user_ok(u))
        return LADE_ERR_INVAL;
    int64_t id = 0;
    lade_err err = st->ops->user_add(st->be, u, &id);
    if (id_out)
        *id_out = err == LADE_OK ? id : 0;
    return err;
}

lade_err lade_store_user_get(struct lade_store *st, int64_t id, struct lade_store_user *out)
{
    ENTER(st);
    if (!id_ok(id) || !out)
        return LADE_ERR_INVAL;
    return st->ops->user_get(st->be, id, out);
}

lade_err lade_store_user_get_by_name(struct lade_store *st, const char *username,
                                     struct lade_store_user *out)
{
    ENTER(st);
    if (!username_ok(username) || !out)
        return LADE_ERR_INVAL;
    return st->ops->user_get_by_name(st->be, username, out);
}

lade_err lade_store_user_update(struct lade_store *st, const struct lade_store_user *u)
{
    ENTER(st);
    if (!user_ok(u) || !id_ok(u->id))
        return LADE_ERR_INVAL;
    return st->ops->user_update(st->be, u);
}

lade_err lade_store_user_remove(struct lade_store *st, int64_t id)
{
    ENTER(st);
    if (!id_ok(id))
        return LADE_ERR_INVAL;
    return st->ops->user_remove(st->be, id);
}

lade_err lade_store_user_list(struct lade_store *st, lade_store_user_fn fn, void *ud)
{
    ENTER(st);
    if (!fn)
        return LADE_ERR_INVAL;
    LIST_CALL(st, st->ops->user_list(st->be, fn, ud));
}

lade_err lade_store_access_set(struct lade_store *st, int64_t user_id, int64_t installation_id,
                               uint32_t roles)
{
    ENTER(st);
    if (!id_ok(user_id) || !id_ok(installation_id) || roles > LADE_ROLE_ALL)
        return LADE_ERR_INVAL;
    return st->ops->access_set(st->be, user_id, installation_id, roles);
}

lade_err lade_store_access_get(struct lade_store *st, int64_t user_id, int64_t installation_id,
                               uint32_t *roles_out)
{
    ENTER(st);
    if (!id_ok(user_id) || !id_ok(installation_id) || !roles_out)
        return LADE_ERR_INVAL;
    *roles_out = 0;
    return st->ops->access_get(st->be, user_id, installation_id, roles_out);
}

lade_err lade_store_token_add(struct lade_store *st, const uint8_t hash[LADE_STORE_TOKEN_HASH_LEN],
                              int64_t user_id, int64_t created_s, int64_t expires_s)
{
    ENTER(st);
    if (!hash || !id_ok(user_id) || created_s >= expires_s)
        return LADE_ERR_INVAL;
    return st->ops->token_add(st->be, hash, user_id, created_s, expires_s);
}

lade_err lade_store_token_get(struct lade_store *st, const uint8_t hash[LADE_STORE_TOKEN_HASH_LEN],
                              int64_t now_s, int64_t *user_id_out, int64_t *expires_s_out)
{
    int64_t uid = 0, exp = 0;
    ENTER(st);
    if (!hash)
        return LADE_ERR_INVAL;
    lade_err err = st->ops->token_get(st->be, hash, now_s, &uid, &exp);
    bool filled = err == LADE_OK || err == LADE_ERR_EXPIRED;
    if (user_id_out)
        *user_id_out = filled ? uid : 0;
    if (expires_s_out)
        *expires_s_out = filled ? exp : 0;
    return err;
}

lade_err lade_store_token_revoke(struct lade_store *st,
                                 const uint8_t hash[LADE_STORE_TOKEN_HASH_LEN])
{
    ENTER(st);
    if (!hash)
        return LADE_ERR_INVAL;
    return st->ops->token_revoke(st->be, hash);
}

lade_err lade_store_token_revoke_user(struct lade_store *st, int64_t user_id, uint64_t *n_out)
{
    uint64_t n = 0;
    ENTER(st);
    if (!id_ok(user_id))
        return LADE_ERR_INVAL;
    lade_err err = st->ops->token_revoke_user(st->be, user_id, &n);
    if (n_out)
        *n_out = err == LADE_OK ? n : 0;
    return err;
}

lade_err lade_store_token_prune(struct lade_store *st, int64_t now_s, uint64_t *deleted_out)
{
    uint64_t n = 0;
    ENTER(st);
    lade_err err = st->ops->token_prune(st->be, now_s, &n);
    if (deleted_out)
        *deleted_out = err == LADE_OK ? n : 0;
    return err;
}
