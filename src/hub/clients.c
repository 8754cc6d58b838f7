/* Authenticated connections by client id: a chained hash table (FNV-1a), grown at load 1.
 * Tens of thousands of chargers per hub (SPEC U5) make a list scan per ACL check too slow. */
#include <stdlib.h>
#include <string.h>

#include "hub.h"

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

struct hub_client *hub_clients_find(struct hub_clients *t, const char *id)
{
    if (!t->nbucket || !id)
        return NULL;
    for (struct hub_client *c = t->bucket[fnv1a(id) % t->nbucket]; c; c = c->next)
        if (strcmp(c->id, id) == 0)
            return c;
    return NULL;
}

static lade_err grow(struct hub_clients *t)
{
    size_t nb = t->nbucket ? t->nbucket * 2 : 64;
    struct hub_client **b = calloc(nb, sizeof *b);
    if (!b)
        return LADE_ERR_NOMEM;
    for (size_t i = 0; i < t->nbucket; i++) {
        struct hub_client *c = t->bucket[i];
        while (c) {
            struct hub_client *next = c->next;
            size_t k = fnv1a(c->id) % nb;
            c->next = b[k];
            b[k] = c;
            c = next;
        }
    }
    free(t->bucket);
    t->bucket = b;
    t->nbucket = nb;
    return LADE_OK;
}

lade_err hub_clients_put(struct hub_clients *t, const char *id, const void *conn, enum hub_who who,
                         int64_t expiry_s)
{
    struct hub_client *c = hub_clients_find(t, id);
    if (!c) {
        if (t->count >= t->nbucket && grow(t) != LADE_OK)
            return LADE_ERR_NOMEM;
        c = calloc(1, sizeof *c);
        if (!c || !(c->id = strdup(id))) {
            free(c);
            return LADE_ERR_NOMEM;
        }
        size_t k = fnv1a(id) % t->nbucket;
        c->next = t->bucket[k];
        t->bucket[k] = c;
        t->count++;
    }
    c->conn = conn;
    c->who = who;
    c->expiry_s = expiry_s;
    c->kicked = false;
    return LADE_OK;
}

void hub_clients_remove(struct hub_clients *t, const char *id)
{
    if (!t->nbucket)
        return;
    struct hub_client **pp = &t->bucket[fnv1a(id) % t->nbucket];
    for (; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->id, id) == 0) {
            struct hub_client *c = *pp;
            *pp = c->next;
            free(c->id);
            free(c);
            t->count--;
            return;
        }
    }
}

void hub_clients_free(struct hub_clients *t)
{
    for (size_t i = 0; i < t->nbucket; i++) {
        struct hub_client *c = t->bucket[i];
        while (c) {
            struct hub_client *next = c->next;
            free(c->id);
            free(c);
            c = next;
        }
    }
    free(t->bucket);
    memset(t, 0, sizeof *t);
}

lade_err hub_clients_expired(struct hub_clients *t, int64_t now_s, int64_t grace_s, char ***ids,
                             size_t *n)
{
    char **out = NULL;
    size_t cnt = 0, cap = 0;
    *ids = NULL;
    *n = 0;
    for (size_t i = 0; i < t->nbucket; i++) {
        for (struct hub_client *c = t->bucket[i]; c; c = c->next) {
            if (c->kicked || now_s < c->expiry_s + grace_s)
                continue;
            if (cnt == cap) {
                size_t nc = cap ? cap * 2 : 8;
                char **o = realloc(out, nc * sizeof *o);
                if (!o)
                    goto nomem;
                out = o;
                cap = nc;
            }
            if (!(out[cnt] = strdup(c->id)))
                goto nomem;
            cnt++;
            c->kicked = true;
        }
    }
    *ids = out;
    *n = cnt;
    return LADE_OK;
nomem:
    for (size_t i = 0; i < cnt; i++)
        free(out[i]);
    free(out);
    return LADE_ERR_NOMEM;
}
