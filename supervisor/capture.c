/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "capture.h"
#include "journal.h"
#include "log.h"
#include "sink.h"
#include "util.h"

#define READ_CHUNK (64u * 1024u)

/* One read buffer and one escape buffer serve every stream: the loop is single-threaded. */
static char read_buffer[READ_CHUNK];
static char *escape_buffer;
static size_t escape_buffer_size;

const char *stream_kind_name(enum stream_kind k) {
        return k == STREAM_STDERR ? "stderr" : "stdout";
}

bool capture_prefix_template_valid(const char *t) {
        for (const char *p = t; *p; p++) {
                if (*p != '%')
                        continue;
                p++;
                if (!*p || !strchr("rlnsphw%", *p))
                        return false;
        }
        return true;
}

static char *expand_prefix(const char *t, int rank, int local_rank, const char *role, enum stream_kind kind,
                           pid_t pid, const char *label) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f;

        f = open_memstream(&buf, &size);
        if (!f)
                return NULL;
        for (const char *p = t; *p; p++) {
                if (*p != '%') {
                        fputc(*p, f);
                        continue;
                }
                switch (*++p) {
                case 'r': fprintf(f, "%d", rank); break;
                case 'l': fprintf(f, "%d", local_rank); break;
                case 'n': fputs(role, f); break;
                case 's': fputs(kind == STREAM_STDERR ? "err" : "out", f); break;
                case 'p': fprintf(f, "%d", (int) pid); break;
                case 'h': {
                        char host[256] = "";
                        (void) gethostname(host, sizeof(host) - 1);
                        fputs(host, f);
                        break;
                }
                case 'w': fputs(label ? label : "", f); break;
                default: fputc('%', f); break;
                }
        }
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

size_t capture_escape(const char *in, size_t len, char *out) {
        static const char hex[] = "0123456789abcdef";
        const unsigned char *s = (const unsigned char *) in;
        size_t o = 0;

        for (size_t i = 0; i < len;) {
                unsigned char c = s[i];
                size_t n;

                if ((c >= 0x20 && c < 0x7f) || c == '\t') {
                        out[o++] = (char) c;
                        i++;
                        continue;
                }
                /* U+0080-U+009F are C1 controls (U+009B is a CSI to many terminals): escaped as bytes. */
                if (c >= 0x80 && (n = utf8_sequence_length(s + i, len - i)) > 0 &&
                    !(c == 0xc2 && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f)) {
                        memcpy(out + o, s + i, n);
                        o += n;
                        i += n;
                        continue;
                }
                out[o++] = '\\';
                out[o++] = 'x';
                out[o++] = hex[c >> 4];
                out[o++] = hex[c & 15];
                i++;
        }
        return o;
}

static void stream_emit_drop_notice(struct stream *s, struct sink *sink) {
        char msg[256], size[32];
        struct iovec iov[1];
        int n;

        if (!sink_has_room(sink, sizeof(msg) + s->prefix_len + s->line_len * 4 + 1))
                return;     /* still no room: the notice waits, and so does this line */

        n = snprintf(msg, sizeof(msg),
                     "ringmaster: rank %d %s: %" PRIu64 " lines (%s) dropped: output was not read fast enough\n",
                     s->rank, stream_kind_name(s->kind), s->pending_drop_lines,
                     format_bytes(size, sizeof(size), s->pending_drop_bytes));
        iov[0] = (struct iovec) { msg, (size_t) MIN(n, (int) sizeof(msg) - 1) };
        if (sink_write_line(sink, iov, 1, false) == 0)
                s->pending_drop_lines = s->pending_drop_bytes = 0;
}

static void stream_emit_line(struct stream *s, bool cut) {
        const struct capture_config *c = s->config;
        struct sink *sink = c->sinks[s->kind];
        const char *text = s->line;

        if (c->console_hidden && s->local_rank < c->n_console_hidden && c->console_hidden[s->local_rank])
                sink = NULL;
        size_t len = s->line_len;

        s->stats.lines++;
        if (cut)
                s->stats.cut_lines++;

        if (c->escape) {
                assert(escape_buffer_size >= 4 * len);
                len = capture_escape(s->line, s->line_len, escape_buffer);
                text = escape_buffer;
        }

        tail_append(&s->tail, text, len);
        if (s->line_watcher)
                s->line_watcher(s->line_watcher_data, text, len);

        if (c->journal &&
            journal_send_line(c->run_id, c->ident, s->rank, s->pid, s->kind == STREAM_STDERR, text, len) < 0) {
                s->stats.journal_errors++;
                /* Not lost when the terminal copy was left out for the journal's sake. */
                if (!sink)
                        sink = c->journal_fallback[s->kind];
        }

        if (sink) {
                struct iovec iov[3] = {
                        { s->prefix, s->prefix_len },
                        { (void *) text, len },
                        { (void *) "\n", 1 },
                };

                if (s->pending_drop_lines > 0)
                        stream_emit_drop_notice(s, sink);
                if (s->pending_drop_lines == 0 && sink_write_line(sink, iov, 3, false) == 0)
                        goto done;
                s->stats.dropped_lines++;
                s->stats.dropped_bytes += s->line_len + 1;
                s->pending_drop_lines++;
                s->pending_drop_bytes += s->line_len + 1;
        }
done:
        s->line_len = 0;
}

static void stream_log_raw(struct stream *s, const char *buf, size_t n) {
        /* What the log file misses is counted, for the report (a full --log-dir must not pass unnoticed). */
        if (s->log_failed) {
                s->stats.log_lost_bytes += n;
                return;
        }
        while (n > 0 && s->log_fd >= 0) {
                ssize_t k = write(s->log_fd, buf, n);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        s->stats.log_error = k < 0 ? errno : EIO;
                        s->stats.log_lost_bytes += n;
                        log_warning_errno(-s->stats.log_error, "rank %d: writing its %s log failed, logging stops "
                                          "(the report counts what is lost)", s->rank, stream_kind_name(s->kind));
                        s->log_fd = safe_close(s->log_fd);
                        s->log_failed = true;
                        return;
                }
                buf += k;
                n -= (size_t) k;
        }
}

static void stream_process(struct stream *s, const char *buf, size_t n) {
        const char *p = buf, *end = buf + n;
        size_t max_line = s->config->max_line;

        while (p < end) {
                const char *q = p;

                if (s->after_cr) {
                        s->after_cr = false;
                        if (*p == '\n') {
                                p++;
                                continue;
                        }
                }
                while (q < end && *q != '\n' && *q != '\r')
                        q++;
                /* Bytes [p, q) belong to the current line. */
                while (p < q) {
                        size_t room = max_line - s->line_len, chunk;

                        if (room == 0) {
                                stream_emit_line(s, true);
                                room = max_line;
                        }
                        chunk = MIN(room, (size_t) (q - p));
                        memcpy(s->line + s->line_len, p, chunk);
                        s->line_len += chunk;
                        p += chunk;
                }
                if (q < end) {
                        s->after_cr = *q == '\r';
                        stream_emit_line(s, false);
                        p = q + 1;
                }
        }
}

/* Returns 1 when data was read, 0 at EOF, -EAGAIN when nothing is there now. */
static int stream_read_once(struct stream *s) {
        ssize_t n;

        if (s->fd < 0)
                return 0;
        do
                n = read(s->fd, read_buffer, sizeof(read_buffer));
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return errno == EAGAIN ? -EAGAIN : 0;   /* a read error ends the stream like EOF */
        if (n == 0)
                return 0;
        s->stats.bytes += (uint64_t) n;
        stream_log_raw(s, read_buffer, (size_t) n);
        stream_process(s, read_buffer, (size_t) n);
        return 1;
}

static void stream_close_pipe(struct stream *s) {
        if (s->line_len > 0) {
                s->stats.unterminated = true;
                stream_emit_line(s, false);
        }
        s->source = sd_event_source_disable_unref(s->source);
        s->fd = safe_close(s->fd);
}

static int stream_on_readable(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        struct stream *s = userdata;

        /* One read per event, so that a flooding rank cannot starve the others. */
        if (stream_read_once(s) == 0)
                stream_close_pipe(s);
        return 0;
}

int stream_init(struct stream *s, sd_event *event, int64_t priority, const struct capture_config *config,
                enum stream_kind kind, int rank, int local_rank, pid_t pid, int fd, int log_fd) {
        int r;

        *s = (struct stream) {
                .config = config,
                .kind = kind,
                .rank = rank,
                .local_rank = local_rank,
                .pid = pid,
                .fd = fd,
                .log_fd = log_fd,
        };

        if (config->escape && escape_buffer_size < 4 * config->max_line) {
                char *b = realloc(escape_buffer, 4 * config->max_line);
                if (!b)
                        return -ENOMEM;
                escape_buffer = b;
                escape_buffer_size = 4 * config->max_line;
        }
        s->prefix = expand_prefix(config->prefix_template, rank, local_rank, config->role, kind, pid, NULL);
        s->line = malloc(config->max_line);
        if (!s->prefix || !s->line)
                return -ENOMEM;
        s->prefix_len = strlen(s->prefix);
        r = tail_init(&s->tail, config->tail_bytes);
        if (r < 0)
                return r;
        r = sd_event_add_io(event, &s->source, fd, EPOLLIN, stream_on_readable, s);
        if (r < 0)
                return r;
        return sd_event_source_set_priority(s->source, priority);
}

int stream_set_label(struct stream *s, const char *label) {
        char *p = expand_prefix(s->config->prefix_template, s->rank, s->local_rank, s->config->role, s->kind, s->pid,
                                label);

        if (!p)
                return -ENOMEM;
        free(s->prefix);
        s->prefix = p;
        s->prefix_len = strlen(p);
        return 0;
}

void stream_drain(struct stream *s) {
        while (s->fd >= 0) {
                int r = stream_read_once(s);

                if (r == -EAGAIN)
                        return;
                if (r == 0)
                        stream_close_pipe(s);
        }
}

void stream_finish(struct stream *s) {
        stream_drain(s);
        if (s->fd >= 0)
                stream_close_pipe(s);
        s->log_fd = safe_close(s->log_fd);
}

void stream_release(struct stream *s) {
        s->source = sd_event_source_disable_unref(s->source);
        s->fd = safe_close(s->fd);
        s->log_fd = safe_close(s->log_fd);
        free(s->prefix);
        s->prefix = NULL;
        free(s->line);
        s->line = NULL;
}

void stream_free(struct stream *s) {
        stream_release(s);
        tail_done(&s->tail);
}
