/* e2e: the LTE-M driver (src/port/linux/modem.c) against a scripted modem on a pseudo-terminal.
 *
 * The test opens a pty (posix_openpt/grantpt/unlockpt/ptsname) and plays the modem on the master
 * side from the same event loop as the driver, which opens the slave path like a serial device.
 * The fake answers the AT commands the driver uses from its scripted state (registration, CSQ,
 * RSRP, PDP context, operator, address), can echo (also after ATE0), interleave URCs with
 * responses, answer ERROR or +CME ERROR, stop answering, and "reboot" on AT+CFUN=1,1. Cases:
 * registration searching → registered → up, roaming, lost registration; CSQ and RSRP values;
 * URCs in the middle of responses; PDP activation refused then accepted; the network dropping the
 * context; a modem that stops answering → timeouts → AT+CFUN=1,1 → recovery; echo left on;
 * resets asked for (reboot, radio, reboot refused); a spontaneous reboot; disable; bad
 * configuration and a missing device. Waits poll with deadlines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "lade/loop.h"
#include "lade/modem.h"

#define WAIT_MS 8000
#define NCMDS   1024

/* ---- the fake modem ---------------------------------------------------------------------- */

struct fake {
    struct lade_loop *loop;
    int mfd;    /* pty master: the modem's side */
    int holder; /* a slave fd the test keeps open so the master never sees a hang-up */
    char slave[128];
    char in[512];
    size_t in_len;
    /* behaviour */
    bool echo;          /* V.250 E1 (the power-on default) */
    bool echo_stuck;    /* ignores ATE0 */
    bool silent;        /* answers nothing (commands are still recorded) */
    bool cesq;          /* supports AT+CESQ */
    bool refuse_reboot; /* AT+CFUN=1,1 → ERROR */
    int cgact_fail;     /* AT+CGACT=1,1 answers +CME ERROR: 30 this many more times */
    bool interleave;    /* put URCs in the middle of the +CSQ response */
    bool no_sim;        /* AT+CPIN? → +CME ERROR: 10 */
    /* network state */
    int stat, rssi, rsrp, pdp, tac;
    /* what it saw */
    char cmds[NCMDS][96];
    int ncmds;
};

static void fake_write(struct fake *f, const char *text)
{
    size_t n = strlen(text);
    ssize_t w = write(f->mfd, text, n);
    assert_true(w == (ssize_t)n);
}

/* An information or result line, framed as V.250 says: CR LF text CR LF. */
static void fake_line(struct fake *f, const char *text)
{
    char buf[256];
    snprintf(buf, sizeof buf, "\r\n%s\r\n", text);
    fake_write(f, buf);
}

static void fake_command(struct fake *f, const char *cmd)
{
    if (f->ncmds < NCMDS)
        snprintf(f->cmds[f->ncmds++], sizeof f->cmds[0], "%.95s", cmd);
    if (f->silent)
        return;
    if (f->echo) {
        char e[128];
        snprintf(e, sizeof e, "%.126s\r", cmd);
        fake_write(f, e);
    }
    char line[160];
    if (!strcmp(cmd, "AT") || !strcmp(cmd, "AT+CMEE=1") || !strcmp(cmd, "AT+CEREG=2") ||
        !strncmp(cmd, "AT+CGDCONT=", 11) || !strcmp(cmd, "AT+CFUN=0") ||
        !strcmp(cmd, "AT+CFUN=1")) {
        fake_line(f, "OK");
    } else if (!strcmp(cmd, "ATE0")) {
        if (!f->echo_stuck)
            f->echo = false;
        fake_line(f, "OK");
    } else if (!strcmp(cmd, "AT+CPIN?")) {
        if (f->no_sim) {
            fake_line(f, "+CME ERROR: 10");
            return;
        }
        fake_line(f, "+CPIN: READY");
        fake_line(f, "OK");
    } else if (!strcmp(cmd, "AT+CEREG?")) {
        if (f->stat == 1 || f->stat == 5)
            snprintf(line, sizeof line, "+CEREG: 2,%d,\"%04X\",\"0A1B2C3D\",7", f->stat,
                     (unsigned)f->tac);
        else
            snprintf(line, sizeof line, "+CEREG: 2,%d", f->stat);
        fake_line(f, line);
        fake_line(f, "OK");
    } else if (!strcmp(cmd, "AT+CESQ")) {
        if (!f->cesq) {
            fake_line(f, "ERROR");
            return;
        }
        snprintf(line, sizeof line, "+CESQ: 99,99,255,255,20,%d", f->rsrp);
        fake_line(f, line);
        fake_line(f, "OK");
    } else if (!strcmp(cmd, "AT+CSQ")) {
        snprintf(line, sizeof line, "+CSQ: %d,99", f->rssi);
        fake_line(f, line);
        if (f->interleave) {
            /* URCs between the information line and the final result code. */
            fake_line(f, "+CEREG: 5,\"00C4\",\"0A1B2C3E\",7");
            f->stat = 5;
            f->tac = 0xC4;
            fake_line(f, "+CGEV: ME PDN ACT 1");
            fake_write(f, "\r\nRING\r\n");
        }
        fake_line(f, "OK");
    } else if (!strcmp(cmd, "AT+CGACT?")) {
        snprintf(line, sizeof line, "+CGACT: 1,%d", f->pdp);
        fake_line(f, line);
        fake_line(f, "+CGACT: 2,0");
        fake_line(f, "OK");
    } else if (!strcmp(cmd, "AT+CGACT=1,1")) {
        if (f->cgact_fail > 0) {
            f->cgact_fail--;
            fake_line(f, "+CME ERROR: 30");
            return;
        }
        f->pdp = 1;
        fake_line(f, "OK");
    } else if (!strcmp(cmd, "AT+CGPADDR=1")) {
        fake_line(f, f->pdp ? "+CGPADDR: 1,\"10.64.1.7\"" : "+CGPADDR: 1");
        fake_line(f, "OK");
    } else if (!strcmp(cmd, "AT+COPS?")) {
        fake_line(f, "+COPS: 0,0,\"lade-net\",7");
        fake_line(f, "OK");
    } else if (!strcmp(cmd, "AT+CFUN=1,1")) {
        if (f->refuse_reboot) {
            fake_line(f, "ERROR");
            return;
        }
        fake_line(f, "OK");
        /* Rebooted: echo back on, context gone (the network registers it again at once). */
        f->echo = true;
        f->pdp = 0;
    } else {
        fake_line(f, "ERROR");
    }
}

static void fake_on_io(struct lade_loop *loop, int fd, uint32_t events, void *ud)
{
    (void)loop;
    (void)events;
    struct fake *f = ud;
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0)
        return; /* EAGAIN; EIO cannot happen while the holder keeps the slave open */
    for (ssize_t i = 0; i < n; i++) {
        char c = buf[i];
        if (c == '\r') {
            f->in[f->in_len] = '\0';
            if (f->in_len > 0)
                fake_command(f, f->in);
            f->in_len = 0;
        } else if (c != '\n' && f->in_len < sizeof f->in - 1) {
            f->in[f->in_len++] = c;
        }
    }
}

static void fake_start(struct fake *f, struct lade_loop *loop)
{
    memset(f, 0, sizeof *f);
    f->loop = loop;
    f->echo = true;
    f->cesq = true;
    f->stat = 2;
    f->rssi = 20;
    f->rsrp = 41; /* −100 dBm */
    f->tac = 0xC3;
    f->mfd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    assert_true(f->mfd >= 0);
    assert_int_equal(grantpt(f->mfd), 0);
    assert_int_equal(unlockpt(f->mfd), 0);
    assert_int_equal(ptsname_r(f->mfd, f->slave, sizeof f->slave), 0);
    assert_int_equal(fcntl(f->mfd, F_SETFL, O_NONBLOCK), 0);
    f->holder = open(f->slave, O_RDWR | O_NOCTTY | O_CLOEXEC);
    assert_true(f->holder >= 0);
    struct termios t;
    assert_int_equal(tcgetattr(f->holder, &t), 0);
    cfmakeraw(&t);
    assert_int_equal(tcsetattr(f->holder, TCSANOW, &t), 0);
    assert_int_equal(lade_loop_watch(loop, f->mfd, LADE_IO_READ, fake_on_io, f), LADE_OK);
}

static void fake_stop(struct fake *f)
{
    lade_loop_unwatch(f->loop, f->mfd);
    close(f->mfd);
    close(f->holder);
}

static int fake_count(const struct fake *f, const char *cmd)
{
    int n = 0;
    for (int i = 0; i < f->ncmds; i++)
        n += !strcmp(f->cmds[i], cmd);
    return n;
}

/* ---- the rig ----------------------------------------------------------------------------- */

struct rig {
    struct lade_loop *loop;
    struct fake fake;
    struct lade_modem *m;
    struct lade_bearer_link_state link;
    int reports, ups;
    struct lade_bearer bearer;
};

static void on_link(void *ud, const struct lade_bearer_link_state *ls)
{
    struct rig *r = ud;
    if (ls->up && !r->link.up)
        r->ups++;
    r->link = *ls;
    r->reports++;
    assert_int_equal(ls->channel, 0);
    assert_int_equal(ls->freq_mhz, 0);
    assert_int_equal(lade_bearer_link(&r->bearer, LADE_BEARER_LTE, ls, h_now_ms()), LADE_OK);
}

static void rig_config(struct rig *r, struct lade_modem_config *c)
{
    lade_modem_config_default(c);
    c->device = r->fake.slave;
    c->apn = "lade.test";
    c->cmd_timeout_ms = 300;
    c->long_timeout_ms = 1000;
    c->poll_ms = 100;
    c->boot_wait_ms = 100;
    c->retry_ms = 50;
    c->retry_max_ms = 400;
    c->timeouts_to_reset = 3;
}

static void rig_open(struct rig *r)
{
    memset(r, 0, sizeof *r);
    assert_int_equal(lade_loop_new(&r->loop), LADE_OK);
    fake_start(&r->fake, r->loop);
    struct lade_bearer_config bc;
    lade_bearer_config_default(&bc);
    bc.present[LADE_BEARER_LTE] = true;
    assert_int_equal(lade_bearer_init(&r->bearer, &bc, h_now_ms()), LADE_OK);
}

static void rig_start_with(struct rig *r, const struct lade_modem_config *c)
{
    assert_int_equal(lade_modem_new(r->loop, c, on_link, r, &r->m), LADE_OK);
    assert_int_equal(lade_modem_set_enabled(r->m, true), LADE_OK);
}

static void rig_start(struct rig *r)
{
    rig_open(r);
    struct lade_modem_config c;
    rig_config(r, &c);
    rig_start_with(r, &c);
}

static void rig_stop(struct rig *r)
{
    lade_modem_free(r->m);
    fake_stop(&r->fake);
    lade_loop_free(r->loop);
}

typedef bool (*cond_fn)(struct rig *r);

static bool wait_for(struct rig *r, cond_fn cond, uint32_t timeout_ms)
{
    uint64_t end = h_now_ms() + timeout_ms;
    while (!cond(r)) {
        if (h_now_ms() > end)
            return false;
        assert_int_equal(lade_loop_run_once(r->loop, 20), LADE_OK);
    }
    return true;
}

static enum lade_modem_state mstate(struct rig *r)
{
    struct lade_modem_info i;
    lade_modem_info(r->m, &i);
    return i.state;
}

static bool link_up(struct rig *r)
{
    return r->link.up;
}
static bool link_down(struct rig *r)
{
    return !r->link.up;
}
static bool searching(struct rig *r)
{
    return mstate(r) == LADE_MODEM_SEARCH && r->link.signal == -100;
}
static bool reboot_sent(struct rig *r)
{
    return fake_count(&r->fake, "AT+CFUN=1,1") >= 1;
}
static bool second_init(struct rig *r)
{
    return fake_count(&r->fake, "ATE0") >= 2;
}
static bool radio_on_sent(struct rig *r)
{
    return fake_count(&r->fake, "AT+CFUN=1") >= 1;
}
static bool signal_is_73(struct rig *r)
{
    return r->link.signal == -73;
}
static bool signal_unknown(struct rig *r)
{
    return r->link.signal == LADE_BEARER_SIGNAL_UNKNOWN;
}
static bool signal_is_51(struct rig *r)
{
    return r->link.signal == -51;
}
static bool signal_is_126(struct rig *r)
{
    return r->link.signal == -126;
}
static bool three_cgact(struct rig *r)
{
    return fake_count(&r->fake, "AT+CGACT=1,1") >= 3;
}
static bool tac_c4(struct rig *r)
{
    struct lade_modem_info i;
    lade_modem_info(r->m, &i);
    return i.tac == 0xC4 && i.stat == 5;
}
static bool has_operator(struct rig *r)
{
    struct lade_modem_info i;
    lade_modem_info(r->m, &i);
    return i.oper[0] != '\0' && i.address[0] != '\0';
}

static bool sim_missing(struct rig *r)
{
    struct lade_modem_info i;
    lade_modem_info(r->m, &i);
    return !strcmp(i.sim, "CME ERROR 10") && i.state == LADE_MODEM_SEARCH;
}

static enum lade_bearer_why verdict(struct rig *r)
{
    return lade_bearer_usable(&r->bearer, LADE_BEARER_LTE, h_now_ms());
}

/* Searching → registered (URC) → PDP activated → up; roaming stays up; lost → down. */
static void test_registration(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r);
    assert_true(wait_for(&r, searching, WAIT_MS));
    assert_false(r.link.up);
    assert_int_equal(verdict(&r), LADE_BEARER_LINK_DOWN);
    /* The init sequence, in order, before anything else. */
    const char *init[] = {"AT",       "ATE0",       "AT+CMEE=1",
                          "AT+CPIN?", "AT+CEREG=2", "AT+CGDCONT=1,\"IP\",\"lade.test\""};
    assert_true(r.fake.ncmds >= 6);
    for (int i = 0; i < 6; i++)
        assert_string_equal(r.fake.cmds[i], init[i]);
    assert_int_equal(fake_count(&r.fake, "AT+CGACT=1,1"), 0);

    r.fake.stat = 1;
    fake_line(&r.fake, "+CEREG: 1,\"00C3\",\"0A1B2C3D\",7");
    assert_true(wait_for(&r, link_up, WAIT_MS));
    assert_int_equal(r.link.signal, -100); /* RSRP from +CESQ */
    assert_int_equal(fake_count(&r.fake, "AT+CGACT=1,1"), 1);
    assert_int_equal(verdict(&r), LADE_BEARER_OK);
    assert_true(wait_for(&r, has_operator, WAIT_MS));
    struct lade_modem_info i;
    lade_modem_info(r.m, &i);
    assert_int_equal(i.state, LADE_MODEM_ONLINE);
    assert_int_equal(i.stat, 1);
    assert_int_equal(i.tac, 0xC3);
    assert_int_equal(i.ci, 0x0A1B2C3D);
    assert_int_equal(i.act, 7);
    assert_true(i.pdp_active);
    assert_string_equal(i.address, "10.64.1.7");
    assert_string_equal(i.oper, "lade-net");
    assert_string_equal(i.sim, "READY");
    assert_int_equal(i.csq_dbm, -73);
    assert_int_equal(i.rsrp_dbm, -100);
    assert_int_equal(i.rsrq_db, -10);

    /* Roaming is registered too. */
    r.fake.stat = 5;
    fake_line(&r.fake, "+CEREG: 5,\"00C3\",\"0A1B2C3D\",7");
    uint64_t until = h_now_ms() + 300;
    while (h_now_ms() < until)
        assert_int_equal(lade_loop_run_once(r.loop, 20), LADE_OK);
    assert_true(r.link.up);
    assert_int_equal(r.ups, 1);

    /* Registration lost: down at once (the URC, not the next poll). */
    r.fake.stat = 2;
    fake_line(&r.fake, "+CEREG: 2");
    assert_true(wait_for(&r, link_down, WAIT_MS));
    assert_int_equal(mstate(&r), LADE_MODEM_SEARCH);
    /* Denied stays down; home again comes back up through the poll alone. */
    r.fake.stat = 3;
    until = h_now_ms() + 300;
    while (h_now_ms() < until)
        assert_int_equal(lade_loop_run_once(r.loop, 20), LADE_OK);
    assert_false(r.link.up);
    r.fake.stat = 1;
    assert_true(wait_for(&r, link_up, WAIT_MS));
    rig_stop(&r);
}

/* Signal: RSRP when +CESQ works; the +CSQ figure (−113 + 2·rssi, 99 unknown) when it does not. */
static void test_signal(void **state)
{
    (void)state;
    struct rig r;
    rig_open(&r);
    r.fake.cesq = false;
    r.fake.stat = 1;
    struct lade_modem_config c;
    rig_config(&r, &c);
    rig_start_with(&r, &c);
    assert_true(wait_for(&r, link_up, WAIT_MS));
    assert_true(wait_for(&r, signal_is_73, WAIT_MS));
    int cesq = fake_count(&r.fake, "AT+CESQ");
    assert_int_equal(cesq, 1); /* asked once, ERROR, never again */
    r.fake.rssi = 99;
    assert_true(wait_for(&r, signal_unknown, WAIT_MS));
    assert_true(r.link.up);
    r.fake.rssi = 31;
    assert_true(wait_for(&r, signal_is_51, WAIT_MS));
    assert_int_equal(fake_count(&r.fake, "AT+CESQ"), 1);
    rig_stop(&r);

    /* RSRP −126 dBm: up, but below the bearer manager's LTE floor. */
    rig_open(&r);
    r.fake.stat = 1;
    r.fake.rsrp = 15;
    rig_config(&r, &c);
    rig_start_with(&r, &c);
    assert_true(wait_for(&r, link_up, WAIT_MS));
    assert_true(wait_for(&r, signal_is_126, WAIT_MS));
    assert_int_equal(verdict(&r), LADE_BEARER_WEAK);
    rig_stop(&r);
}

/* URCs in the middle of a response, and the network dropping the PDP context. */
static void test_urcs(void **state)
{
    (void)state;
    struct rig r;
    rig_open(&r);
    r.fake.stat = 1;
    struct lade_modem_config c;
    rig_config(&r, &c);
    rig_start_with(&r, &c);
    assert_true(wait_for(&r, link_up, WAIT_MS));
    r.fake.interleave = true;
    r.fake.rssi = 10; /* −93 dBm */
    assert_true(wait_for(&r, tac_c4, WAIT_MS));
    struct lade_modem_info i;
    lade_modem_info(r.m, &i);
    assert_int_equal(i.csq_dbm, -93);
    assert_true(r.link.up);
    int timeouts = (int)i.timeouts;
    assert_int_equal(timeouts, 0); /* every OK reached its command */
    r.fake.interleave = false;

    /* The network deactivates the context: down, then activated again. */
    r.fake.pdp = 0;
    fake_line(&r.fake, "+CGEV: NW PDN DEACT 1");
    assert_true(wait_for(&r, link_down, WAIT_MS));
    assert_true(wait_for(&r, link_up, WAIT_MS));
    assert_int_equal(fake_count(&r.fake, "AT+CGACT=1,1"), 2);
    assert_int_equal(r.ups, 2);
    /* A URC in the middle of an unsolicited burst of noise and an over-long line. */
    char junk[800];
    memset(junk, 'z', sizeof junk - 1);
    junk[sizeof junk - 1] = '\0';
    fake_write(&r.fake, "\r\n");
    fake_write(&r.fake, junk);
    fake_write(&r.fake, "\r\n\x01\x02\x03\r\n");
    r.fake.stat = 2;
    fake_line(&r.fake, "+CEREG: 2");
    assert_true(wait_for(&r, link_down, WAIT_MS));
    rig_stop(&r);
}

/* AT+CGACT=1,1 refused with +CME ERROR: 30 twice: retried with a delay, then up. */
static void test_errors(void **state)
{
    (void)state;
    struct rig r;
    rig_open(&r);
    r.fake.stat = 1;
    r.fake.cgact_fail = 2;
    struct lade_modem_config c;
    rig_config(&r, &c);
    rig_start_with(&r, &c);
    assert_true(wait_for(&r, three_cgact, WAIT_MS));
    assert_true(wait_for(&r, link_up, WAIT_MS));
    struct lade_modem_info i;
    lade_modem_info(r.m, &i);
    assert_int_equal(i.last_cme, 30);
    assert_non_null(strstr(i.last_error, "AT+CGACT=1,1: +CME ERROR: 30"));
    assert_int_equal(i.resets, 0);
    assert_int_equal(fake_count(&r.fake, "AT+CGACT=1,1"), 3);
    rig_stop(&r);

    /* No SIM: the reason is kept (R19), the driver goes on asking; a SIM put in is seen. */
    rig_open(&r);
    r.fake.no_sim = true;
    r.fake.stat = 0;
    rig_config(&r, &c);
    rig_start_with(&r, &c);
    assert_true(wait_for(&r, sim_missing, WAIT_MS));
    assert_false(r.link.up);
    r.fake.no_sim = false;
    r.fake.stat = 1;
    assert_true(wait_for(&r, link_up, WAIT_MS));
    lade_modem_info(r.m, &i);
    assert_string_equal(i.sim, "READY");
    rig_stop(&r);
}

/* A modem that stops answering: commands time out, AT+CFUN=1,1 goes out after three, the link
 * is down; when it answers again the driver starts over and the link comes back. */
static void test_stuck(void **state)
{
    (void)state;
    struct rig r;
    rig_open(&r);
    r.fake.stat = 1;
    struct lade_modem_config c;
    rig_config(&r, &c);
    rig_start_with(&r, &c);
    assert_true(wait_for(&r, link_up, WAIT_MS));
    r.fake.silent = true;
    int before = r.fake.ncmds;
    assert_true(wait_for(&r, reboot_sent, WAIT_MS));
    assert_false(r.link.up);
    /* Exactly three unanswered commands before the reset. */
    int k = before;
    while (k < r.fake.ncmds && strcmp(r.fake.cmds[k], "AT+CFUN=1,1") != 0)
        k++;
    assert_int_equal(k - before, 3);
    struct lade_modem_info i;
    lade_modem_info(r.m, &i);
    assert_true(i.timeouts >= 3);
    assert_int_equal(i.resets, 1);

    r.fake.silent = false;
    r.fake.echo = true; /* as after a power cycle */
    assert_true(wait_for(&r, link_up, WAIT_MS));
    lade_modem_info(r.m, &i);
    assert_true(i.reopens == 0); /* the device never went away */
    assert_int_equal(r.ups, 2);
    rig_stop(&r);
}

/* Echo left on (the modem ignores ATE0): every command comes back first; nothing breaks. */
static void test_echo_on(void **state)
{
    (void)state;
    struct rig r;
    rig_open(&r);
    r.fake.echo_stuck = true;
    r.fake.stat = 5;
    struct lade_modem_config c;
    rig_config(&r, &c);
    rig_start_with(&r, &c);
    assert_true(wait_for(&r, link_up, WAIT_MS));
    assert_true(wait_for(&r, has_operator, WAIT_MS));
    assert_true(r.fake.echo);
    struct lade_modem_info i;
    lade_modem_info(r.m, &i);
    assert_int_equal(i.timeouts, 0);
    assert_int_equal(i.stat, 5);
    rig_stop(&r);
}

/* RESET from the bearer manager: AT+CFUN=1,1, wait for the reboot, init again, back up. With
 * reset_mode RADIO (or when the reboot is refused): CFUN=0 then CFUN=1. */
static void test_reset(void **state)
{
    (void)state;
    struct rig r;
    rig_open(&r);
    r.fake.stat = 1;
    struct lade_modem_config c;
    rig_config(&r, &c);
    rig_start_with(&r, &c);
    assert_true(wait_for(&r, link_up, WAIT_MS));
    assert_int_equal(lade_modem_reset(r.m), LADE_OK);
    assert_false(r.link.up); /* at once */
    assert_int_equal(mstate(&r), LADE_MODEM_RESETTING);
    assert_int_equal(lade_modem_reset(r.m), LADE_OK); /* already resetting: nothing more */
    assert_true(wait_for(&r, reboot_sent, WAIT_MS));
    assert_true(wait_for(&r, second_init, WAIT_MS));
    assert_true(wait_for(&r, link_up, WAIT_MS));
    assert_int_equal(fake_count(&r.fake, "AT+CFUN=1,1"), 1);
    assert_int_equal(fake_count(&r.fake, "AT+CGACT=1,1"), 2);

    /* The reboot refused: the radio is switched off and on instead. */
    r.fake.refuse_reboot = true;
    assert_int_equal(lade_modem_reset(r.m), LADE_OK);
    assert_true(wait_for(&r, radio_on_sent, WAIT_MS));
    assert_int_equal(fake_count(&r.fake, "AT+CFUN=0"), 1);
    assert_true(wait_for(&r, link_up, WAIT_MS));
    struct lade_modem_info i;
    lade_modem_info(r.m, &i);
    assert_int_equal(i.resets, 2);
    rig_stop(&r);

    /* reset_mode RADIO: never AT+CFUN=1,1. */
    rig_open(&r);
    r.fake.stat = 1;
    rig_config(&r, &c);
    c.reset_mode = LADE_MODEM_RESET_RADIO;
    rig_start_with(&r, &c);
    assert_true(wait_for(&r, link_up, WAIT_MS));
    assert_int_equal(lade_modem_reset(r.m), LADE_OK);
    assert_true(wait_for(&r, radio_on_sent, WAIT_MS));
    assert_true(wait_for(&r, link_up, WAIT_MS));
    assert_int_equal(fake_count(&r.fake, "AT+CFUN=1,1"), 0);
    assert_int_equal(fake_count(&r.fake, "AT+CFUN=0"), 1);
    rig_stop(&r);
}

/* The modem rebooted by itself ("RDY"): the driver sets it up again. */
static void test_spontaneous_reboot(void **state)
{
    (void)state;
    struct rig r;
    rig_open(&r);
    r.fake.stat = 1;
    struct lade_modem_config c;
    rig_config(&r, &c);
    rig_start_with(&r, &c);
    assert_true(wait_for(&r, link_up, WAIT_MS));
    r.fake.echo = true;
    r.fake.pdp = 0;
    fake_line(&r.fake, "RDY");
    assert_true(wait_for(&r, link_down, WAIT_MS));
    assert_true(wait_for(&r, second_init, WAIT_MS));
    assert_true(wait_for(&r, link_up, WAIT_MS));
    rig_stop(&r);
}

static void test_disable(void **state)
{
    (void)state;
    struct rig r;
    rig_open(&r);
    r.fake.stat = 1;
    struct lade_modem_config c;
    rig_config(&r, &c);
    rig_start_with(&r, &c);
    assert_true(wait_for(&r, link_up, WAIT_MS));
    int reports = r.reports;
    assert_int_equal(lade_modem_set_enabled(r.m, false), LADE_OK);
    assert_false(r.link.up);
    assert_int_equal(r.link.signal, LADE_BEARER_SIGNAL_UNKNOWN);
    assert_int_equal(r.reports, reports + 1);
    assert_int_equal(lade_modem_set_enabled(r.m, false), LADE_OK);
    assert_int_equal(r.reports, reports + 1);
    assert_int_equal(lade_modem_reset(r.m), LADE_ERR_STATE);
    assert_int_equal(mstate(&r), LADE_MODEM_OFF);
    /* Nothing is sent while off (after the fake has read what was sent before). */
    uint64_t until = h_now_ms() + 100;
    while (h_now_ms() < until)
        assert_int_equal(lade_loop_run_once(r.loop, 20), LADE_OK);
    int n = r.fake.ncmds;
    until = h_now_ms() + 300;
    while (h_now_ms() < until)
        assert_int_equal(lade_loop_run_once(r.loop, 20), LADE_OK);
    assert_int_equal(r.fake.ncmds, n);
    assert_int_equal(lade_modem_set_enabled(r.m, true), LADE_OK);
    assert_true(wait_for(&r, link_up, WAIT_MS));
    rig_stop(&r);
}

static void ignore_link(void *ud, const struct lade_bearer_link_state *ls)
{
    (void)ud;
    assert_false(ls->up);
}

static void test_config(void **state)
{
    (void)state;
    struct lade_loop *loop;
    assert_int_equal(lade_loop_new(&loop), LADE_OK);
    struct lade_modem_config c;
    lade_modem_config_default(&c);
    struct lade_modem *m;
    assert_int_equal(lade_modem_new(loop, &c, ignore_link, NULL, &m), LADE_ERR_INVAL);
    c.device = "/nonexistent/ttyUSB2";
    c.apn = "bad\"apn";
    assert_int_equal(lade_modem_new(loop, &c, ignore_link, NULL, &m), LADE_ERR_CONFIG);
    c.apn = "ok.apn";
    c.baud = 12345;
    assert_int_equal(lade_modem_new(loop, &c, ignore_link, NULL, &m), LADE_ERR_CONFIG);
    c.baud = 115200;
    c.cid = 0;
    assert_int_equal(lade_modem_new(loop, &c, ignore_link, NULL, &m), LADE_ERR_CONFIG);
    c.cid = 1;
    c.pdp_type = "X25";
    assert_int_equal(lade_modem_new(loop, &c, ignore_link, NULL, &m), LADE_ERR_CONFIG);
    c.pdp_type = NULL; /* "IP" */
    c.timeouts_to_reset = 0;
    assert_int_equal(lade_modem_new(loop, &c, ignore_link, NULL, &m), LADE_ERR_CONFIG);
    c.timeouts_to_reset = 3;
    c.retry_ms = 50;
    c.retry_max_ms = 100;
    assert_int_equal(lade_modem_new(loop, &c, ignore_link, NULL, &m), LADE_OK);

    /* A missing device: enabling works, the driver keeps trying (with a growing delay). */
    assert_int_equal(lade_modem_set_enabled(m, true), LADE_OK);
    uint64_t until = h_now_ms() + 300;
    while (h_now_ms() < until)
        assert_int_equal(lade_loop_run_once(loop, 20), LADE_OK);
    struct lade_modem_info i;
    lade_modem_info(m, &i);
    assert_int_equal(i.state, LADE_MODEM_WAIT);
    assert_non_null(strstr(i.last_error, "No such file"));
    /* Not a terminal. */
    lade_modem_free(m);
    c.device = "/dev/null";
    assert_int_equal(lade_modem_new(loop, &c, ignore_link, NULL, &m), LADE_OK);
    assert_int_equal(lade_modem_set_enabled(m, true), LADE_OK);
    lade_modem_info(m, &i);
    assert_int_equal(i.state, LADE_MODEM_WAIT);
    assert_non_null(strstr(i.last_error, "not a terminal"));
    lade_modem_free(m);
    assert_int_equal(lade_loop_timer_count(loop), 0);
    lade_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registration), cmocka_unit_test(test_signal),
        cmocka_unit_test(test_urcs),         cmocka_unit_test(test_errors),
        cmocka_unit_test(test_stuck),        cmocka_unit_test(test_echo_on),
        cmocka_unit_test(test_reset),        cmocka_unit_test(test_spontaneous_reboot),
        cmocka_unit_test(test_disable),      cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
