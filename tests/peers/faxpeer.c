/*
 * faxpeer: a complete audio fax terminal (T.30 over V.21/V.27ter/V.29, no ECM) built on
 * libspandsp, used only as a test peer for our own fax terminal.
 *
 * Line protocol (the same as `python -m dsp.fax.terminal`): stdout and stdin are the line,
 * signed 16-bit little-endian samples at 8 kHz in blocks of 160. Every step writes one block
 * (flushed), then reads one; EOF on stdin means the line dropped. At the end one line
 *   result ok pages=N rate=R resolution=standard|fine compression=MH|MR remote="ID"
 *   result failed cause="..." pages=N
 * goes to stderr; the exit status is 0 for a completed fax, 1 for a failed one, 2 for usage.
 *
 * Build: cc -O2 faxpeer.c -o faxpeer -lspandsp -ltiff -lm
 */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* spandsp.h uses libtiff's types without including tiffio.h itself on every version */
#include <tiffio.h>
#include <spandsp.h>

#define BLOCK 160
#define RATE 8000
/* after phase E, keep the line up long enough for the far end to hear our last frame */
#define TAIL_BLOCKS 25

static const char *usage_text =
    "usage: faxpeer (--send FILE.tif | --receive OUT.tif) [--calling | --answering]\n"
    "               [--modems v27ter,v29,v17] [--compression mh|mr|both] [--ident ID]\n"
    "               [--max-seconds N] [--verbose]\n";

typedef struct {
    int sending;
    int done;            /* phase E has run */
    int completion_code; /* its T30_ERR_* code */
    t30_stats_t stats;
    char remote[64];
} peer_t;

static void usage(const char *why)
{
    fprintf(stderr, "faxpeer: %s\n%s", why, usage_text);
    exit(2);
}

static void log_to_stderr(int level, const char *text)
{
    (void) level;
    fputs(text, stderr); /* stdout is the line: never log there */
}

static void phase_e(t30_state_t *t30, void *user_data, int completion_code)
{
    peer_t *p = (peer_t *) user_data;
    const char *id = t30_get_rx_ident(t30);

    p->done = 1;
    p->completion_code = completion_code;
    t30_get_transfer_statistics(t30, &p->stats);
    snprintf(p->remote, sizeof(p->remote), "%s", id ? id : "");
}

/* Print s in double quotes, escaping quotes and backslashes so the line stays parseable. */
static void print_quoted(const char *s)
{
    fputc('"', stderr);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', stderr);
        fputc(*s, stderr);
    }
    fputc('"', stderr);
}

static int report(const peer_t *p, const char *cause)
{
    int pages = p->sending ? p->stats.pages_tx : p->stats.pages_rx;

    if (cause == NULL && p->completion_code != T30_ERR_OK)
        cause = t30_completion_code_to_str(p->completion_code);
    if (cause) {
        fprintf(stderr, "result failed cause=");
        print_quoted(cause);
        fprintf(stderr, " pages=%d\n", pages);
        fflush(stderr);
        return 1;
    }
    fprintf(stderr, "result ok pages=%d rate=%d resolution=%s compression=%s remote=", pages,
            p->stats.bit_rate, p->stats.y_resolution >= T4_Y_RESOLUTION_FINE ? "fine" : "standard",
            p->stats.encoding == T4_COMPRESSION_ITU_T4_2D ? "MR"
                : p->stats.encoding == T4_COMPRESSION_ITU_T4_1D ? "MH" : "other");
    print_quoted(p->remote);
    fputc('\n', stderr);
    fflush(stderr);
    return 0;
}

static int parse_modems(const char *list)
{
    int modems = 0;
    char buf[64];
    char *tok, *save = NULL;

    snprintf(buf, sizeof(buf), "%s", list);
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (strcmp(tok, "v27ter") == 0)
            modems |= T30_SUPPORT_V27TER;
        else if (strcmp(tok, "v29") == 0)
            modems |= T30_SUPPORT_V29;
        else if (strcmp(tok, "v17") == 0)
            modems |= T30_SUPPORT_V17;
        else
            usage("--modems takes v27ter, v29 and v17, comma separated");
    }
    if (modems == 0)
        usage("--modems needs at least one modem");
    return modems;
}

/* The line carries little-endian samples whatever the host's byte order. */
static void to_little_endian(int16_t *amp)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    int i;
    for (i = 0; i < BLOCK; i++)
        amp[i] = (int16_t) __builtin_bswap16((uint16_t) amp[i]);
#else
    (void) amp;
#endif
}

/* Read exactly one block; returns 0 on EOF or error (the line dropped). */
static int read_block(int16_t *amp)
{
    size_t got = 0, want = BLOCK * sizeof(int16_t);
    char *buf = (char *) amp;

    while (got < want) {
        ssize_t n = read(STDIN_FILENO, buf + got, want - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        got += (size_t) n;
    }
    to_little_endian(amp); /* the same swap, back to host order */
    return 1;
}

static int write_block(int16_t *amp)
{
    to_little_endian(amp);
    if (fwrite(amp, sizeof(int16_t), BLOCK, stdout) != BLOCK)
        return 0;
    return fflush(stdout) == 0;
}

int main(int argc, char *argv[])
{
    const char *send_file = NULL, *receive_file = NULL, *ident = "faxpeer";
    int calling = -1, modems = T30_SUPPORT_V27TER | T30_SUPPORT_V29, verbose = 0;
    int compressions = T30_SUPPORT_T4_1D_COMPRESSION | T30_SUPPORT_T4_2D_COMPRESSION;
    double max_seconds = 300.0;
    long step, max_steps, tail = -1;
    int16_t tx[BLOCK], rx[BLOCK];
    logging_state_t *logs[2] = {NULL, NULL};
    fax_state_t *fax;
    t30_state_t *t30;
    peer_t peer;
    int i;

    memset(&peer, 0, sizeof(peer));
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--calling") == 0) {
            calling = 1;
        } else if (strcmp(a, "--answering") == 0) {
            calling = 0;
        } else if (strcmp(a, "--verbose") == 0) {
            verbose = 1;
        } else if (v == NULL) {
            usage("missing value after an option");
        } else if (strcmp(a, "--send") == 0) {
            send_file = argv[++i];
        } else if (strcmp(a, "--receive") == 0) {
            receive_file = argv[++i];
        } else if (strcmp(a, "--modems") == 0) {
            modems = parse_modems(argv[++i]);
        } else if (strcmp(a, "--ident") == 0) {
            ident = argv[++i];
        } else if (strcmp(a, "--max-seconds") == 0) {
            max_seconds = atof(argv[++i]);
            if (max_seconds <= 0)
                usage("--max-seconds must be positive");
        } else if (strcmp(a, "--compression") == 0) {
            v = argv[++i];
            if (strcmp(v, "mh") == 0)
                compressions = T30_SUPPORT_T4_1D_COMPRESSION;
            else if (strcmp(v, "mr") == 0 || strcmp(v, "both") == 0)
                /* MR implies MH: T.30 has no way to offer 2-D coding without 1-D */
                compressions = T30_SUPPORT_T4_1D_COMPRESSION | T30_SUPPORT_T4_2D_COMPRESSION;
            else
                usage("--compression takes mh, mr or both");
        } else {
            usage("unknown option");
        }
    }
    if ((send_file == NULL) == (receive_file == NULL))
        usage("give exactly one of --send and --receive");
    if (send_file && access(send_file, R_OK) != 0)
        usage("cannot read the file to send");
    peer.sending = send_file != NULL;
    if (calling < 0)
        calling = peer.sending; /* the usual roles: the sender calls, the receiver answers */

    signal(SIGPIPE, SIG_IGN); /* a closed line is a dropped call, not a crash */
    fax = fax_init(NULL, calling);
    if (fax == NULL) {
        fprintf(stderr, "result failed cause=\"fax_init failed\" pages=0\n");
        return 1;
    }
    fax_set_transmit_on_idle(fax, 1);
    t30 = fax_get_t30_state(fax);
    if (verbose) {
        logs[0] = fax_get_logging_state(fax);
        logs[1] = t30_get_logging_state(t30);
        for (i = 0; i < 2; i++) {
            span_log_set_message_handler(logs[i], log_to_stderr);
            span_log_set_level(logs[i], SPAN_LOG_SHOW_SEVERITY | SPAN_LOG_SHOW_PROTOCOL
                               | SPAN_LOG_SHOW_SAMPLE_TIME | SPAN_LOG_FLOW);
        }
    }
    if (peer.sending)
        t30_set_tx_file(t30, send_file, -1, -1);
    else
        t30_set_rx_file(t30, receive_file, -1);
    t30_set_supported_modems(t30, modems);
    t30_set_supported_compressions(t30, compressions);
    t30_set_ecm_capability(t30, 0);
    t30_set_tx_ident(t30, ident);
    t30_set_phase_e_handler(t30, phase_e, &peer);

    max_steps = (long) (max_seconds * RATE / BLOCK);
    for (step = 0; step < max_steps; step++) {
        int n = fax_tx(fax, tx, BLOCK);
        if (n < BLOCK)
            memset(tx + (n > 0 ? n : 0), 0, sizeof(int16_t) * (BLOCK - (n > 0 ? n : 0)));
        if (!write_block(tx) || !read_block(rx))
            return peer.done ? report(&peer, NULL) : report(&peer, "line dropped");
        fax_rx(fax, rx, BLOCK);
        for (i = 0; i < 2 && logs[i]; i++)
            span_log_bump_samples(logs[i], BLOCK); /* so log lines carry the line time */
        if (peer.done && tail < 0)
            tail = TAIL_BLOCKS;
        if (tail >= 0 && tail-- == 0)
            return report(&peer, NULL);
    }
    t30_get_transfer_statistics(t30, &peer.stats);
    return report(&peer, "timeout");
}
