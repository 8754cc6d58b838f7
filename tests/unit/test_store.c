/* Unit tests for the portal store (SQLite backend, files in a temporary directory). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "lade/store.h"

struct fx {
    char dir[256];
    char path[300];
    struct lade_store *st;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/lade-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/portal.db", f->dir);
    if (lade_store_open_sqlite(f->path, &f->st) != LADE_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[700];
    lade_store_close(f->st);
    snprintf(cmd, sizeof cmd, "chmod -R u+w '%s'; rm -rf '%s'", f->dir, f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static void reopen(struct fx *f)
{
    lade_store_close(f->st);
    f->st = NULL;
    assert_int_equal(lade_store_open_sqlite(f->path, &f->st), LADE_OK);
}

/* ---- builders ---- */

static struct lade_store_installation inst_v(const char *name, int32_t fuse_a, int32_t avail_a)
{
    struct lade_store_installation in;
    memset(&in, 0, sizeof in);
    snprintf(in.name, sizeof in.name, "%s", name);
    in.network_type = LADE_NET_TN_3_PHASE;
    for (int i = 0; i < 3; i++) {
        in.fuse_ma[i] = fuse_a * 1000;
        in.available_ma[i] = avail_a * 1000;
    }
    in.created_s = 1700000000;
    return in;
}

static int64_t inst_add(struct fx *f, const char *name)
{
    struct lade_store_installation in = inst_v(name, 125, 100);
    int64_t id = 0;
    assert_int_equal(lade_store_installation_add(f->st, &in, &id), LADE_OK);
    assert_true(id > 0);
    return id;
}

static struct lade_store_circuit circ_v(int64_t inst, int64_t parent, const char *name)
{
    struct lade_store_circuit c;
    memset(&c, 0, sizeof c);
    c.installation_id = inst;
    c.parent_id = parent;
    snprintf(c.name, sizeof c.name, "%s", name);
    for (int i = 0; i < 3; i++) {
        c.fuse_ma[i] = 63000;
        c.limit_ma[i] = 50000;
    }
    c.created_s = 1700000001;
    return c;
}

static int64_t circ_add(struct fx *f, int64_t inst, int64_t parent, const char *name)
{
    struct lade_store_circuit c = circ_v(inst, parent, name);
    int64_t id = 0;
    assert_int_equal(lade_store_circuit_add(f->st, &c, &id), LADE_OK);
    assert_true(id > 0);
    return id;
}

static struct lade_store_charger chg_v(const char *dev, int64_t inst, int64_t circ)
{
    struct lade_store_charger c;
    lade_store_charger_defaults(&c);
    snprintf(c.device_id, sizeof c.device_id, "%s", dev);
    snprintf(c.name, sizeof c.name, "Charger %s", dev);
    c.installation_id = inst;
    c.circuit_id = circ;
    c.created_s = 1700000002;
    return c;
}

static int64_t chg_add(struct fx *f, const char *dev, int64_t inst, int64_t circ)
{
    struct lade_store_charger c = chg_v(dev, inst, circ);
    int64_t id = 0;
    assert_int_equal(lade_store_charger_add(f->st, &c, &id), LADE_OK);
    assert_true(id > 0);
    return id;
}

static struct lade_store_session sess_v(unsigned n, const char *dev, int64_t start_s)
{
    struct lade_store_session s;
    memset(&s, 0, sizeof s);
    snprintf(s.session_id, sizeof s.session_id, "%032x", n);
    snprintf(s.device_id, sizeof s.device_id, "%s", dev);
    s.start_s = start_s;
    s.end_s = start_s + 3600;
    s.energy_wh = 11000 + n;
    s.reliable_clock = true;
    s.peak_power_w = 11040;
    s.phases = 3;
    snprintf(s.end_reason, sizeof s.end_reason, "unplugged");
    s.received_s = start_s + 3700;
    return s;
}

static enum lade_store_ingest sess_add(struct fx *f, const struct lade_store_session *s)
{
    enum lade_store_ingest r = 0;
    assert_int_equal(lade_store_session_add(f->st, s, &r), LADE_OK);
    return r;
}

static int64_t user_add(struct fx *f, const char *name, uint32_t roles)
{
    struct lade_store_user u;
    int64_t id = 0;
    memset(&u, 0, sizeof u);
    snprintf(u.username, sizeof u.username, "%s", name);
    u.roles = roles;
    snprintf(u.password_hash, sizeof u.password_hash, "$scrypt$ln=1,r=1,p=1$x$y");
    u.created_s = 1700000003;
    assert_int_equal(lade_store_user_add(f->st, &u, &id), LADE_OK);
    assert_true(id > 0);
    return id;
}

/* ---- list collectors ---- */

struct ids {
    int n;
    int64_t id[64];
    uint32_t roles[64];
    int stop_after; /* 0: never */
};

static int collect_inst(void *ud, const struct lade_store_installation *in, uint32_t roles)
{
    struct ids *c = ud;
    c->roles[c->n] = roles;
    c->id[c->n++] = in->id;
    return c->stop_after && c->n >= c->stop_after;
}

static int collect_circ(void *ud, const struct lade_store_circuit *x)
{
    struct ids *c = ud;
    c->id[c->n++] = x->id;
    return 0;
}

static int collect_chg(void *ud, const struct lade_store_charger *x)
{
    struct ids *c = ud;
    c->id[c->n++] = x->id;
    return c->stop_after && c->n >= c->stop_after;
}

static int collect_sess(void *ud, const struct lade_store_session *x)
{
    struct ids *c = ud;
    c->id[c->n++] = x->end_s;
    return 0;
}

static int collect_user(void *ud, const struct lade_store_user *x)
{
    struct ids *c = ud;
    c->id[c->n++] = x->id;
    return 0;
}

static int count_obs(void *ud, const struct lade_store_obs *o)
{
    struct ids *c = ud;
    c->id[c->n++] = o->obs_id;
    return 0;
}

static struct ids list_chargers(struct fx *f, int64_t inst, int64_t user)
{
    struct ids c = {0};
    assert_int_equal(lade_store_charger_list(f->st, inst, user, collect_chg, &c), LADE_OK);
    return c;
}

static struct ids list_inst(struct fx *f, int64_t user)
{
    struct ids c = {0};
    assert_int_equal(lade_store_installation_list(f->st, user, collect_inst, &c), LADE_OK);
    return c;
}

/* ---- tests ---- */

static void test_rotation(void **state)
{
    (void)state;
    uint8_t m[3];
    char txt[7];
    assert_int_equal(lade_store_rotation_parse("L2L3L1", m), LADE_OK);
    assert_int_equal(m[0], 2);
    assert_int_equal(m[1], 3);
    assert_int_equal(m[2], 1);
    assert_int_equal(lade_store_rotation_format(m, txt), LADE_OK);
    assert_string_equal(txt, "L2L3L1");
    assert_int_equal(lade_store_rotation_parse("L1L1L2", m), LADE_ERR_INVAL);
    assert_int_equal(lade_store_rotation_parse("L1L2", m), LADE_ERR_INVAL);
    assert_int_equal(lade_store_rotation_parse("L1L2L4", m), LADE_ERR_INVAL);
    assert_int_equal(lade_store_rotation_parse("l1l2l3", m), LADE_ERR_INVAL);
    assert_int_equal(lade_store_rotation_parse("L1L2L3 ", m), LADE_ERR_INVAL);
    assert_int_equal(lade_store_rotation_parse(NULL, m), LADE_ERR_INVAL);
    const uint8_t bad[3] = {1, 2, 2}, zero[3] = {0, 1, 2};
    assert_false(lade_store_rotation_valid(bad));
    assert_false(lade_store_rotation_valid(zero));
    assert_int_equal(lade_store_rotation_format(bad, txt), LADE_ERR_INVAL);
}

static void test_installation_crud(void **state)
{
    struct fx *f = *state;
    struct lade_store_installation in = inst_v("Garage A", 125, 100), got;
    int64_t id = 0;
    in.available_ma[2] = 80000;
    assert_int_equal(lade_store_installation_add(f->st, &in, &id), LADE_OK);
    assert_int_equal(lade_store_installation_get(f->st, id, &got), LADE_OK);
    assert_int_equal(got.id, id);
    assert_string_equal(got.name, "Garage A");
    assert_int_equal(got.network_type, LADE_NET_TN_3_PHASE);
    assert_int_equal(got.available_ma[0], 100000);
    assert_int_equal(got.available_ma[2], 80000);
    assert_int_equal(got.fuse_ma[1], 125000);
    assert_int_equal(got.created_s, 1700000000);

    got.network_type = LADE_NET_IT_1_PHASE;
    got.fuse_ma[1] = got.fuse_ma[2] = 0;
    got.available_ma[1] = got.available_ma[2] = 0;
    snprintf(got.name, sizeof got.name, "Garage Å");
    assert_int_equal(lade_store_installation_update(f->st, &got), LADE_OK);
    memset(&in, 0, sizeof in);
    assert_int_equal(lade_store_installation_get(f->st, id, &in), LADE_OK);
    assert_string_equal(in.name, "Garage Å");
    assert_int_equal(in.network_type, LADE_NET_IT_1_PHASE);
    assert_int_equal(in.fuse_ma[2], 0);
    assert_int_equal(in.created_s, 1700000000);

    /* Refused: configured above the fuse (R15), bad network type, no fuse, bad names. */
    struct lade_store_installation bad = inst_v("x", 125, 100);
    bad.available_ma[1] = 125001;
    assert_int_equal(lade_store_installation_add(f->st, &bad, NULL), LADE_ERR_INVAL);
    bad = inst_v("x", 125, 100);
    bad.network_type = 5;
    assert_int_equal(lade_store_installation_add(f->st, &bad, NULL), LADE_ERR_INVAL);
    bad = inst_v("x", 0, 0);
    assert_int_equal(lade_store_installation_add(f->st, &bad, NULL), LADE_ERR_INVAL);
    bad = inst_v("", 125, 100);
    assert_int_equal(lade_store_installation_add(f->st, &bad, NULL), LADE_ERR_INVAL);
    bad = inst_v("tab\there", 125, 100);
    assert_int_equal(lade_store_installation_add(f->st, &bad, NULL), LADE_ERR_INVAL);
    bad = inst_v("bad \xc3\x28 utf8", 125, 100);
    assert_int_equal(lade_store_installation_add(f->st, &bad, NULL), LADE_ERR_INVAL);
    bad = inst_v("x", 125, 100);
    bad.fuse_ma[0] = LADE_STORE_FUSE_MAX_MA + 1;
    assert_int_equal(lade_store_installation_add(f->st, &bad, NULL), LADE_ERR_INVAL);
    bad = inst_v("x", 125, 100);
    bad.available_ma[0] = -1;
    assert_int_equal(lade_store_installation_add(f->st, &bad, NULL), LADE_ERR_INVAL);
    assert_int_equal(lade_store_installation_add(f->st, NULL, NULL), LADE_ERR_INVAL);
    assert_int_equal(lade_store_installation_add(NULL, &in, NULL), LADE_ERR_INVAL);

    assert_int_equal(lade_store_installation_get(f->st, id + 100, &got), LADE_ERR_NOT_FOUND);
    assert_int_equal(lade_store_installation_get(f->st, 0, &got), LADE_ERR_INVAL);
    in.id = id + 100;
    assert_int_equal(lade_store_installation_update(f->st, &in), LADE_ERR_NOT_FOUND);

    int64_t id2 = inst_add(f, "Garage B");
    struct ids l = list_inst(f, 0);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.id[0], id);
    assert_int_equal(l.id[1], id2);

    assert_int_equal(lade_store_installation_remove(f->st, id), LADE_OK);
    assert_int_equal(lade_store_installation_remove(f->st, id), LADE_ERR_NOT_FOUND);
    assert_int_equal(lade_store_installation_get(f->st, id, &got), LADE_ERR_NOT_FOUND);
    assert_int_equal(list_inst(f, 0).n, 1);
}

static void test_circuit_tree(void **state)
{
    struct fx *f = *state;
    int64_t a = inst_add(f, "A"), b = inst_add(f, "B");
    int64_t top = circ_add(f, a, 0, "main board");
    int64_t sub = circ_add(f, a, top, "row 1");
    int64_t subsub = circ_add(f, a, sub, "row 1 left");
    int64_t top2 = circ_add(f, a, 0, "second board");
    int64_t other = circ_add(f, b, 0, "B board");

    struct lade_store_circuit c;
    assert_int_equal(lade_store_circuit_get(f->st, sub, &c), LADE_OK);
    assert_int_equal(c.installation_id, a);
    assert_int_equal(c.parent_id, top);
    assert_string_equal(c.name, "row 1");
    assert_int_equal(c.limit_ma[0], 50000);
    assert_int_equal(c.fuse_ma[2], 63000);
    assert_int_equal(lade_store_circuit_get(f->st, top, &c), LADE_OK);
    assert_int_equal(c.parent_id, 0);

    /* Parents before children. */
    struct ids l = {0};
    assert_int_equal(lade_store_circuit_list(f->st, a, collect_circ, &l), LADE_OK);
    assert_int_equal(l.n, 4);
    assert_int_equal(l.id[0], top);
    assert_int_equal(l.id[1], top2);
    assert_int_equal(l.id[2], sub);
    assert_int_equal(l.id[3], subsub);
    assert_int_equal(lade_store_circuit_list(f->st, 999, collect_circ, &l), LADE_ERR_NOT_FOUND);

    /* References: unknown installation/parent, parent of another installation. */
    c = circ_v(999, 0, "x");
    assert_int_equal(lade_store_circuit_add(f->st, &c, NULL), LADE_ERR_NOT_FOUND);
    c = circ_v(a, 999, "x");
    assert_int_equal(lade_store_circuit_add(f->st, &c, NULL), LADE_ERR_NOT_FOUND);
    c = circ_v(a, other, "x");
    assert_int_equal(lade_store_circuit_add(f->st, &c, NULL), LADE_ERR_INVAL);
    c = circ_v(a, 0, "x");
    c.limit_ma[1] = 64000; /* above its fuse */
    assert_int_equal(lade_store_circuit_add(f->st, &c, NULL), LADE_ERR_INVAL);

    /* Cycles and moves. */
    assert_int_equal(lade_store_circuit_get(f->st, top, &c), LADE_OK);
    c.parent_id = subsub;
    assert_int_equal(lade_store_circuit_update(f->st, &c), LADE_ERR_INVAL);
    c.parent_id = top;
    assert_int_equal(lade_store_circuit_update(f->st, &c), LADE_ERR_INVAL);
    assert_int_equal(lade_store_circuit_get(f->st, sub, &c), LADE_OK);
    c.parent_id = top2;
    snprintf(c.name, sizeof c.name, "row 1 moved");
    assert_int_equal(lade_store_circuit_update(f->st, &c), LADE_OK);
    assert_int_equal(lade_store_circuit_get(f->st, sub, &c), LADE_OK);
    assert_int_equal(c.parent_id, top2);
    assert_string_equal(c.name, "row 1 moved");
    c.installation_id = b; /* circuits never change installation */
    c.parent_id = 0;
    assert_int_equal(lade_store_circuit_update(f->st, &c), LADE_ERR_INVAL);
    c = circ_v(a, 0, "ghost");
    c.id = 999;
    assert_int_equal(lade_store_circuit_update(f->st, &c), LADE_ERR_NOT_FOUND);

    /* Depth limit: a chain of DEPTH_MAX levels, one more is refused. */
    int64_t parent = 0, chain[LADE_STORE_CIRCUIT_DEPTH_MAX];
    for (int i = 0; i < LADE_STORE_CIRCUIT_DEPTH_MAX; i++)
        parent = chain[i] = circ_add(f, b, parent, "level");
    c = circ_v(b, parent, "too deep");
    assert_int_equal(lade_store_circuit_add(f->st, &c, NULL), LADE_ERR_INVAL);
    /* Moving a two-level subtree under the fourth-deepest level would exceed it too. */
    assert_int_equal(lade_store_circuit_get(f->st, chain[LADE_STORE_CIRCUIT_DEPTH_MAX - 2], &c),
                     LADE_OK);
    c.parent_id = chain[LADE_STORE_CIRCUIT_DEPTH_MAX - 4];
    assert_int_equal(lade_store_circuit_update(f->st, &c), LADE_OK);
    c.parent_id = chain[LADE_STORE_CIRCUIT_DEPTH_MAX - 2];
    assert_int_equal(lade_store_circuit_update(f->st, &c), LADE_ERR_INVAL); /* own child */
    c.parent_id = other;
    assert_int_equal(lade_store_circuit_update(f->st, &c), LADE_OK);

    /* Remove: refused while it has sub-circuits; chargers on it stay in the installation. */
    int64_t ch = chg_add(f, "CHG-1", a, subsub);
    assert_int_equal(lade_store_circuit_remove(f->st, sub), LADE_ERR_STATE);
    assert_int_equal(lade_store_circuit_remove(f->st, subsub), LADE_OK);
    assert_int_equal(lade_store_circuit_remove(f->st, subsub), LADE_ERR_NOT_FOUND);
    struct lade_store_charger cg;
    assert_int_equal(lade_store_charger_get(f->st, ch, &cg), LADE_OK);
    assert_int_equal(cg.installation_id, a);
    assert_int_equal(cg.circuit_id, 0);
    assert_int_equal(lade_store_circuit_remove(f->st, sub), LADE_OK);
}

static void test_charger_crud(void **state)
{
    struct fx *f = *state;
    int64_t a = inst_add(f, "A"), b = inst_add(f, "B");
    int64_t ca = circ_add(f, a, 0, "A1"), cb = circ_add(f, b, 0, "B1");

    /* Unassigned, as lade-factory's chargers are before commissioning. */
    int64_t id = chg_add(f, "LDE0000001", 0, 0);
    struct lade_store_charger c, got;
    assert_int_equal(lade_store_charger_get(f->st, id, &got), LADE_OK);
    assert_string_equal(got.device_id, "LDE0000001");
    assert_string_equal(got.name, "Charger LDE0000001");
    assert_int_equal(got.installation_id, 0);
    assert_int_equal(got.circuit_id, 0);
    assert_int_equal(got.max_current_ma, 32000);
    assert_int_equal(got.min_current_ma, 6000);
    assert_int_equal(got.max_phases, 3);
    assert_int_equal(got.offline_current_ma, 6000);
    assert_int_equal(got.offline_phases, 1);
    assert_true(got.active);
    assert_false(got.online);
    assert_int_equal(got.last_seen_s, 0);
    assert_int_equal(got.phase_map[0], 1);
    assert_int_equal(got.phase_map[2], 3);
    assert_int_equal(got.created_s, 1700000002);

    /* Assign with a rotated phase map and the R14 maximum. */
    got.installation_id = a;
    got.circuit_id = ca;
    got.priority = 7;
    got.phase_map[0] = 2;
    got.phase_map[1] = 3;
    got.phase_map[2] = 1;
    got.max_current_ma = LADE_STORE_CHARGER_MAX_MA;
    got.active = false;
    assert_int_equal(lade_store_charger_update(f->st, &got), LADE_OK);
    assert_int_equal(lade_store_charger_get_by_device(f->st, "LDE0000001", &c), LADE_OK);
    assert_int_equal(c.id, id);
    assert_int_equal(c.installation_id, a);
    assert_int_equal(c.circuit_id, ca);
    assert_int_equal(c.priority, 7);
    assert_int_equal(c.phase_map[0], 2);
    assert_int_equal(c.phase_map[1], 3);
    assert_int_equal(c.phase_map[2], 1);
    assert_int_equal(c.max_current_ma, 63000);
    assert_false(c.active);

    /* Constraints. */
    c = chg_v("LDE0000001", 0, 0);
    assert_int_equal(lade_store_charger_add(f->st, &c, NULL), LADE_ERR_EXISTS);
    c = chg_v("LDE0000002", 0, 0);
    c.max_current_ma = LADE_STORE_CHARGER_MAX_MA + 1; /* R14: above 63 A */
    assert_int_equal(lade_store_charger_add(f->st, &c, NULL), LADE_ERR_INVAL);
    c = chg_v("LDE0000002", 0, 0);
    c.min_current_ma = c.max_current_ma + 1;
    assert_int_equal(lade_store_charger_add(f->st, &c, NULL), LADE_ERR_INVAL);
    c = chg_v("LDE0000002", 0, 0);
    c.offline_current_ma = c.max_current_ma + 1;
    assert_int_equal(lade_store_charger_add(f->st, &c, NULL), LADE_ERR_INVAL);
    c = chg_v("LDE0000002", 0, 0);
    c.max_phases = 2;
    assert_int_equal(lade_store_charger_add(f->st, &c, NULL), LADE_ERR_INVAL);
    c = chg_v("LDE0000002", 0, 0);
    c.phase_map[2] = 1;
    assert_int_equal(lade_store_charger_add(f->st, &c, NULL), LADE_ERR_INVAL);
    c = chg_v("LDE0000002", 0, 0);
    c.priority = LADE_STORE_PRIORITY_MAX + 1;
    assert_int_equal(lade_store_charger_add(f->st, &c, NULL), LADE_ERR_INVAL);
    c = chg_v("bad/id", 0, 0);
    assert_int_equal(lade_store_charger_add(f->st, &c, NULL), LADE_ERR_INVAL);
    c = chg_v("LDE0000002", 999, 0); /* unknown installation */
    assert_int_equal(lade_store_charger_add(f->st, &c, NULL), LADE_ERR_NOT_FOUND);
    c = chg_v("LDE0000002", a, 999); /* unknown circuit */
    assert_int_equal(lade_store_charger_add(f->st, &c, NULL), LADE_ERR_NOT_FOUND);
    c = chg_v("LDE0000002", a, cb); /* circuit of another installation */
    assert_int_equal(lade_store_charger_add(f->st, &c, NULL), LADE_ERR_INVAL);
    c = chg_v("LDE0000002", 0, ca); /* a circuit needs an installation */
    assert_int_equal(lade_store_charger_add(f->st, &c, NULL), LADE_ERR_INVAL);
    assert_int_equal(lade_store_charger_get_by_device(f->st, "LDE0000002", &c), LADE_ERR_NOT_FOUND);

    /* Update refusals leave the row as it was. */
    c = got;
    c.circuit_id = cb;
    assert_int_equal(lade_store_charger_update(f->st, &c), LADE_ERR_INVAL);
    c = got;
    c.max_current_ma = 64000;
    assert_int_equal(lade_store_charger_update(f->st, &c), LADE_ERR_INVAL);
    int64_t id2 = chg_add(f, "LDE0000002", b, cb);
    c = got;
    snprintf(c.device_id, sizeof c.device_id, "LDE0000002");
    assert_int_equal(lade_store_charger_update(f->st, &c), LADE_ERR_EXISTS);
    c = got;
    c.id = 999;
    assert_int_equal(lade_store_charger_update(f->st, &c), LADE_ERR_NOT_FOUND);
    assert_int_equal(lade_store_charger_get(f->st, id, &c), LADE_OK);
    assert_int_equal(c.circuit_id, ca);
    assert_int_equal(c.max_current_ma, 63000);

    /* Lists. */
    int64_t id3 = chg_add(f, "LDE0000003", a, 0);
    struct ids l = list_chargers(f, 0, 0);
    assert_int_equal(l.n, 3);
    l = list_chargers(f, a, 0);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.id[0], id);
    assert_int_equal(l.id[1], id3);
    l = list_chargers(f, b, 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.id[0], id2);
    struct ids stop = {.stop_after = 1};
    assert_int_equal(lade_store_charger_list(f->st, 0, 0, collect_chg, &stop), LADE_OK);
    assert_int_equal(stop.n, 1);

    /* Presence. */
    assert_int_equal(lade_store_charger_presence(f->st, id3, true, 1700001000), LADE_OK);
    assert_int_equal(lade_store_charger_get(f->st, id3, &c), LADE_OK);
    assert_true(c.online);
    assert_int_equal(c.last_seen_s, 1700001000);
    assert_int_equal(lade_store_charger_presence(f->st, id3, false, 1700001060), LADE_OK);
    assert_int_equal(lade_store_charger_get_by_device(f->st, "LDE0000003", &c), LADE_OK);
    assert_false(c.online);
    assert_int_equal(c.last_seen_s, 1700001060);
    assert_int_equal(lade_store_charger_presence(f->st, 999, true, 1), LADE_ERR_NOT_FOUND);

    /* Remove takes state, samples, setpoints and presence; sessions stay. */
    struct lade_store_obs o = {.obs_id = 710, .value = "3", .ts_ms = 1};
    struct lade_store_sample smp = {.charger_id = id3, .t_s = 10};
    struct lade_store_setpoint sp = {.charger_id = id3, .current_ma = 16000, .phases = 3};
    struct lade_store_session s = sess_v(1, "LDE0000003", 1700000000);
    assert_int_equal(lade_store_state_put(f->st, id3, &o, 1), LADE_OK);
    assert_int_equal(lade_store_sample_add(f->st, &smp), LADE_OK);
    assert_int_equal(lade_store_setpoint_add(f->st, &sp, NULL), LADE_OK);
    assert_int_equal(sess_add(f, &s), LADE_STORE_ADDED);
    assert_int_equal(lade_store_charger_remove(f->st, id3), LADE_OK);
    assert_int_equal(lade_store_charger_remove(f->st, id3), LADE_ERR_NOT_FOUND);
    assert_int_equal(lade_store_charger_get(f->st, id3, &c), LADE_ERR_NOT_FOUND);
    assert_int_equal(lade_store_setpoint_last(f->st, id3, &sp), LADE_ERR_NOT_FOUND);
    struct ids none = {0};
    assert_int_equal(lade_store_state_list(f->st, id3, count_obs, &none), LADE_ERR_NOT_FOUND);
    uint64_t n = 99;
    assert_int_equal(lade_store_sample_prune(f->st, INT64_MAX, 0, &n), LADE_OK);
    assert_int_equal(n, 0);
    struct lade_store_session sg;
    assert_int_equal(lade_store_session_get(f->st, s.session_id, &sg), LADE_OK);
    assert_int_equal(sg.charger_id, 0);
    assert_string_equal(sg.device_id, "LDE0000003");
    assert_int_equal(sg.installation_id, a);
}

static void test_installation_remove_unassigns(void **state)
{
    struct fx *f = *state;
    int64_t a = inst_add(f, "A"), b = inst_add(f, "B");
    int64_t top = circ_add(f, a, 0, "top");
    int64_t sub = circ_add(f, a, top, "sub");
    int64_t ch1 = chg_add(f, "C1", a, sub), ch2 = chg_add(f, "C2", a, 0),
            ch3 = chg_add(f, "C3", b, 0);
    int64_t u = user_add(f, "owner", 0);
    assert_int_equal(lade_store_access_set(f->st, u, a, LADE_ROLE_OWNER), LADE_OK);
    struct lade_store_session s = sess_v(1, "C1", 1700000000);
    assert_int_equal(sess_add(f, &s), LADE_STORE_ADDED);

    assert_int_equal(lade_store_installation_remove(f->st, a), LADE_OK);
    struct lade_store_charger c;
    assert_int_equal(lade_store_charger_get(f->st, ch1, &c), LADE_OK);
    assert_int_equal(c.installation_id, 0);
    assert_int_equal(c.circuit_id, 0);
    assert_int_equal(lade_store_charger_get(f->st, ch2, &c), LADE_OK);
    assert_int_equal(c.installation_id, 0);
    assert_int_equal(lade_store_charger_get(f->st, ch3, &c), LADE_OK);
    assert_int_equal(c.installation_id, b);
    struct lade_store_circuit cc;
    assert_int_equal(lade_store_circuit_get(f->st, top, &cc), LADE_ERR_NOT_FOUND);
    assert_int_equal(lade_store_circuit_get(f->st, sub, &cc), LADE_ERR_NOT_FOUND);
    assert_int_equal(list_inst(f, u).n, 0);
    struct lade_store_session sg;
    assert_int_equal(lade_store_session_get(f->st, s.session_id, &sg), LADE_OK);
    assert_int_equal(sg.installation_id, 0);
    assert_int_equal(sg.charger_id, ch1);
}

struct obs_list {
    int n;
    int32_t id[16];
    char value[16][32];
    int64_t ts[16];
};

static int collect_obs(void *ud, const struct lade_store_obs *o)
{
    struct obs_list *l = ud;
    l->id[l->n] = o->obs_id;
    snprintf(l->value[l->n], sizeof l->value[0], "%s", o->value);
    l->ts[l->n++] = o->ts_ms;
    return 0;
}

static void test_state_upsert(void **state)
{
    struct fx *f = *state;
    int64_t id = chg_add(f, "C1", 0, 0);
    struct lade_store_obs items[] = {
        {.obs_id = 710, .value = "3", .ts_ms = 1000},
        {.obs_id = -2, .value = "1", .ts_ms = 1000},
        {.obs_id = 150, .value = "Wifi", .ts_ms = 1000},
    };
    assert_int_equal(lade_store_state_put(f->st, id, items, 3), LADE_OK);
    struct obs_list l = {0};
    assert_int_equal(lade_store_state_list(f->st, id, collect_obs, &l), LADE_OK);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.id[0], -2);
    assert_int_equal(l.id[1], 150);
    assert_string_equal(l.value[1], "Wifi");
    assert_int_equal(l.id[2], 710);
    assert_string_equal(l.value[2], "3");

    /* Newer replaces, older (a replayed message) does not, equal time replaces. */
    struct lade_store_obs upd[] = {
        {.obs_id = 710, .value = "5", .ts_ms = 2000},
        {.obs_id = 150, .value = "LTE", .ts_ms = 500},
        {.obs_id = -2, .value = "0", .ts_ms = 1000},
        {.obs_id = 553, .value = "12.345", .ts_ms = 2000},
    };
    assert_int_equal(lade_store_state_put(f->st, id, upd, 4), LADE_OK);
    memset(&l, 0, sizeof l);
    assert_int_equal(lade_store_state_list(f->st, id, collect_obs, &l), LADE_OK);
    assert_int_equal(l.n, 4);
    assert_string_equal(l.value[0], "0");
    assert_string_equal(l.value[1], "Wifi");
    assert_int_equal(l.ts[1], 1000);
    assert_int_equal(l.id[2], 553);
    assert_string_equal(l.value[3], "5");
    assert_int_equal(l.ts[3], 2000);

    /* A bad item refuses the whole batch. */
    char big[LADE_STORE_VALUE_MAX + 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    struct lade_store_obs bad[] = {
        {.obs_id = 710, .value = "9", .ts_ms = 9000},
        {.obs_id = 911, .value = big, .ts_ms = 9000},
    };
    assert_int_equal(lade_store_state_put(f->st, id, bad, 2), LADE_ERR_INVAL);
    bad[1].value = "\xff";
    assert_int_equal(lade_store_state_put(f->st, id, bad, 2), LADE_ERR_INVAL);
    bad[1].value = NULL;
    assert_int_equal(lade_store_state_put(f->st, id, bad, 2), LADE_ERR_INVAL);
    big[LADE_STORE_VALUE_MAX] = '\0'; /* exactly the maximum is fine */
    bad[1].value = big;
    assert_int_equal(lade_store_state_put(f->st, id, bad, 2), LADE_OK);
    memset(&l, 0, sizeof l);
    assert_int_equal(lade_store_state_list(f->st, id, collect_obs, &l), LADE_OK);
    assert_int_equal(l.n, 5);
    assert_string_equal(l.value[3], "9");

    assert_int_equal(lade_store_state_put(f->st, 999, items, 1), LADE_ERR_NOT_FOUND);
    assert_int_equal(lade_store_state_list(f->st, 999, collect_obs, &l), LADE_ERR_NOT_FOUND);
    assert_int_equal(lade_store_state_put(f->st, id, NULL, 0), LADE_OK);
    assert_int_equal(lade_store_state_put(f->st, id, items, LADE_STORE_STATE_BATCH_MAX + 1),
                     LADE_ERR_INVAL);
}

struct sample_list {
    int n;
    int64_t t[128];
    int32_t alloc[128];
    int32_t cur2[128];
};

static int collect_sample(void *ud, const struct lade_store_sample *s)
{
    struct sample_list *l = ud;
    l->t[l->n] = s->t_s;
    l->alloc[l->n] = s->allocated_ma;
    l->cur2[l->n++] = s->current_ma[1];
    return 0;
}

static void test_samples_prune(void **state)
{
    struct fx *f = *state;
    int64_t c1 = chg_add(f, "C1", 0, 0), c2 = chg_add(f, "C2", 0, 0);
    for (int i = 0; i < 100; i++) {
        struct lade_store_sample s = {
            .charger_id = i % 2 ? c2 : c1,
            .t_s = 1000 + i,
            .current_ma = {16000, 15000 + i, 14000},
            .allocated_ma = 16000,
            .power_w = 11000,
        };
        assert_int_equal(lade_store_sample_add(f->st, &s), LADE_OK);
    }
    /* Same second again: replaces. */
    struct lade_store_sample s = {.charger_id = c1, .t_s = 1000, .allocated_ma = 6000};
    assert_int_equal(lade_store_sample_add(f->st, &s), LADE_OK);
    s.charger_id = 999;
    assert_int_equal(lade_store_sample_add(f->st, &s), LADE_ERR_NOT_FOUND);
    s.charger_id = c1;
    s.current_ma[0] = -1;
    assert_int_equal(lade_store_sample_add(f->st, &s), LADE_ERR_INVAL);

    struct sample_list l = {0};
    assert_int_equal(lade_store_sample_list(f->st, c1, 1000, 1010, collect_sample, &l), LADE_OK);
    assert_int_equal(l.n, 5); /* 1000, 1002, ..., 1008 */
    assert_int_equal(l.t[0], 1000);
    assert_int_equal(l.alloc[0], 6000);
    assert_int_equal(l.t[4], 1008);
    assert_int_equal(l.cur2[4], 15008);
    assert_int_equal(lade_store_sample_list(f->st, c1, 10, 5, collect_sample, &l), LADE_ERR_INVAL);

    /* Retention: drop everything before 1050, in batches of 20. */
    uint64_t n = 0, total = 0;
    do {
        assert_int_equal(lade_store_sample_prune(f->st, 1050, 20, &n), LADE_OK);
        assert_true(n <= 20);
        total += n;
    } while (n == 20);
    assert_int_equal(total, 50);
    memset(&l, 0, sizeof l);
    assert_int_equal(lade_store_sample_list(f->st, c2, 0, INT64_MAX, collect_sample, &l), LADE_OK);
    assert_int_equal(l.n, 25);
    assert_int_equal(l.t[0], 1051);
    assert_int_equal(lade_store_sample_prune(f->st, INT64_MAX, 0, &n), LADE_OK);
    assert_int_equal(n, 50);
}

static void test_sessions_exactly_once(void **state)
{
    struct fx *f = *state;
    int64_t a = inst_add(f, "A");
    int64_t c1 = chg_add(f, "C1", a, 0);
    struct lade_store_session s = sess_v(7, "C1", 1700000000), got;

    assert_int_equal(sess_add(f, &s), LADE_STORE_ADDED);
    /* The charger's outbox resends until acknowledged: stored once, not an error. */
    s.received_s += 60;
    assert_int_equal(sess_add(f, &s), LADE_STORE_DUPLICATE);
    assert_int_equal(sess_add(f, &s), LADE_STORE_DUPLICATE);
    /* Same id, other content: keep the first. */
    struct lade_store_session other = s;
    other.energy_wh = 1;
    assert_int_equal(sess_add(f, &other), LADE_STORE_CONFLICT);
    assert_int_equal(lade_store_session_get(f->st, s.session_id, &got), LADE_OK);
    assert_true(got.id > 0);
    assert_int_equal(got.energy_wh, 11007);
    assert_int_equal(got.charger_id, c1);
    assert_int_equal(got.installation_id, a);
    assert_int_equal(got.received_s, 1700000000 + 3700); /* the first receipt */
    assert_true(got.reliable_clock);
    assert_false(got.end_estimated);
    assert_int_equal(got.peak_power_w, 11040);
    assert_int_equal(got.phases, 3);
    assert_string_equal(got.end_reason, "unplugged");
    struct lade_store_session_query q = {0};
    uint64_t total = 0;
    struct ids l = {0};
    assert_int_equal(lade_store_session_list(f->st, &q, collect_sess, &l, &total), LADE_OK);
    assert_int_equal(total, 1);

    /* From a device the portal does not know yet: kept, linked when the charger is added. */
    struct lade_store_session early = sess_v(8, "C9", 1700010000);
    early.reliable_clock = false;
    early.end_reason[0] = '\0';
    assert_int_equal(sess_add(f, &early), LADE_STORE_ADDED);
    assert_int_equal(lade_store_session_get(f->st, early.session_id, &got), LADE_OK);
    assert_int_equal(got.charger_id, 0);
    assert_false(got.reliable_clock);
    int64_t c9 = chg_add(f, "C9", a, 0);
    assert_int_equal(lade_store_session_get(f->st, early.session_id, &got), LADE_OK);
    assert_int_equal(got.charger_id, c9);
    assert_int_equal(got.installation_id, a);

    /* Refused input. */
    enum lade_store_ingest r;
    struct lade_store_session bad = sess_v(9, "C1", 1);
    bad.session_id[0] = 'A'; /* upper-case hex */
    assert_int_equal(lade_store_session_add(f->st, &bad, &r), LADE_ERR_INVAL);
    bad = sess_v(9, "C1", 1);
    bad.session_id[31] = '\0';
    assert_int_equal(lade_store_session_add(f->st, &bad, &r), LADE_ERR_INVAL);
    bad = sess_v(9, "C 1", 1);
    assert_int_equal(lade_store_session_add(f->st, &bad, &r), LADE_ERR_INVAL);
    bad = sess_v(9, "C1", 1);
    bad.energy_wh = (uint64_t)INT64_MAX + 1;
    assert_int_equal(lade_store_session_add(f->st, &bad, &r), LADE_ERR_INVAL);
    bad = sess_v(9, "C1", 1);
    assert_int_equal(lade_store_session_add(f->st, &bad, NULL), LADE_ERR_INVAL);
    assert_int_equal(lade_store_session_get(f->st, "nothex", &got), LADE_ERR_INVAL);
    snprintf(bad.session_id, sizeof bad.session_id, "%032x", 12345);
    assert_int_equal(lade_store_session_get(f->st, bad.session_id, &got), LADE_ERR_NOT_FOUND);

    /* A session whose clock jumped (end before start) is still kept: never lose one (U3). */
    bad = sess_v(10, "C1", 1700000000);
    bad.end_s = bad.start_s - 100;
    assert_int_equal(sess_add(f, &bad), LADE_STORE_ADDED);
}

static void test_session_paging(void **state)
{
    struct fx *f = *state;
    int64_t a = inst_add(f, "A"), b = inst_add(f, "B");
    int64_t c1 = chg_add(f, "C1", a, 0), c2 = chg_add(f, "C2", a, 0);
    chg_add(f, "C3", b, 0);
    /* 25 sessions: C1 gets i%3==0, C2 i%3==1, C3 i%3==2; an hour each, a day apart. */
    const int64_t t0 = 1700000000;
    for (unsigned i = 0; i < 25; i++) {
        const char *dev = i % 3 == 0 ? "C1" : i % 3 == 1 ? "C2" : "C3";
        struct lade_store_session s = sess_v(100 + i, dev, t0 + (int64_t)i * 86400);
        assert_int_equal(sess_add(f, &s), LADE_STORE_ADDED);
    }
    struct lade_store_session_query q = {.page_size = 10};
    uint64_t total = 0;
    struct ids l = {0};
    assert_int_equal(lade_store_session_list(f->st, &q, collect_sess, &l, &total), LADE_OK);
    assert_int_equal(total, 25);
    assert_int_equal(l.n, 10);
    assert_int_equal(l.id[0], t0 + 24 * 86400 + 3600); /* newest first */
    assert_int_equal(l.id[9], t0 + 15 * 86400 + 3600);
    q.page = 2;
    memset(&l, 0, sizeof l);
    assert_int_equal(lade_store_session_list(f->st, &q, collect_sess, &l, &total), LADE_OK);
    assert_int_equal(l.n, 5);
    assert_int_equal(l.id[4], t0 + 3600);
    q.page = 3;
    memset(&l, 0, sizeof l);
    assert_int_equal(lade_store_session_list(f->st, &q, collect_sess, &l, &total), LADE_OK);
    assert_int_equal(l.n, 0);
    assert_int_equal(total, 25);

    /* Filters. */
    q = (struct lade_store_session_query){.installation_id = a, .page_size = 100};
    assert_int_equal(lade_store_session_list(f->st, &q, collect_sess, &l, &total), LADE_OK);
    assert_int_equal(total, 17); /* C1 9 + C2 8 */
    q = (struct lade_store_session_query){.charger_id = c2};
    assert_int_equal(lade_store_session_list(f->st, &q, collect_sess, &l, &total), LADE_OK);
    assert_int_equal(total, 8);
    q.installation_id = b; /* charger of another installation */
    assert_int_equal(lade_store_session_list(f->st, &q, collect_sess, &l, &total), LADE_OK);
    assert_int_equal(total, 0);
    /* Overlap with [day 3 + 30 min, day 6): sessions 3, 4, 5. */
    q = (struct lade_store_session_query){.from_s = t0 + 3 * 86400 + 1800, .to_s = t0 + 6 * 86400};
    memset(&l, 0, sizeof l);
    assert_int_equal(lade_store_session_list(f->st, &q, collect_sess, &l, &total), LADE_OK);
    assert_int_equal(total, 3);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.id[0], t0 + 5 * 86400 + 3600);
    q.charger_id = c1; /* session 3 only */
    assert_int_equal(lade_store_session_list(f->st, &q, collect_sess, &l, &total), LADE_OK);
    assert_int_equal(total, 1);

    /* A user sees the installations granted; an admin all. */
    int64_t owner = user_add(f, "owner", 0), admin = user_add(f, "admin", LADE_ROLE_ADMIN);
    int64_t nobody = user_add(f, "nobody", LADE_ROLE_USER);
    assert_int_equal(lade_store_access_set(f->st, owner, b, LADE_ROLE_OWNER), LADE_OK);
    q = (struct lade_store_session_query){.user_id = owner};
    assert_int_equal(lade_store_session_list(f->st, &q, collect_sess, &l, &total), LADE_OK);
    assert_int_equal(total, 8);
    q.installation_id = a;
    assert_int_equal(lade_store_session_list(f->st, &q, collect_sess, &l, &total), LADE_OK);
    assert_int_equal(total, 0);
    q = (struct lade_store_session_query){.user_id = admin};
    assert_int_equal(lade_store_session_list(f->st, &q, collect_sess, &l, &total), LADE_OK);
    assert_int_equal(total, 25);
    q.user_id = nobody;
    assert_int_equal(lade_store_session_list(f->st, &q, collect_sess, &l, &total), LADE_OK);
    assert_int_equal(total, 0);

    /* Refused queries. */
    q = (struct lade_store_session_query){.page_size = LADE_STORE_PAGE_SIZE_MAX + 1};
    assert_int_equal(lade_store_session_list(f->st, &q, collect_sess, &l, &total), LADE_ERR_INVAL);
    q = (struct lade_store_session_query){.from_s = 10, .to_s = 5};
    assert_int_equal(lade_store_session_list(f->st, &q, collect_sess, &l, &total), LADE_ERR_INVAL);
    q = (struct lade_store_session_query){.charger_id = -1};
    assert_int_equal(lade_store_session_list(f->st, &q, collect_sess, &l, &total), LADE_ERR_INVAL);
    (void)c1;
}

static void test_setpoints(void **state)
{
    struct fx *f = *state;
    int64_t c = chg_add(f, "C1", 0, 0);
    struct lade_store_setpoint sp = {.charger_id = c,
                                     .current_ma = 16000,
                                     .phases = 3,
                                     .sent_ms = 1000},
                               got;
    int64_t id1 = 0, id2 = 0;
    assert_int_equal(lade_store_setpoint_last(f->st, c, &got), LADE_ERR_NOT_FOUND);
    assert_int_equal(lade_store_setpoint_add(f->st, &sp, &id1), LADE_OK);
    sp.current_ma = 0;
    sp.phases = 1;
    sp.sent_ms = 2000;
    assert_int_equal(lade_store_setpoint_add(f->st, &sp, &id2), LADE_OK);
    assert_int_equal(lade_store_setpoint_last(f->st, c, &got), LADE_OK);
    assert_int_equal(got.id, id2);
    assert_int_equal(got.current_ma, 0);
    assert_int_equal(got.phases, 1);
    assert_int_equal(got.confirmed_ms, 0);
    assert_int_equal(lade_store_setpoint_confirm(f->st, id2, 2150), LADE_OK);
    assert_int_equal(lade_store_setpoint_last(f->st, c, &got), LADE_OK);
    assert_int_equal(got.confirmed_ms, 2150);
    assert_int_equal(got.sent_ms, 2000);
    assert_int_equal(lade_store_setpoint_confirm(f->st, 999, 1), LADE_ERR_NOT_FOUND);
    sp.current_ma = 63001;
    assert_int_equal(lade_store_setpoint_add(f->st, &sp, NULL), LADE_ERR_INVAL);
    sp.current_ma = 6000;
    sp.phases = 2;
    assert_int_equal(lade_store_setpoint_add(f->st, &sp, NULL), LADE_ERR_INVAL);
    sp.phases = 1;
    sp.charger_id = 999;
    assert_int_equal(lade_store_setpoint_add(f->st, &sp, NULL), LADE_ERR_NOT_FOUND);
    uint64_t n = 0;
    assert_int_equal(lade_store_setpoint_prune(f->st, 1500, 0, &n), LADE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(lade_store_setpoint_last(f->st, c, &got), LADE_OK);
    assert_int_equal(got.id, id2);
    (void)id1;
}

static void test_users_access(void **state)
{
    struct fx *f = *state;
    int64_t a = inst_add(f, "A"), b = inst_add(f, "B");
    chg_add(f, "CA", a, 0);
    chg_add(f, "CB", b, 0);
    chg_add(f, "CU", 0, 0);
    int64_t alice = user_add(f, "Alice@example.com", LADE_ROLE_USER);
    int64_t root = user_add(f, "root", LADE_ROLE_ADMIN);
    struct lade_store_user u;

    assert_int_equal(lade_store_user_get(f->st, alice, &u), LADE_OK);
    assert_string_equal(u.username, "Alice@example.com");
    assert_int_equal(u.roles, LADE_ROLE_USER);
    assert_string_equal(u.password_hash, "$scrypt$ln=1,r=1,p=1$x$y");
    assert_int_equal(u.created_s, 1700000003);
    /* Names are unique ignoring ASCII case, and found that way. */
    assert_int_equal(lade_store_user_get_by_name(f->st, "alice@EXAMPLE.com", &u), LADE_OK);
    assert_int_equal(u.id, alice);
    memset(&u, 0, sizeof u);
    snprintf(u.username, sizeof u.username, "ALICE@example.com");
    snprintf(u.password_hash, sizeof u.password_hash, "h");
    assert_int_equal(lade_store_user_add(f->st, &u, NULL), LADE_ERR_EXISTS);
    snprintf(u.username, sizeof u.username, " padded");
    assert_int_equal(lade_store_user_add(f->st, &u, NULL), LADE_ERR_INVAL);
    snprintf(u.username, sizeof u.username, "bob");
    u.roles = 16;
    assert_int_equal(lade_store_user_add(f->st, &u, NULL), LADE_ERR_INVAL);
    u.roles = 0;
    snprintf(u.password_hash, sizeof u.password_hash, "has space");
    assert_int_equal(lade_store_user_add(f->st, &u, NULL), LADE_ERR_INVAL);
    u.password_hash[0] = '\0';
    assert_int_equal(lade_store_user_add(f->st, &u, NULL), LADE_ERR_INVAL);
    assert_int_equal(lade_store_user_get_by_name(f->st, "bob", &u), LADE_ERR_NOT_FOUND);

    /* Update. */
    assert_int_equal(lade_store_user_get(f->st, alice, &u), LADE_OK);
    u.roles = LADE_ROLE_USER | LADE_ROLE_MAINTAINER;
    snprintf(u.password_hash, sizeof u.password_hash, "$scrypt$new");
    assert_int_equal(lade_store_user_update(f->st, &u), LADE_OK);
    assert_int_equal(lade_store_user_get(f->st, alice, &u), LADE_OK);
    assert_int_equal(u.roles, 5);
    assert_string_equal(u.password_hash, "$scrypt$new");
    snprintf(u.username, sizeof u.username, "Root");
    assert_int_equal(lade_store_user_update(f->st, &u), LADE_ERR_EXISTS);
    u.id = 999;
    snprintf(u.username, sizeof u.username, "ghost");
    assert_int_equal(lade_store_user_update(f->st, &u), LADE_ERR_NOT_FOUND);

    /* Access: nothing until granted; effective roles = grant | global. */
    uint32_t roles = 99;
    assert_int_equal(lade_store_access_get(f->st, alice, a, &roles), LADE_OK);
    assert_int_equal(roles, 0);
    assert_int_equal(list_inst(f, alice).n, 0);
    assert_int_equal(list_chargers(f, 0, alice).n, 0);
    assert_int_equal(lade_store_access_set(f->st, alice, a, LADE_ROLE_OWNER), LADE_OK);
    assert_int_equal(lade_store_access_get(f->st, alice, a, &roles), LADE_OK);
    assert_int_equal(roles, LADE_ROLE_OWNER | LADE_ROLE_USER | LADE_ROLE_MAINTAINER);
    struct ids l = list_inst(f, alice);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.id[0], a);
    assert_int_equal(l.roles[0], 7);
    assert_int_equal(list_chargers(f, 0, alice).n, 1);
    assert_int_equal(list_chargers(f, b, alice).n, 0);
    assert_int_equal(lade_store_access_set(f->st, alice, a, LADE_ROLE_USER), LADE_OK); /* replace */
    assert_int_equal(lade_store_access_get(f->st, alice, a, &roles), LADE_OK);
    assert_int_equal(roles, 5);
    assert_int_equal(lade_store_access_set(f->st, alice, a, 0), LADE_OK); /* remove */
    assert_int_equal(lade_store_access_set(f->st, alice, a, 0), LADE_OK);
    assert_int_equal(lade_store_access_get(f->st, alice, a, &roles), LADE_OK);
    assert_int_equal(roles, 0);
    assert_int_equal(lade_store_access_set(f->st, alice, 999, 1), LADE_ERR_NOT_FOUND);
    assert_int_equal(lade_store_access_set(f->st, 999, a, 1), LADE_ERR_NOT_FOUND);
    assert_int_equal(lade_store_access_set(f->st, alice, a, 16), LADE_ERR_INVAL);
    assert_int_equal(lade_store_access_get(f->st, 999, a, &roles), LADE_ERR_NOT_FOUND);
    assert_int_equal(lade_store_access_get(f->st, alice, 999, &roles), LADE_ERR_NOT_FOUND);

    /* An admin sees everything, unassigned chargers included. */
    assert_int_equal(lade_store_access_get(f->st, root, b, &roles), LADE_OK);
    assert_int_equal(roles, LADE_ROLE_ADMIN);
    l = list_inst(f, root);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.roles[1], LADE_ROLE_ADMIN);
    assert_int_equal(list_chargers(f, 0, root).n, 3);
    assert_int_equal(list_inst(f, 999).n, 0);

    struct ids ul = {0};
    assert_int_equal(lade_store_user_list(f->st, collect_user, &ul), LADE_OK);
    assert_int_equal(ul.n, 2);

    /* Removing a user removes grants and tokens. */
    const uint8_t h[32] = {1};
    assert_int_equal(lade_store_access_set(f->st, alice, b, LADE_ROLE_OWNER), LADE_OK);
    assert_int_equal(lade_store_token_add(f->st, h, alice, 1, 100), LADE_OK);
    assert_int_equal(lade_store_user_remove(f->st, alice), LADE_OK);
    assert_int_equal(lade_store_user_remove(f->st, alice), LADE_ERR_NOT_FOUND);
    assert_int_equal(lade_store_token_get(f->st, h, 50, NULL, NULL), LADE_ERR_NOT_FOUND);
    assert_int_equal(lade_store_user_get(f->st, alice, &u), LADE_ERR_NOT_FOUND);
}

static void test_tokens(void **state)
{
    struct fx *f = *state;
    int64_t u1 = user_add(f, "u1", 1), u2 = user_add(f, "u2", 1);
    uint8_t h1[32], h2[32], h3[32];
    memset(h1, 1, sizeof h1);
    memset(h2, 2, sizeof h2);
    memset(h3, 3, sizeof h3);
    assert_int_equal(lade_store_token_add(f->st, h1, u1, 1000, 2000), LADE_OK);
    assert_int_equal(lade_store_token_add(f->st, h2, u1, 1000, 3000), LADE_OK);
    assert_int_equal(lade_store_token_add(f->st, h3, u2, 1000, 4000), LADE_OK);
    assert_int_equal(lade_store_token_add(f->st, h1, u2, 1000, 2000), LADE_ERR_EXISTS);
    uint8_t h4[32];
    memset(h4, 4, sizeof h4);
    assert_int_equal(lade_store_token_add(f->st, h4, 999, 1000, 2000), LADE_ERR_NOT_FOUND);
    assert_int_equal(lade_store_token_add(f->st, h1, u1, 2000, 2000), LADE_ERR_INVAL);

    int64_t uid = 0, exp = 0;
    assert_int_equal(lade_store_token_get(f->st, h1, 1999, &uid, &exp), LADE_OK);
    assert_int_equal(uid, u1);
    assert_int_equal(exp, 2000);
    assert_int_equal(lade_store_token_get(f->st, h1, 2000, &uid, &exp), LADE_ERR_EXPIRED);
    assert_int_equal(uid, u1);
    uint8_t unknown[32] = {9};
    assert_int_equal(lade_store_token_get(f->st, unknown, 0, &uid, &exp), LADE_ERR_NOT_FOUND);
    assert_int_equal(uid, 0);

    assert_int_equal(lade_store_token_revoke(f->st, h2), LADE_OK);
    assert_int_equal(lade_store_token_revoke(f->st, h2), LADE_ERR_NOT_FOUND);
    assert_int_equal(lade_store_token_get(f->st, h2, 1500, &uid, &exp), LADE_ERR_NOT_FOUND);

    uint64_t n = 0;
    assert_int_equal(lade_store_token_prune(f->st, 2500, &n), LADE_OK);
    assert_int_equal(n, 1); /* h1 */
    assert_int_equal(lade_store_token_get(f->st, h1, 1500, &uid, &exp), LADE_ERR_NOT_FOUND);
    assert_int_equal(lade_store_token_revoke_user(f->st, u2, &n), LADE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(lade_store_token_get(f->st, h3, 1500, &uid, &exp), LADE_ERR_NOT_FOUND);
}

/* A list callback may not call the store (its statements are in use); the store says so. */
static int reenter(void *ud, const struct lade_store_installation *in, uint32_t roles)
{
    struct fx *f = ud;
    struct lade_store_installation got;
    (void)roles;
    assert_int_equal(lade_store_installation_get(f->st, in->id, &got), LADE_ERR_STATE);
    return 0;
}

static void test_callback_reentry(void **state)
{
    struct fx *f = *state;
    int64_t a = inst_add(f, "A");
    inst_add(f, "B");
    assert_int_equal(lade_store_installation_list(f->st, 0, reenter, f), LADE_OK);
    struct ids stop = {.stop_after = 1};
    assert_int_equal(lade_store_installation_list(f->st, 0, collect_inst, &stop), LADE_OK);
    assert_int_equal(stop.n, 1);
    /* After the list the store works again. */
    struct lade_store_installation got;
    assert_int_equal(lade_store_installation_get(f->st, a, &got), LADE_OK);
}

/* Everything written survives close + reopen; the schema is at its version. */
static void test_reopen_keeps_everything(void **state)
{
    struct fx *f = *state;
    int64_t a = inst_add(f, "A");
    int64_t top = circ_add(f, a, 0, "top");
    int64_t c = chg_add(f, "C1", a, top);
    int64_t u = user_add(f, "u", LADE_ROLE_OWNER);
    assert_int_equal(lade_store_access_set(f->st, u, a, LADE_ROLE_OWNER), LADE_OK);
    struct lade_store_obs o = {.obs_id = 710, .value = "3", .ts_ms = 42};
    assert_int_equal(lade_store_state_put(f->st, c, &o, 1), LADE_OK);
    struct lade_store_sample smp = {.charger_id = c, .t_s = 5, .power_w = 7};
    assert_int_equal(lade_store_sample_add(f->st, &smp), LADE_OK);
    struct lade_store_session s = sess_v(1, "C1", 1700000000);
    assert_int_equal(sess_add(f, &s), LADE_STORE_ADDED);
    const uint8_t h[32] = {7};
    assert_int_equal(lade_store_token_add(f->st, h, u, 1, 100), LADE_OK);
    assert_int_equal(lade_store_charger_presence(f->st, c, true, 77), LADE_OK);

    reopen(f);
    assert_string_equal(lade_store_backend_name(f->st), "sqlite");
    struct lade_store_charger cg;
    assert_int_equal(lade_store_charger_get(f->st, c, &cg), LADE_OK);
    assert_int_equal(cg.circuit_id, top);
    assert_true(cg.online);
    assert_int_equal(cg.last_seen_s, 77);
    struct obs_list l = {0};
    assert_int_equal(lade_store_state_list(f->st, c, collect_obs, &l), LADE_OK);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.ts[0], 42);
    struct sample_list sl = {0};
    assert_int_equal(lade_store_sample_list(f->st, c, 0, 10, collect_sample, &sl), LADE_OK);
    assert_int_equal(sl.n, 1);
    assert_int_equal(sess_add(f, &s), LADE_STORE_DUPLICATE);
    uint32_t roles = 0;
    assert_int_equal(lade_store_access_get(f->st, u, a, &roles), LADE_OK);
    assert_int_equal(roles, LADE_ROLE_OWNER);
    int64_t uid = 0;
    assert_int_equal(lade_store_token_get(f->st, h, 50, &uid, NULL), LADE_OK);
    assert_int_equal(uid, u);

    /* The file itself: WAL, the schema version, foreign keys intact. */
    lade_store_close(f->st);
    f->st = NULL;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), LADE_STORE_SQLITE_SCHEMA);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA foreign_key_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
    assert_int_equal(lade_store_open_sqlite(f->path, &f->st), LADE_OK);
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

static void test_bad_files(void **state)
{
    struct fx *f = *state;
    char p[400], msg[LADE_STORE_ERRMSG_SIZE];
    struct lade_store *st = NULL;
    struct lade_store_sqlite_opts o = {.errmsg = msg, .errmsg_cap = sizeof msg};

    /* Not a database. */
    char junk[8192];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(i * 37 + 11);
    snprintf(p, sizeof p, "%s/junk.db", f->dir);
    write_file(p, junk, sizeof junk);
    assert_int_equal(lade_store_open_sqlite_ex(p, &o, &st), LADE_ERR_DB);
    assert_null(st);
    print_message("junk: %s\n", msg);
    assert_non_null(strstr(msg, "not a database"));

    /* A real database whose pages were overwritten after the header. */
    lade_store_close(f->st);
    f->st = NULL;
    FILE *fp = fopen(f->path, "r+b");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 100, SEEK_SET), 0);
    assert_int_equal(fwrite(junk, 1, 4000, fp), 4000);
    assert_int_equal(fclose(fp), 0);
    memset(msg, 0, sizeof msg);
    assert_int_equal(lade_store_open_sqlite_ex(f->path, &o, &st), LADE_ERR_DB);
    assert_null(st);
    print_message("torn: %s\n", msg);
    assert_true(msg[0]);

    /* Where no file can be made. */
    snprintf(p, sizeof p, "%s/missing/dir/x.db", f->dir);
    assert_int_equal(lade_store_open_sqlite_ex(p, &o, &st), LADE_ERR_DB);
    print_message("missing dir: %s\n", msg);
    assert_non_null(strstr(msg, "open"));
    assert_int_equal(lade_store_open_sqlite_ex(f->dir, &o, &st), LADE_ERR_DB); /* a directory */
    assert_true(msg[0]);

    /* A schema from the future. */
    snprintf(p, sizeof p, "%s/future.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE schema_version(version INTEGER NOT NULL);"
                                  "INSERT INTO schema_version VALUES(99);",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(lade_store_open_sqlite_ex(p, &o, &st), LADE_ERR_CONFIG);
    assert_non_null(strstr(msg, "99"));

    assert_int_equal(lade_store_open_sqlite(NULL, &st), LADE_ERR_INVAL);
    assert_int_equal(lade_store_open_sqlite("", &st), LADE_ERR_INVAL);
    assert_int_equal(lade_store_open_sqlite(p, NULL), LADE_ERR_INVAL);
}

/* Read-only file and directory. root ignores permission bits, so the check runs in a child
 * that drops to "nobody" when started as root. Child exit: 0 ok, else the failed step. */
static void test_read_only(void **state)
{
    struct fx *f = *state;
    char fresh[400];
    inst_add(f, "kept");
    lade_store_close(f->st);
    f->st = NULL;
    snprintf(fresh, sizeof fresh, "%s/fresh.db", f->dir);
    assert_int_equal(chmod(f->path, 0444), 0);
    assert_int_equal(chmod(f->dir, 0555), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(10);
        char msg[LADE_STORE_ERRMSG_SIZE];
        struct lade_store_sqlite_opts o = {.errmsg = msg, .errmsg_cap = sizeof msg};
        struct lade_store *st = NULL;
        if (lade_store_open_sqlite_ex(fresh, &o, &st) != LADE_ERR_DB || st || !msg[0])
            _exit(11);
        if (lade_store_open_sqlite_ex(f->path, &o, &st) != LADE_ERR_DB || st || !msg[0])
            _exit(12);
        fprintf(stderr, "read-only: %s\n", msg);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(chmod(f->dir, 0755), 0);
    assert_int_equal(chmod(f->path, 0644), 0);
    reopen(f);
    assert_int_equal(list_inst(f, 0).n, 1);
}

/* Disk full while open (RLIMIT_FSIZE): DB with the reason; what was committed stays. */
static void test_disk_full(void **state)
{
    struct fx *f = *state;
    struct rlimit old, lim;
    int64_t c = chg_add(f, "C1", 0, 0);
    struct lade_store_session s = sess_v(1, "C1", 1700000000);
    assert_int_equal(sess_add(f, &s), LADE_STORE_ADDED);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 256 * 1024;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    lade_err err = LADE_OK;
    char value[LADE_STORE_VALUE_MAX + 1];
    memset(value, 'v', LADE_STORE_VALUE_MAX);
    value[LADE_STORE_VALUE_MAX] = '\0';
    struct lade_store_obs items[64];
    int32_t t = 0;
    for (; t < 4000 && err == LADE_OK; t++) {
        for (int i = 0; i < 64; i++)
            items[i] = (struct lade_store_obs){.obs_id = t * 64 + i, .value = value, .ts_ms = t};
        err = lade_store_state_put(f->st, c, items, 64);
    }
    char msg[LADE_STORE_ERRMSG_SIZE];
    snprintf(msg, sizeof msg, "%s", lade_store_errmsg(f->st));
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    print_message("disk full after %d batches: %s\n", t, msg);
    assert_int_equal(err, LADE_ERR_DB);
    assert_true(msg[0]);
    /* Space again: it works, the session is there. */
    struct lade_store_session got;
    assert_int_equal(lade_store_session_get(f->st, s.session_id, &got), LADE_OK);
    assert_int_equal(lade_store_state_put(f->st, c, items, 1), LADE_OK);
    assert_string_equal(lade_store_errmsg(f->st), "");
    reopen(f);
    assert_int_equal(lade_store_session_get(f->st, s.session_id, &got), LADE_OK);
}

/* A backend must provide every op. */
static void noop_close(void *be)
{
    (void)be;
}

static void test_backend_contract(void **state)
{
    (void)state;
    struct lade_store_ops ops = {.name = "empty", .close = noop_close};
    struct lade_store *st = NULL;
    assert_int_equal(lade_store_new(&ops, NULL, &st), LADE_ERR_INVAL);
    assert_null(st);
    assert_int_equal(lade_store_new(NULL, NULL, &st), LADE_ERR_INVAL);
    assert_string_equal(lade_store_errmsg(NULL), "");
    lade_store_close(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_backend_contract),
        cmocka_unit_test_setup_teardown(test_installation_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_circuit_tree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_charger_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_installation_remove_unassigns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_upsert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_samples_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sessions_exactly_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_setpoints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_users_access, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callback_reentry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
