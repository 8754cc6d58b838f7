/* Firmware updates on the charger (SPEC R9, U4; docs/firmware.md "On the charger").
 *
 * UpgradeFirmware (command 200) brings a signed manifest and the image's path on the firmware
 * hosts. The manifest is checked first (pinned keys, this hardware, the anti-rollback counter);
 * after a random delay (staged rollouts) the image is fetched over HTTPS straight into the
 * inactive slot (lade_fwfetch: host failover, resume from a persisted offset, budgets, hash while
 * streaming), read back and verified (lade_fwslot_file_finish), and the slot is switched to
 * "try once". The agent then restarts — never while a charging session is in progress — and the
 * start that follows is the trial boot: the self-test runs, and the slot is marked good only once
 * the hub has been reached; a failed self-test or no hub within firmware_confirm_s rolls back
 * (and restarts, again not during a session). A restart of lade-charger stands in for a reboot
 * (the boot decision runs when the slots are opened).
 *
 * Everything needed to resume survives kill -9: the slot record (fwslot), the fetch state file,
 * and the pending request (state_dir/firmware/pending.json: the manifest and the path). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "agent.h"
#include "lade/clock.h"
#include "lade/file.h"
#include "lade/log.h"
#include "lade/resolve.h"

#define UPD_DIR           "firmware"
#define UPD_PENDING       "pending.json"
#define UPD_FETCH_STATE   "fetch.state"
#define UPD_SELFTEST_FAIL "LADE-SELFTEST-FAIL" /* test images: the self-test fails on this */
#define UPD_DELAY_MAX_S   (7u * 86400u)

static const char *const STATE_NAME[] = {
    [UPD_IDLE] = "idle",
    [UPD_DELAY] = "waiting",
    [UPD_DOWNLOADING] = "downloading",
    [UPD_INSTALLING] = "installing",
    [UPD_RESTART] = "restart-pending",
    [UPD_TRIAL] = "trial",
    [UPD_FAILED] = "failed",
    [UPD_UNAVAILABLE] = "unavailable",
};

static void upd_path(const struct lade_charger *c, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/" UPD_DIR "/%s", c->set.state_dir, name);
}

static void set_state(struct lade_charger *c, enum upd_state to, const char *why)
{
    struct upd *u = &c->upd;
    if (u->state != to)
        LOG_I(c->log_tag, "firmware: %s -> %s%s%s", STATE_NAME[u->state], STATE_NAME[to],
              why ? ": " : "", why ? why : "");
    bool changed = u->state != to;
    u->state = to;
    if (to == UPD_FAILED && why)
        snprintf(u->last_error, sizeof u->last_error, "%s", why);
    agent_write_status(c);
    /* The portal follows an update through the twin: a few patches per update (R12). */
    if (changed && c->link == LADE_LINK_ONLINE)
        agent_report_twin(c, NULL);
}

static void refresh_versions(struct lade_charger *c)
{
    struct upd *u = &c->upd;
    if (!u->slots)
        return;
    struct lade_fwslot_status st;
    lade_fwslot_file_status(u->slots, &st);
    const struct lade_fwslot_slot *run = &st.slot[st.running];
    snprintf(u->running_version, sizeof u->running_version, "%s",
             run->img.version[0] ? run->img.version : LADE_FIRMWARE_VERSION);
}

const char *upd_running_version(const struct lade_charger *c)
{
    return c->upd.running_version[0] ? c->upd.running_version : LADE_FIRMWARE_VERSION;
}

/* ---- the pending request ---- */

static void pending_save(struct lade_charger *c)
{
    struct upd *u = &c->upd;
    char path[400];
    upd_path(c, UPD_PENDING, path, sizeof path);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "manifest", u->manifest);
    cJSON_AddStringToObject(o, "path", u->path);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text || lade_file_write_atomic(path, text, strlen(text), 0600, true) != LADE_OK)
        LOG_W(c->log_tag, "firmware: %s not written", path);
    free(text);
}

static void pending_clear(struct lade_charger *c)
{
    char path[400];
    upd_path(c, UPD_PENDING, path, sizeof path);
    (void)unlink(path);
    upd_path(c, UPD_FETCH_STATE, path, sizeof path);
    (void)unlink(path);
}

/* Takes a manifest: parse, signature, hardware, counter. *why is a static reason on failure. */
static lade_err take_manifest(struct lade_charger *c, const char *text, size_t len,
                              const char **why)
{
    struct upd *u = &c->upd;
    struct lade_fwslot_status st;
    lade_fwslot_file_status(u->slots, &st);
    struct lade_fwm_diag d;
    if (len >= sizeof u->manifest) {
        *why = "manifest too long";
        return LADE_ERR_TOO_BIG;
    }
    memcpy(u->manifest, text, len);
    u->manifest[len] = 0;
    u->manifest_len = len;
    lade_err err =
        lade_fwsig_accept(&u->keys, u->manifest, len, c->set.hardware_id,
                          (uint32_t)(st.counter > UINT32_MAX ? UINT32_MAX : st.counter), &u->m, &d);
    if (err) {
        *why = lade_fwm_reason_text(d.reason);
        u->manifest[0] = 0;
        u->manifest_len = 0;
        return err;
    }
    u->img = (struct lade_fwslot_image){.security_counter = u->m.security_counter,
                                        .length = u->m.image_len};
    snprintf(u->img.version, sizeof u->img.version, "%.*s", (int)u->m.version.n, u->m.version.p);
    memcpy(u->img.sha256, u->m.image_sha256, sizeof u->img.sha256);
    return LADE_OK;
}

/* ---- download into the slot ---- */

static lade_err sink_write(void *ud, uint64_t off, const uint8_t *p, size_t n)
{
    struct lade_charger *c = ud;
    return lade_fwslot_file_write(c->upd.slots, off, p, n);
}

static lade_err sink_sync(void *ud)
{
    struct lade_charger *c = ud;
    return lade_fwslot_file_sync(c->upd.slots);
}

static lade_err sink_read(void *ud, uint64_t off, uint8_t *p, size_t n)
{
    struct lade_charger *c = ud;
    struct upd *u = &c->upd;
    const char *path = lade_fwslot_file_slot_path(u->slots, u->slot);
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0)
        return LADE_ERR_IO;
    ssize_t r = pread(fd, p, n, (off_t)off);
    close(fd);
    return r == (ssize_t)n ? LADE_OK : LADE_ERR_IO;
}

static void on_progress(void *ud, const struct lade_fwfetch_progress *p)
{
    struct lade_charger *c = ud;
    struct upd *u = &c->upd;
    uint32_t pct = p->length ? (uint32_t)(p->offset * 100 / p->length) : 0;
    if (pct / 10 != u->progress_pct / 10) {
        u->progress_pct = pct;
        agent_write_status(c);
    } else {
        u->progress_pct = pct;
    }
}

static void on_note(void *ud, const char *text)
{
    struct lade_charger *c = ud;
    LOG_I(c->log_tag, "firmware download: %s", text);
}

static void on_fetched(void *ud, lade_err err, const char *reason,
                       const struct lade_fwfetch_result *res)
{
    struct lade_charger *c = ud;
    struct upd *u = &c->upd;
    if (err) {
        char why[200];
        snprintf(why, sizeof why, "download failed: %s (%s)", reason ? reason : "",
                 lade_strerror(err));
        lade_fwfetch_free(u->fetch); /* reason and res belong to it: used above */
        u->fetch = NULL;
        pending_clear(c);
        set_state(c, UPD_FAILED, why);
        return;
    }
    LOG_I(c->log_tag, "firmware: %llu bytes from %s in %u ms (%u attempts, %u resumes)",
          (unsigned long long)res->length, res->host, res->elapsed_ms, res->attempts, res->resumes);
    lade_fwfetch_free(u->fetch);
    u->fetch = NULL;
    set_state(c, UPD_INSTALLING, NULL);
    err = lade_fwslot_file_finish(u->slots);
    if (err == LADE_OK)
        err = lade_fwslot_file_switch(u->slots);
    if (err) {
        pending_clear(c);
        set_state(c, UPD_FAILED,
                  err == LADE_ERR_AUTH ? "the slot does not read back as the signed image"
                                       : "cannot install into the inactive slot");
        return;
    }
    pending_clear(c);
    u->progress_pct = 100;
    set_state(c, UPD_RESTART, NULL);
    agent_restart(c, "new firmware installed, trying it");
}

static void start_download(struct lade_charger *c)
{
    struct upd *u = &c->upd;
    uint64_t resume_max = 0;
    int slot = -1;
    lade_err err = lade_fwslot_file_begin(u->slots, &u->img, false, &slot, &resume_max);
    if (err) {
        pending_clear(c);
        set_state(c, UPD_FAILED,
                  err == LADE_ERR_STATE
                      ? "refused by the slot record (downgrade, or this image was rolled back)"
                      : "cannot start writing the inactive slot");
        return;
    }
    u->slot = slot;
    char hosts_buf[768];
    snprintf(hosts_buf, sizeof hosts_buf, "%s", c->set.firmware_hosts);
    const char *hosts[LADE_FWFETCH_MAX_HOSTS];
    size_t n = 0;
    for (char *save = NULL, *h = strtok_r(hosts_buf, ", ", &save); h && n < LADE_FWFETCH_MAX_HOSTS;
         h = strtok_r(NULL, ", ", &save))
        hosts[n++] = h;
    char state[400];
    upd_path(c, UPD_FETCH_STATE, state, sizeof state);
    /* Names: the factory hosts file when it has them (tests, the demo), else the DNS stub. */
    char *hosts_text = NULL;
    size_t hosts_len = 0;
    struct lade_sockaddr probe;
    size_t np = 0;
    if (n &&
        lade_resolve_static(hosts[0], c->set.hosts_file, &probe, 1, &np) != LADE_ERR_NOT_FOUND &&
        np) {
        FILE *f = fopen(c->set.hosts_file, "r");
        if (f) {
            hosts_text = malloc(65536);
            if (hosts_text)
                hosts_len = fread(hosts_text, 1, 65535, f);
            fclose(f);
        }
    }
    struct lade_fwfetch_cfg fc = {
        .hosts = hosts,
        .n_hosts = n,
        .port = c->set.firmware_port,
        .path = u->path,
        .ca_file = c->set.ca_file,
        .expected_len = u->img.length,
        .expected_sha256 = u->img.sha256,
        .sink = {.write = sink_write, .sync = sink_sync, .read = sink_read, .ud = c},
        .state_path = state,
        .dnsres = hosts_text ? NULL : c->dns,
        .hosts_text = hosts_text,
        .hosts_len = hosts_len,
        .progress = on_progress,
        .note = on_note,
        .done = on_fetched,
        .ud = c,
    };
    err = lade_fwfetch_new(c->loop, &fc, &u->fetch);
    free(hosts_text);
    if (err) {
        u->fetch = NULL;
        pending_clear(c);
        set_state(c, UPD_FAILED, "cannot start the download (hosts, path or CA)");
        return;
    }
    u->progress_pct =
        resume_max && u->img.length ? (uint32_t)(resume_max * 100 / u->img.length) : 0;
    set_state(c, UPD_DOWNLOADING, NULL);
}

static void on_timer(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    struct lade_charger *c = ud;
    struct upd *u = &c->upd;
    switch (u->state) {
    case UPD_DELAY:
        start_download(c);
        break;
    case UPD_TRIAL:
        /* The new firmware did not reach the hub in time: back to the good slot. */
        if (lade_fwslot_file_rollback(u->slots, LADE_FWSLOT_WHY_HUB) == LADE_OK) {
            set_state(c, UPD_FAILED, "new firmware did not reach the hub in time: rolled back");
            u->state = UPD_RESTART;
            agent_restart(c, "rolled back");
        }
        break;
    default:
        break;
    }
}

/* ---- command 200 ---- */

static void answer(int *status, char *body, size_t cap, int code, const char *st, const char *err)
{
    *status = code;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", st);
    if (err)
        cJSON_AddStringToObject(o, "error", err);
    char *t = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    snprintf(body, cap, "%s", t ? t : "{}");
    free(t);
}

void upd_command(struct lade_charger *c, const cJSON *args, int *status, char *body, size_t cap)
{
    struct upd *u = &c->upd;
    if (!u->slots) {
        answer(status, body, cap, 409, "invalid_state", u->last_error);
        return;
    }
    if (u->keys.n == 0) {
        answer(status, body, cap, 409, "invalid_state", "no firmware key is pinned");
        return;
    }
    if (u->state == UPD_DELAY || u->state == UPD_DOWNLOADING || u->state == UPD_INSTALLING ||
        u->state == UPD_RESTART || u->state == UPD_TRIAL) {
        answer(status, body, cap, 409, "invalid_state", "an update is in progress");
        return;
    }
    const cJSON *man = cJSON_GetObjectItemCaseSensitive(args, "manifest");
    const cJSON *path = cJSON_GetObjectItemCaseSensitive(args, "path");
    const cJSON *delay = cJSON_GetObjectItemCaseSensitive(args, "delayMaxS");
    if (!cJSON_IsString(man) || !cJSON_IsString(path) ||
        (delay && (!cJSON_IsNumber(delay) || delay->valuedouble < 0 ||
                   delay->valuedouble > UPD_DELAY_MAX_S))) {
        answer(status, body, cap, 400, "out_of_range",
               "needs \"manifest\" (text), \"path\" (/fw/...) and optional \"delayMaxS\" "
               "(0..604800)");
        return;
    }
    if (!lade_fwfetch_path_valid(path->valuestring) ||
        strlen(path->valuestring) >= sizeof u->path) {
        answer(status, body, cap, 400, "out_of_range", "\"path\" must be /fw/<name>");
        return;
    }
    const char *why = NULL;
    if (take_manifest(c, man->valuestring, strlen(man->valuestring), &why) != LADE_OK) {
        char text[200];
        snprintf(text, sizeof text, "manifest refused: %s", why ? why : "invalid");
        LOG_W(c->log_tag, "firmware: %s", text);
        snprintf(u->last_error, sizeof u->last_error, "%s", text);
        agent_write_status(c);
        answer(status, body, cap, 400, "refused", text);
        return;
    }
    struct lade_fwslot_status st;
    lade_fwslot_file_status(u->slots, &st);
    if (memcmp(st.slot[st.running].img.sha256, u->img.sha256, sizeof u->img.sha256) == 0) {
        answer(status, body, cap, 200, "ok", "this firmware is already running");
        return;
    }
    snprintf(u->path, sizeof u->path, "%s", path->valuestring);
    snprintf(u->target_version, sizeof u->target_version, "%s", u->img.version);
    u->last_error[0] = 0;
    u->progress_pct = 0;
    pending_save(c);
    uint32_t max_ms = delay ? (uint32_t)(delay->valuedouble * 1000.0) : 0;
    uint32_t wait = max_ms ? lade_random_u32() % (max_ms + 1) : 0;
    LOG_I(c->log_tag, "firmware %s accepted; download in %u ms", u->img.version, wait);
    set_state(c, UPD_DELAY, NULL);
    agent_arm(c, &u->timer, lade_mono_ms() + wait);
    answer(status, body, cap, 200, "ok", NULL);
}

/* ---- boot ---- */

static bool self_test(struct lade_charger *c)
{
    /* The image of a real charger is a root file system; its self-test checks the hardware and
     * the services. Here the agent that runs is the same binary whatever the slot holds, so the
     * self-test checks what it can (the state directory is writable, the settings were valid —
     * or we would not be here) and the image itself: test images carry a marker that makes it
     * fail, which is how the rollback path is exercised end to end. */
    struct upd *u = &c->upd;
    const char *path = lade_fwslot_file_slot_path(u->slots, u->running);
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f)
        return false;
    const size_t m = sizeof UPD_SELFTEST_FAIL - 1;
    char buf[8192];
    size_t keep = 0, n;
    bool bad = false;
    while ((n = fread(buf + keep, 1, sizeof buf - keep, f)) > 0) {
        size_t have = keep + n;
        if (memmem(buf, have, UPD_SELFTEST_FAIL, m)) {
            bad = true;
            break;
        }
        keep = have < m - 1 ? have : m - 1; /* a marker across two reads */
        memmove(buf, buf + have - keep, keep);
    }
    fclose(f);
    char probe[400];
    upd_path(c, ".selftest", probe, sizeof probe);
    bool writable = lade_file_write_atomic(probe, "ok\n", 3, 0600, false) == LADE_OK;
    (void)unlink(probe);
    return !bad && writable;
}

lade_err upd_init(struct lade_charger *c)
{
    struct upd *u = &c->upd;
    memset(u, 0, sizeof *u);
    lade_timer_init(&u->timer, on_timer, c);
    snprintf(u->running_version, sizeof u->running_version, "%s", LADE_FIRMWARE_VERSION);
    u->state = UPD_UNAVAILABLE;
    if (c->set.firmware_pubkey[0] && lade_fwsig_keys_parse(c->set.firmware_pubkey, &u->keys))
        u->keys.n = 0; /* settings check refuses this; belt and braces */
    if (!c->set.state_dir[0]) {
        snprintf(u->last_error, sizeof u->last_error, "no state_dir: updates unavailable");
        return LADE_OK;
    }
    char dir[400];
    snprintf(dir, sizeof dir, "%s/" UPD_DIR, c->set.state_dir);
    if (mkdir(c->set.state_dir, 0700) != 0 && errno != EEXIST)
        LOG_W(c->log_tag, "state directory %s: %s", c->set.state_dir, strerror(errno));
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(u->last_error, sizeof u->last_error, "%.100s: %s", dir, strerror(errno));
        LOG_W(c->log_tag, "firmware: %s; updates unavailable", u->last_error);
        return LADE_OK; /* charging goes on without updates */
    }
    struct lade_fwslot_file_cfg fc = {.dir = dir, .factory_version = LADE_FIRMWARE_VERSION};
    if (lade_fwslot_file_open(&fc, &u->slots) != LADE_OK) {
        u->slots = NULL;
        snprintf(u->last_error, sizeof u->last_error, "slot record unreadable; updates off");
        LOG_W(c->log_tag, "firmware: %s", u->last_error);
        return LADE_OK;
    }
    struct lade_fwslot_status st;
    lade_fwslot_file_status(u->slots, &st);
    u->running = st.running;
    u->boot = st.boot;
    refresh_versions(c);
    u->state = UPD_IDLE;
    if (st.rejected_why != LADE_FWSLOT_WHY_NONE)
        snprintf(u->last_error, sizeof u->last_error, "%s %s: %s", st.rejected.version,
                 st.boot == LADE_FWSLOT_BOOT_FALLBACK ? "fell back" : "was rolled back",
                 lade_fwslot_why_name(st.rejected_why));
    LOG_I(c->log_tag, "firmware %s in slot %s (%s)%s", u->running_version,
          lade_fwslot_name(st.running), lade_fwslot_boot_kind_name(st.boot),
          st.trial ? ": on trial" : "");
    if (st.trial) {
        if (!self_test(c)) {
            if (lade_fwslot_file_rollback(u->slots, LADE_FWSLOT_WHY_SELFTEST) == LADE_OK) {
                snprintf(u->last_error, sizeof u->last_error,
                         "%s failed its self-test: rolled back", u->running_version);
                u->state = UPD_RESTART;
                u->rollback_restart = true;
            }
        } else {
            u->state = UPD_TRIAL;
        }
        return LADE_OK;
    }
    /* A download that a restart (or kill -9) interrupted: resume it. */
    char path[400];
    upd_path(c, UPD_PENDING, path, sizeof path);
    FILE *f = fopen(path, "r");
    if (f) {
        char buf[8192];
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = 0;
        cJSON *o = cJSON_Parse(buf);
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "manifest");
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "path");
        const char *why = NULL;
        if (cJSON_IsString(m) && cJSON_IsString(p) && strlen(p->valuestring) < sizeof u->path &&
            take_manifest(c, m->valuestring, strlen(m->valuestring), &why) == LADE_OK) {
            snprintf(u->path, sizeof u->path, "%s", p->valuestring);
            snprintf(u->target_version, sizeof u->target_version, "%s", u->img.version);
            u->state = UPD_DELAY;
            u->resume_at_start = true;
        } else {
            pending_clear(c);
        }
        cJSON_Delete(o);
    }
    return LADE_OK;
}

void upd_start(struct lade_charger *c)
{
    struct upd *u = &c->upd;
    if (u->state == UPD_RESTART && u->rollback_restart)
        agent_restart(c, "rolled back after a failed self-test");
    else if (u->state == UPD_TRIAL)
        agent_arm(c, &u->timer, lade_mono_ms() + (uint64_t)c->set.firmware_confirm_s * 1000u);
    else if (u->state == UPD_DELAY && u->resume_at_start)
        agent_arm(c, &u->timer, lade_mono_ms());
}

void upd_online(struct lade_charger *c)
{
    struct upd *u = &c->upd;
    if (u->state != UPD_TRIAL)
        return;
    lade_timer_cancel(c->loop, &u->timer);
    if (lade_fwslot_file_mark_good(u->slots) != LADE_OK) {
        LOG_W(c->log_tag, "firmware: mark good failed; the next boot falls back");
        set_state(c, UPD_FAILED, "cannot mark the new firmware good");
        return;
    }
    refresh_versions(c);
    LOG_I(c->log_tag, "firmware %s confirmed (self-test passed, hub reached)", u->running_version);
    u->last_error[0] = 0;
    set_state(c, UPD_IDLE, NULL);
    ctl_firmware_changed(c);
    agent_report_twin(c, NULL);
}

void upd_stop(struct lade_charger *c)
{
    struct upd *u = &c->upd;
    lade_timer_cancel(c->loop, &u->timer);
    lade_fwfetch_free(u->fetch); /* saves the resume state */
    u->fetch = NULL;
}

void upd_free(struct lade_charger *c)
{
    upd_stop(c);
    lade_fwslot_file_close(c->upd.slots);
    c->upd.slots = NULL;
}

static void fill(const struct lade_charger *c, cJSON *o, bool camel)
{
    const struct upd *u = &c->upd;
    cJSON_AddStringToObject(o, "version", upd_running_version(c));
    cJSON_AddStringToObject(o, camel ? "hardwareId" : "hardware_id", c->set.hardware_id);
    cJSON_AddStringToObject(o, "state", STATE_NAME[u->state]);
    if (u->slots) {
        struct lade_fwslot_status st;
        lade_fwslot_file_status(u->slots, &st);
        cJSON_AddStringToObject(o, "slot", lade_fwslot_name(st.running));
        cJSON_AddStringToObject(o, "boot", lade_fwslot_boot_kind_name(st.boot));
        cJSON_AddNumberToObject(o, camel ? "securityCounter" : "security_counter",
                                (double)st.counter);
        cJSON_AddNumberToObject(o, "rollbacks", st.rollbacks);
    }
    if (u->target_version[0] && u->state != UPD_IDLE)
        cJSON_AddStringToObject(o, "target", u->target_version);
    if (u->state == UPD_DOWNLOADING || u->state == UPD_INSTALLING)
        cJSON_AddNumberToObject(o, "progress", u->progress_pct);
    if (agent_restart_deferred(c))
        cJSON_AddBoolToObject(o, camel ? "restartDeferred" : "restart_deferred", true);
    cJSON_AddStringToObject(o, camel ? "lastError" : "last_error", u->last_error);
}

void upd_status_json(const struct lade_charger *c, cJSON *o)
{
    fill(c, cJSON_AddObjectToObject(o, "firmware"), false);
}

void upd_reported(const struct lade_charger *c, cJSON *o)
{
    fill(c, cJSON_AddObjectToObject(o, "firmware"), true);
}
