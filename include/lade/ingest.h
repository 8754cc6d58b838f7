/* lade — the portal's reading of what chargers send (pure: no I/O, no clock).
 *
 * A device-to-cloud message (telemetry topic devices/{id}/messages/events/{property bag}) is
 * one of:
 *   STATE    an observation message (docs/observations.md): values by observation id;
 *   SESSION  a finished charge session: property $.mid (32 hex) and observation 723 holding the
 *            session document (SessionId == $.mid, Energy kWh, Start/EndDateTime, ReliableClock,
 *            PeakPowerW, Phases, EndReason, EndEstimated). The receiver stores it once per mid;
 *   OTHER    anything else from a charger (e.g. the link-only state message of a charger
 *            without charging hardware): ignored, counted.
 * Input is untrusted: every field is checked; a bad message is INVALID with a reason, and never
 * half-applied.
 */
#ifndef LADE_INGEST_H
#define LADE_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lade/codec.h"
#include "lade/err.h"
#include "lade/obs.h"

#define LADE_INGEST_ITEMS 64

enum lade_ingest_kind {
    LADE_INGEST_INVALID = 0,
    LADE_INGEST_STATE = 1,
    LADE_INGEST_SESSION = 2,
    LADE_INGEST_OTHER = 3,
};

struct lade_ingest_session {
    char id[33]; /* = $.mid, 32 lower-case hex */
    int64_t start_s, end_s;
    uint64_t energy_wh;
    bool reliable_clock;
    bool end_estimated;
    int32_t peak_power_w;
    unsigned phases;
    char end_reason[24];
};

struct lade_ingest_msg {
    enum lade_ingest_kind kind;
    char reason[96]; /* INVALID: why */
    int64_t wall_s;  /* the message's "t" */
    bool snapshot;   /* STATE: full snapshot */
    size_t n_items;  /* STATE: values (views into the payload) */
    struct lade_obs_item items[LADE_INGEST_ITEMS];
    struct lade_ingest_session session; /* SESSION */
};

/* Classifies and decodes one message. props: the topic's property bag (URL-encoded). */
void lade_ingest_parse(struct lade_str props, const uint8_t *payload, size_t len,
                       struct lade_ingest_msg *out);

/* ISO 8601 UTC "YYYY-MM-DDTHH:MM:SS[.fff]Z" → Unix seconds. LADE_ERR_PROTO if malformed. */
lade_err lade_ingest_iso_time(const char *s, int64_t *out) LADE_MUST_CHECK;

#endif
