/* Commissioning an installation from a site file (lade-cloud --site FILE; docs/portal.md,
 * "Site files"): the installation, its circuit tree and its chargers in one JSON document,
 * checked completely (including by the balancer) before anything is written. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "lade/clock.h"
#include "lade/log.h"
#include "lade/store.h"

#include "portal_int.h"

#define MOD         "site"
#define SITE_MAX_SZ (1024 * 1024)
#define MAX_ITEMS   1000

static lade_err bad(char *why, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static lade_err bad(char *why, size_t cap, const char *fmt, ...)
{
    if (why && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, cap, fmt, ap);
        va_end(ap);
    }
    return LADE_ERR_CONFIG;
}

static bool get_str(const cJSON *o, const char *k, const char **out, bool required, size_t max)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v)
        return !required;
    if (!cJSON_IsString(v) || !v->valuestring[0] || strlen(v->valuestring) > max)
        return false;
    *out = v->valuestring;
    return true;
}

/* Amperes (number, up to 3 decimals) → mA within [lo, hi]. */
static bool amps(const cJSON *v, int32_t lo, int32_t hi, int32_t *out)
{
    if (!cJSON_IsNumber(v))
        return false;
    double ma = v->valuedouble * 1000.0;
    if (!(ma >= lo && ma <= hi))
        return false;
    *out = (int32_t)(ma + 0.5);
    return true;
}

/* Whole amperes (a charger's settings: its twin takes integers) → mA within [lo, hi]. */
static bool whole_amps(const cJSON *v, int32_t lo, int32_t hi, int32_t *out)
{
    return cJSON_IsNumber(v) && v->valuedouble == (double)(int64_t)v->valuedouble &&
           amps(v, lo, hi, out);
}

/* "Fuse": 40 or [40,40,40] → per phase. */
static bool amps3(const cJSON *o, const char *k, int32_t hi, int32_t out[3], bool required)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v)
        return !required;
    if (cJSON_IsNumber(v))
        return amps(v, 0, hi, &out[0]) && (out[1] = out[2] = out[0], true);
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 3)
        return false;
    for (int i = 0; i < 3; i++)
        if (!amps(cJSON_GetArrayItem(v, i), 0, hi, &out[i]))
            return false;
    return true;
}

static bool get_int(const cJSON *o, const char *k, int lo, int hi, int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v)
        return true;
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int)v->valuedouble || v->valueint < lo ||
        v->valueint > hi)
        return false;
    *out = v->valueint;
    return true;
}

static int inst_find(void *ud, const struct lade_store_installation *in, uint32_t roles)
{
    (void)roles;
    struct {
        const char *name;
        int64_t id;
    } *f = ud;
    if (strcmp(in->name, f->name) == 0) {
        f->id = in->id;
        return 1;
    }
    return 0;
}

struct site_doc {
    struct lade_store_installation in;
    size_t n_circ, n_chg;
    struct lade_store_circuit circ[MAX_ITEMS];
    const char *circ_parent[MAX_ITEMS]; /* parent circuit's name or NULL */
    struct lade_store_charger chg[MAX_ITEMS];
    const char *chg_circuit[MAX_ITEMS];
};

static lade_err parse(const cJSON *j, struct site_doc *d, char *why, size_t cap)
{
    const char *name = NULL;
    if (!cJSON_IsObject(j))
        return bad(why, cap, "the site file must hold one JSON object");
    if (!get_str(j, "Name", &name, true, LADE_STORE_NAME_MAX))
        return bad(why, cap, "Name: a non-empty string of at most %d bytes is required",
                   LADE_STORE_NAME_MAX);
    snprintf(d->in.name, sizeof d->in.name, "%s", name);
    int nt = LADE_NET_TN_3_PHASE;
    if (!get_int(j, "NetworkType", 1, 4, &nt))
        return bad(why, cap,
                   "NetworkType: 1 IT_1_Phase, 2 IT_3_Phase, 3 TN_1_Phase or 4 "
                   "TN_3_Phase");
    d->in.network_type = (enum lade_network_type)nt;
    if (!amps3(j, "Fuse", LADE_STORE_FUSE_MAX_MA, d->in.fuse_ma, true) || d->in.fuse_ma[0] <= 0)
        return bad(why, cap, "Fuse: the main fuse in A, one number or [L1,L2,L3], L1 > 0");
    memcpy(d->in.available_ma, d->in.fuse_ma, sizeof d->in.available_ma);
    if (!amps3(j, "Available", LADE_STORE_FUSE_MAX_MA, d->in.available_ma, false))
        return bad(why, cap, "Available: the current the site may draw, in A");
    for (int k = 0; k < 3; k++)
        if (d->in.available_ma[k] > d->in.fuse_ma[k])
            return bad(why, cap, "Available: above the fuse on L%d", k + 1);
    d->in.created_s = lade_wall_s();

    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "Circuits"), *e;
    if (arr && !cJSON_IsArray(arr))
        return bad(why, cap, "Circuits: an array");
    cJSON_ArrayForEach(e, arr)
    {
        if (d->n_circ == MAX_ITEMS)
            return bad(why, cap, "Circuits: at most %d", MAX_ITEMS);
        struct lade_store_circuit *c = &d->circ[d->n_circ];
        const char *cn = NULL, *parent = NULL;
        if (!cJSON_IsObject(e) || !get_str(e, "Name", &cn, true, LADE_STORE_NAME_MAX))
            return bad(why, cap, "Circuits[%zu].Name: required", d->n_circ);
        for (size_t i = 0; i < d->n_circ; i++)
            if (strcmp(d->circ[i].name, cn) == 0)
                return bad(why, cap, "Circuits[%zu].Name: \"%s\" is used twice", d->n_circ, cn);
        snprintf(c->name, sizeof c->name, "%s", cn);
        if (!get_str(e, "Parent", &parent, false, LADE_STORE_NAME_MAX))
            return bad(why, cap, "Circuits[%zu].Parent: the name of a circuit listed before it",
                       d->n_circ);
        if (parent) {
            bool known = false;
            for (size_t i = 0; i < d->n_circ; i++)
                known |= strcmp(d->circ[i].name, parent) == 0;
            if (!known)
                return bad(why, cap, "Circuits[%zu].Parent: no circuit \"%s\" before it", d->n_circ,
                           parent);
        }
        d->circ_parent[d->n_circ] = parent;
        if (!amps3(e, "Fuse", LADE_STORE_FUSE_MAX_MA, c->fuse_ma, true))
            return bad(why, cap, "Circuits[%zu].Fuse: the circuit's fuse in A", d->n_circ);
        memcpy(c->limit_ma, c->fuse_ma, sizeof c->limit_ma);
        if (!amps3(e, "Limit", LADE_STORE_FUSE_MAX_MA, c->limit_ma, false))
            return bad(why, cap, "Circuits[%zu].Limit: a configured limit in A", d->n_circ);
        for (int k = 0; k < 3; k++)
            if (c->limit_ma[k] > c->fuse_ma[k])
                return bad(why, cap, "Circuits[%zu].Limit: above its fuse on L%d", d->n_circ,
                           k + 1);
        c->created_s = d->in.created_s;
        d->n_circ++;
    }
    arr = cJSON_GetObjectItemCaseSensitive(j, "Chargers");
    if (arr && !cJSON_IsArray(arr))
        return bad(why, cap, "Chargers: an array");
    cJSON_ArrayForEach(e, arr)
    {
        if (d->n_chg == MAX_ITEMS)
            return bad(why, cap, "Chargers: at most %d", MAX_ITEMS);
        size_t i = d->n_chg;
        struct lade_store_charger *c = &d->chg[i];
        lade_store_charger_defaults(c);
        const char *dev = NULL, *cn = NULL, *circ = NULL, *rotation = NULL;
        if (!cJSON_IsObject(e) || !get_str(e, "DeviceId", &dev, true, LADE_STORE_DEVICE_ID_MAX))
            return bad(why, cap, "Chargers[%zu].DeviceId: required", i);
        snprintf(c->device_id, sizeof c->device_id, "%s", dev);
        if (!get_str(e, "Name", &cn, false, LADE_STORE_NAME_MAX))
            return bad(why, cap, "Chargers[%zu].Name: a string", i);
        snprintf(c->name, sizeof c->name, "%s", cn ? cn : dev);
        if (!get_str(e, "Circuit", &circ, false, LADE_STORE_NAME_MAX))
            return bad(why, cap, "Chargers[%zu].Circuit: a circuit's name", i);
        if (circ) {
            bool known = false;
            for (size_t k = 0; k < d->n_circ; k++)
                known |= strcmp(d->circ[k].name, circ) == 0;
            if (!known)
                return bad(why, cap, "Chargers[%zu].Circuit: no circuit \"%s\"", i, circ);
        }
        d->chg_circuit[i] = circ;
        if (!get_str(e, "Rotation", &rotation, false, 6) ||
            (rotation && lade_store_rotation_parse(rotation, c->phase_map) != LADE_OK))
            return bad(why, cap, "Chargers[%zu].Rotation: \"L1L2L3\", \"L2L3L1\", ...", i);
        const cJSON *v;
        if ((v = cJSON_GetObjectItemCaseSensitive(e, "MaxCurrent")) &&
            !whole_amps(v, 6000, LADE_STORE_CHARGER_MAX_MA, &c->max_current_ma))
            return bad(why, cap, "Chargers[%zu].MaxCurrent: 6..63 A, whole amperes", i);
        if ((v = cJSON_GetObjectItemCaseSensitive(e, "MinCurrent")) &&
            !whole_amps(v, 6000, c->max_current_ma, &c->min_current_ma))
            return bad(why, cap, "Chargers[%zu].MinCurrent: 6 A..MaxCurrent, whole amperes", i);
        if ((v = cJSON_GetObjectItemCaseSensitive(e, "OfflineCurrent")) &&
            !whole_amps(v, 0, c->max_current_ma, &c->offline_current_ma))
            return bad(why, cap, "Chargers[%zu].OfflineCurrent: 0..MaxCurrent, whole amperes", i);
        if (c->offline_current_ma > c->max_current_ma)
            c->offline_current_ma = c->max_current_ma;
        if (c->min_current_ma > c->max_current_ma)
            c->min_current_ma = c->max_current_ma;
        int mp = c->max_phases, op = c->offline_phases, pr = c->priority;
        if (!get_int(e, "MaxPhases", 1, 3, &mp) || mp == 2)
            return bad(why, cap, "Chargers[%zu].MaxPhases: 1 or 3", i);
        if (!get_int(e, "OfflinePhases", 1, 3, &op) || op == 2)
            return bad(why, cap, "Chargers[%zu].OfflinePhases: 1 or 3", i);
        if (!get_int(e, "Priority", 0, LADE_STORE_PRIORITY_MAX, &pr))
            return bad(why, cap, "Chargers[%zu].Priority: 0..%d", i, LADE_STORE_PRIORITY_MAX);
        c->max_phases = (uint8_t)mp;
        c->offline_phases = (uint8_t)op;
        c->priority = pr;
        c->created_s = d->in.created_s;
        d->n_chg++;
    }
    return LADE_OK;
}

lade_err lade_portal_apply_site(struct lade_portal *p, const char *path, bool *created, char *why,
                                size_t cap)
{
    if (created)
        *created = false;
    FILE *f = fopen(path, "rb");
    if (!f)
        return bad(why, cap, "cannot open %s", path);
    char *text = malloc(SITE_MAX_SZ + 1);
    size_t n = text ? fread(text, 1, SITE_MAX_SZ + 1, f) : 0;
    fclose(f);
    if (!text)
        return LADE_ERR_NOMEM;
    if (n > SITE_MAX_SZ) {
        free(text);
        return bad(why, cap, "%s: larger than 1 MiB", path);
    }
    text[n] = 0;
    cJSON *j = cJSON_ParseWithLength(text, n);
    free(text);
    if (!j)
        return bad(why, cap, "%s: not valid JSON", path);
    struct site_doc *d = calloc(1, sizeof *d);
    if (!d) {
        cJSON_Delete(j);
        return LADE_ERR_NOMEM;
    }
    char reason[300] = "";
    lade_err err = parse(j, d, reason, sizeof reason);
    if (err != LADE_OK) {
        bad(why, cap, "%s: %s", path, reason);
        goto out;
    }
    struct lade_store *st = portal_store(p);
    struct {
        const char *name;
        int64_t id;
    } found = {d->in.name, 0};
    if ((err = lade_store_installation_list(st, 0, inst_find, &found)) != LADE_OK)
        goto out;
    if (found.id) {
        LOG_I(MOD, "installation \"%s\" exists: %s not applied again", d->in.name, path);
        goto out;
    }
    /* The chargers must not belong to another installation already. */
    for (size_t i = 0; i < d->n_chg; i++) {
        struct lade_store_charger old;
        if (lade_store_charger_get_by_device(st, d->chg[i].device_id, &old) == LADE_OK &&
            old.installation_id) {
            err = bad(why, cap, "%s: charger %s already belongs to another installation", path,
                      old.device_id);
            goto out;
        }
    }
    int64_t inst = 0;
    if ((err = lade_store_installation_add(st, &d->in, &inst)) != LADE_OK) {
        bad(why, cap, "%s: installation: %s", path, lade_strerror(err));
        goto out;
    }
    int64_t *cid = calloc(d->n_circ + 1, sizeof *cid);
    err = cid ? LADE_OK : LADE_ERR_NOMEM;
    for (size_t i = 0; err == LADE_OK && i < d->n_circ; i++) {
        d->circ[i].installation_id = inst;
        for (size_t k = 0; d->circ_parent[i] && k < i; k++)
            if (strcmp(d->circ[k].name, d->circ_parent[i]) == 0)
                d->circ[i].parent_id = cid[k];
        err = lade_store_circuit_add(st, &d->circ[i], &cid[i]);
        if (err != LADE_OK)
            bad(why, cap, "%s: circuit %s: %s", path, d->circ[i].name, lade_strerror(err));
    }
    for (size_t i = 0; err == LADE_OK && i < d->n_chg; i++) {
        struct lade_store_charger *c = &d->chg[i], old;
        c->installation_id = inst;
        for (size_t k = 0; d->chg_circuit[i] && k < d->n_circ; k++)
            if (strcmp(d->circ[k].name, d->chg_circuit[i]) == 0)
                c->circuit_id = cid[k];
        if (lade_store_charger_get_by_device(st, c->device_id, &old) == LADE_OK) {
            c->id = old.id;
            c->created_s = old.created_s;
            err = lade_store_charger_update(st, c);
        } else {
            err = lade_store_charger_add(st, c, &c->id);
        }
        if (err != LADE_OK)
            bad(why, cap, "%s: charger %s: %s", path, c->device_id, lade_strerror(err));
    }
    free(cid);
    if (err == LADE_OK) {
        char r[256] = "";
        err = portal_reload(p, inst, r, sizeof r);
        if (err != LADE_OK)
            bad(why, cap, "%s: %s", path, r[0] ? r : lade_strerror(err));
    }
    if (err != LADE_OK) {
        /* Nothing half-done stays: the installation goes, its chargers become unassigned. */
        (void)!lade_store_installation_remove(st, inst);
        (void)!portal_reload(p, inst, NULL, 0);
        goto out;
    }
    if (created)
        *created = true;
    LOG_I(MOD, "installation \"%s\" created from %s: %zu circuits, %zu chargers", d->in.name, path,
          d->n_circ, d->n_chg);
out:
    free(d);
    cJSON_Delete(j);
    return err;
}
