/* Load side of the slow-streams scenario: the slow upstream and the stream client in one
 * single-threaded epoll loop, in C so that 40,000 tokens a second cost the load CPU little and
 * the delays measured are the gateway's, not the load generator's (a Python upstream and client
 * need more than one CPU between them for that rate).
 *
 * Upstream: accepts HTTP/1.1 POSTs on --listen, answers a chunked SSE stream of --tokens tokens,
 * one every --interval-ms on an absolute schedule; each token's text is the send time
 * (CLOCK_MONOTONIC, ns); keep-alive, so a gateway may reuse the connection.
 * Client: opens --streams connections to --connect over --ramp-s seconds, sends the request,
 * decodes the (chunked or not) SSE answer, records inter-token gaps, one-way delays and
 * time to first token, and prints one JSON object.
 *
 * The bytes (request, token template, stream tail) come from bench/fixtures.py via --fixture:
 * four parts separated by NUL bytes. Built by bench/slowload.py with the system C compiler.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_FD 65536
#define LINE_CAP 8192

static const char HEAD[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    "Transfer-Encoding: chunked\r\n\r\n";

enum role { FREE, LISTENER, UPSTREAM, CLIENT };
enum client_state { HEADERS, BODY, CHUNK_SIZE, CHUNK_DATA, CHUNK_CRLF };

typedef struct conn {
    int fd, role, gen;
    char *in; size_t inlen, incap;   /* unparsed input */
    char *out; size_t outlen, outcap; /* unsent output */
    /* upstream */
    int streaming, sent;
    int64_t due;
    /* client */
    int idx, state, status, chunked, tokens, finished;
    long chunk_left;
    char csize[40]; size_t csizelen;
    char line[LINE_CAP]; size_t linelen;
    char last[512]; size_t lastlen; /* last SSE line, to explain a failed stream */
    int64_t sent_ns, first_ns, last_ns;
} conn;

static conn conns[MAX_FD];
static int ep;
static int64_t interval_ns;
static int tokens_per_stream;
static char *request, *tok_prefix, *tok_suffix, *tail;
static size_t request_len, tok_prefix_len, tok_suffix_len, tail_len;

/* results */
static int64_t *gaps, *delays, *ttfts;
static size_t ngaps, ndelays, nttfts, cap_gaps, cap_delays, cap_ttfts;
static int completed, failed_status, failed_closed, failed_connect, failed_count, failed_timeout;
static int clients_open;
static char failure_sample[600]; static int have_failure_sample;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void push(int64_t **arr, size_t *n, size_t *cap, int64_t v) {
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 1 << 16;
        *arr = realloc(*arr, *cap * sizeof(int64_t));
    }
    (*arr)[(*n)++] = v;
}

static void die(const char *what) { perror(what); exit(1); }

/* --- token queue: every stream has the same interval, so due times come out in order --- */
typedef struct { int fd, gen; } qent;
static qent *queue; static size_t qhead, qtail, qcap;

static void enqueue(conn *c) {
    if (qtail - qhead == qcap) {
        size_t ncap = qcap ? qcap * 2 : 4096;
        qent *nq = malloc(ncap * sizeof(qent));
        for (size_t i = qhead; i < qtail; i++) nq[i - qhead] = queue[i % qcap];
        free(queue); queue = nq; qtail -= qhead; qhead = 0; qcap = ncap;
    }
    queue[qtail++ % qcap] = (qent){c->fd, c->gen};
}

/* --- output --- */
static void close_conn(conn *c);

static void send_bytes(conn *c, const char *buf, size_t len) {
    if (c->outlen == 0) {
        ssize_t w = write(c->fd, buf, len);
        if (w < 0 && errno != EAGAIN) { close_conn(c); return; }
        if (w < 0) w = 0;
        buf += w; len -= (size_t)w;
        if (len == 0) return;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.fd = c->fd};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
    if (c->outlen + len > c->outcap) {
        c->outcap = (c->outlen + len) * 2;
        c->out = realloc(c->out, c->outcap);
    }
    memcpy(c->out + c->outlen, buf, len);
    c->outlen += len;
}

static void flush_out(conn *c) {
    ssize_t w = write(c->fd, c->out, c->outlen);
    if (w < 0 && errno != EAGAIN) { close_conn(c); return; }
    if (w > 0) { memmove(c->out, c->out + w, c->outlen - (size_t)w); c->outlen -= (size_t)w; }
    if (c->outlen == 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = c->fd};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
}

static void send_chunk(conn *c, const char *parts[], const size_t lens[], int n) {
    char buf[16384]; size_t total = 0, off;
    for (int i = 0; i < n; i++) total += lens[i];
    off = (size_t)snprintf(buf, sizeof buf, "%zx\r\n", total);
    for (int i = 0; i < n && off + lens[i] < sizeof buf - 8; i++) { memcpy(buf + off, parts[i], lens[i]); off += lens[i]; }
    memcpy(buf + off, "\r\n", 2); off += 2;
    send_bytes(c, buf, off);
}

static void close_conn(conn *c) {
    if (c->role == FREE) return;
    if (c->role == CLIENT) {
        clients_open--;
        if (!c->finished) {
            if (c->status && c->status != 200) failed_status++;
            else failed_closed++;
            if (!have_failure_sample) {
                have_failure_sample = 1;
                snprintf(failure_sample, sizeof failure_sample, "status %d, %d tokens, last line: %.*s",
                         c->status, c->tokens, (int)c->lastlen, c->last);
            }
        }
    }
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->role = FREE; c->gen++;
    c->inlen = c->outlen = 0;
}

static conn *add_conn(int fd, int role) {
    if (fd >= MAX_FD) { close(fd); return NULL; }
    conn *c = &conns[fd];
    int gen = c->gen;
    char *in = c->in, *out = c->out; size_t incap = c->incap, outcap = c->outcap;
    memset(c, 0, offsetof(conn, line));
    c->linelen = c->lastlen = 0;
    c->fd = fd; c->role = role; c->gen = gen + 1;
    c->in = in; c->incap = incap; c->out = out; c->outcap = outcap;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    return c;
}

static void append_in(conn *c, const char *buf, size_t len) {
    if (c->inlen + len > c->incap) {
        c->incap = (c->inlen + len) * 2;
        c->in = realloc(c->in, c->incap);
    }
    memcpy(c->in + c->inlen, buf, len);
    c->inlen += len;
}

/* --- upstream side --- */
static void upstream_try_start(conn *c) {
    if (c->streaming) return;
    char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
    if (!end) return;
    size_t head = (size_t)(end - c->in) + 4;
    long length = 0;
    for (char *p = c->in; p < end; p++) {
        if ((*p == 'C' || *p == 'c') && (size_t)(end - p) > 15 && strncasecmp(p, "content-length:", 15) == 0) {
            length = strtol(p + 15, NULL, 10);
            break;
        }
    }
    if (c->inlen < head + (size_t)length) return;
    memmove(c->in, c->in + head + length, c->inlen - head - length);
    c->inlen -= head + length;
    send_bytes(c, HEAD, sizeof HEAD - 1);
    if (c->role == FREE) return;
    c->streaming = 1; c->sent = 0;
    c->due = now_ns() + interval_ns;
    enqueue(c);
}

static void upstream_send_token(conn *c) {
    char num[32];
    int64_t t = now_ns();
    size_t n = (size_t)snprintf(num, sizeof num, "%lld", (long long)t);
    const char *parts[] = {tok_prefix, num, tok_suffix};
    const size_t lens[] = {tok_prefix_len, n, tok_suffix_len};
    send_chunk(c, parts, lens, 3);
    if (c->role == FREE) return;
    if (++c->sent < tokens_per_stream) {
        c->due += interval_ns;
        enqueue(c);
        return;
    }
    const char *tparts[] = {tail};
    const size_t tlens[] = {tail_len};
    send_chunk(c, tparts, tlens, 1);
    send_bytes(c, "0\r\n\r\n", 5);
    c->streaming = 0;
    if (c->role != FREE && c->inlen) upstream_try_start(c);
}

/* --- client side --- */
static void client_finish(conn *c) {
    c->finished = 1;
    if (c->tokens == tokens_per_stream) completed++;
    else failed_count++;
    close_conn(c);
}

static void client_line(conn *c, int64_t t) {
    char *line = c->line; size_t len = c->linelen;
    c->lastlen = len < sizeof c->last ? len : sizeof c->last;
    memcpy(c->last, line, c->lastlen);
    if (len < 6 || memcmp(line, "data:", 5) != 0) return;
    if (memmem(line, len, "[DONE]", 6)) { client_finish(c); return; }
    char *p = memmem(line, len, "\"content\":", 10);
    if (!p) return;
    p += 10;
    while (p < line + len && (*p == ' ' || *p == '"')) p++;
    char *digits = p;
    int64_t sent = 0;
    while (p < line + len && *p >= '0' && *p <= '9') sent = sent * 10 + (*p++ - '0');
    if (p == digits || p >= line + len || *p != ' ') return;
    push(&delays, &ndelays, &cap_delays, (t - sent) / 1000);
    if (c->tokens) push(&gaps, &ngaps, &cap_gaps, (t - c->last_ns) / 1000);
    else { c->first_ns = t; push(&ttfts, &nttfts, &cap_ttfts, (t - c->sent_ns) / 1000); }
    c->last_ns = t;
    c->tokens++;
}

static void client_body_bytes(conn *c, const char *buf, size_t len, int64_t t) {
    for (size_t i = 0; i < len && c->role == CLIENT; i++) {
        char ch = buf[i];
        if (ch == '\n') {
            if (c->linelen && c->line[c->linelen - 1] == '\r') c->linelen--;
            client_line(c, t);
            c->linelen = 0;
        } else if (c->linelen < LINE_CAP) {
            c->line[c->linelen++] = ch;
        }
    }
}

static void client_read(conn *c, const char *buf, size_t len, int64_t t) {
    if (c->state == HEADERS) {
        append_in(c, buf, len);
        char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
        if (!end) return;
        *end = 0;
        c->status = atoi(c->in + 9);
        for (char *p = c->in; *p; p++) *p = (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
        c->chunked = strstr(c->in, "transfer-encoding: chunked") != NULL;
        size_t head = (size_t)(end - c->in) + 4;
        if (c->status != 200) { close_conn(c); return; }
        c->state = c->chunked ? CHUNK_SIZE : BODY;
        size_t rest = c->inlen - head;
        char tmp[65536];
        if (rest > sizeof tmp) rest = sizeof tmp;
        memcpy(tmp, c->in + head, rest);
        c->inlen = 0;
        if (rest) client_read(c, tmp, rest, t);
        return;
    }
    if (c->state == BODY) { client_body_bytes(c, buf, len, t); return; }
    size_t i = 0;
    while (i < len && c->role == CLIENT) {
        if (c->state == CHUNK_SIZE) {
            char ch = buf[i++];
            if (ch == '\n') {
                c->csize[c->csizelen] = 0;
                c->chunk_left = strtol(c->csize, NULL, 16);
                c->csizelen = 0;
                if (c->chunk_left == 0) { if (!c->finished) close_conn(c); return; }
                c->state = CHUNK_DATA;
            } else if (c->csizelen < sizeof c->csize - 1) {
                c->csize[c->csizelen++] = ch;
            }
        } else if (c->state == CHUNK_DATA) {
            size_t take = len - i < (size_t)c->chunk_left ? len - i : (size_t)c->chunk_left;
            client_body_bytes(c, buf + i, take, t);
            i += take; c->chunk_left -= (long)take;
            if (c->chunk_left == 0) c->state = CHUNK_CRLF;
        } else { /* CHUNK_CRLF */
            if (buf[i++] == '\n') c->state = CHUNK_SIZE;
        }
    }
}

static struct sockaddr_in target;

static void client_start(int idx) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) { failed_connect++; return; }
    conn *c = add_conn(fd, CLIENT);
    if (!c) { failed_connect++; return; }
    clients_open++;
    c->idx = idx;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
    c->state = HEADERS;
    c->sent_ns = now_ns();
    if (connect(fd, (struct sockaddr *)&target, sizeof target) < 0 && errno != EINPROGRESS) {
        c->finished = 1; failed_connect++; close_conn(c);
        return;
    }
    c->outlen = 0;
    if (c->outcap < request_len) { c->outcap = request_len; c->out = realloc(c->out, c->outcap); }
    memcpy(c->out, request, request_len);
    c->outlen = request_len;
}

/* --- main loop --- */
static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) die(path);
    fseek(f, 0, SEEK_END); *len = (size_t)ftell(f); fseek(f, 0, SEEK_SET);
    char *buf = malloc(*len + 1);
    if (fread(buf, 1, *len, f) != *len) die("read fixture");
    fclose(f);
    buf[*len] = 0;
    return buf;
}

static int cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void print_pct(const char *name, int64_t *v, size_t n, double offset_ms, int comma) {
    printf("\"%s\":{", name);
    if (n) {
        qsort(v, n, sizeof *v, cmp64);
        const double qs[] = {0.5, 0.9, 0.99, 0.999, 1.0};
        const char *names[] = {"p50", "p90", "p99", "p999", "max"};
        for (int i = 0; i < 5; i++) {
            size_t k = (size_t)(qs[i] * (double)n);
            if (k >= n) k = n - 1;
            printf("%s\"%s\":%.3f", i ? "," : "", names[i], (double)v[k] / 1000.0 - offset_ms);
        }
    }
    printf("}%s", comma ? "," : "");
}

int main(int argc, char **argv) {
    int listen_port = 0, connect_port = 0, streams = 0;
    double interval_ms = 50, ramp_s = 1, timeout_s = 0;
    const char *fixture = NULL;
    tokens_per_stream = 200;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--listen")) listen_port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--connect")) connect_port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--streams")) streams = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--tokens")) tokens_per_stream = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--interval-ms")) interval_ms = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--ramp-s")) ramp_s = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--timeout-s")) timeout_s = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--fixture")) fixture = argv[i + 1];
    }
    if (!listen_port || !connect_port || !fixture) {
        fprintf(stderr, "usage: slowload --listen PORT --connect PORT --fixture FILE [--streams N "
                        "--tokens N --interval-ms MS --ramp-s S --timeout-s S]\n");
        return 2;
    }
    interval_ns = (int64_t)(interval_ms * 1e6);
    if (timeout_s <= 0) timeout_s = ramp_s + tokens_per_stream * interval_ms / 1000.0 * 2 + 30;

    size_t flen; char *f = read_file(fixture, &flen);
    request = f; request_len = strlen(request);
    tok_prefix = request + request_len + 1; tok_prefix_len = strlen(tok_prefix);
    tok_suffix = tok_prefix + tok_prefix_len + 1; tok_suffix_len = strlen(tok_suffix);
    tail = tok_suffix + tok_suffix_len + 1; tail_len = strlen(tail);

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max < MAX_FD ? rl.rlim_max : MAX_FD;
    setrlimit(RLIMIT_NOFILE, &rl);

    ep = epoll_create1(0);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)listen_port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
    if (listen(lfd, 4096) < 0) die("listen");
    conns[lfd].role = LISTENER; conns[lfd].fd = lfd;
    struct epoll_event lev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct epoll_event tev = {.events = EPOLLIN, .data.fd = tfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);
    conns[tfd].role = LISTENER; conns[tfd].fd = tfd;

    target.sin_family = AF_INET;
    target.sin_port = htons((uint16_t)connect_port);
    target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    printf("{\"listening\":%d}\n", listen_port);
    fflush(stdout);

    /* streams == 0: serve as upstream only, until killed */
    int64_t start = now_ns(), deadline = start + (int64_t)(timeout_s * 1e9);
    int started = 0;
    int64_t armed = -1;
    struct epoll_event events[1024];
    char buf[65536];
    while (1) {
        int64_t t = now_ns();
        while (started < streams && start + (int64_t)(ramp_s * 1e9 * started / streams) <= t)
            client_start(started++);
        while (qhead < qtail) {
            qent e = queue[qhead % qcap];
            conn *c = &conns[e.fd];
            if (c->gen != e.gen || c->role != UPSTREAM) { qhead++; continue; }
            if (c->due > t) break;
            qhead++;
            upstream_send_token(c);
        }
        if (streams && started == streams && clients_open == 0) break;
        if (streams && t > deadline) break;
        int64_t next = INT64_MAX;
        if (started < streams) next = start + (int64_t)(ramp_s * 1e9 * started / streams);
        for (size_t q = qhead; q < qtail; q++) {
            qent e = queue[q % qcap];
            if (conns[e.fd].gen == e.gen && conns[e.fd].role == UPSTREAM) {
                if (conns[e.fd].due < next) next = conns[e.fd].due;
                break;
            }
        }
        if (next != INT64_MAX && next != armed) {
            struct itimerspec its = {0};
            its.it_value.tv_sec = next / 1000000000LL;
            its.it_value.tv_nsec = next % 1000000000LL;
            timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
            armed = next;
        }
        int n = epoll_wait(ep, events, 1024, 100);
        t = now_ns();
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            conn *c = &conns[fd];
            if (fd == tfd) { uint64_t x; if (read(tfd, &x, sizeof x) < 0) {} armed = -1; continue; }
            if (fd == lfd) {
                int cfd;
                while ((cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) add_conn(cfd, UPSTREAM);
                continue;
            }
            if (c->role == FREE) continue;
            if (events[i].events & EPOLLOUT) {
                if (c->outlen) flush_out(c);
                if (c->role == FREE) continue;
            }
            if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                while (c->role != FREE) {
                    ssize_t r = read(fd, buf, sizeof buf);
                    if (r > 0) {
                        if (c->role == UPSTREAM) { append_in(c, buf, (size_t)r); upstream_try_start(c); }
                        else client_read(c, buf, (size_t)r, t);
                        if ((size_t)r < sizeof buf) break;
                    } else if (r == 0 || errno != EAGAIN) {
                        close_conn(c);
                    } else break;
                }
            }
        }
    }
    for (int fd = 0; fd < MAX_FD; fd++)
        if (conns[fd].role == CLIENT) { conns[fd].finished = 1; failed_timeout++; close_conn(&conns[fd]); }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    printf("{\"streams\":%d,\"completed\":%d,\"all_completed\":%s,", streams, completed,
           completed == streams ? "true" : "false");
    printf("\"failures\":{");
    int first = 1;
#define FAIL(name, n) if (n) { printf("%s\"%s\":%d", first ? "" : ",", name, n); first = 0; }
    FAIL("status not 200", failed_status)
    FAIL("connection closed before [DONE]", failed_closed)
    FAIL("connect failed", failed_connect)
    FAIL("wrong number of tokens", failed_count)
    FAIL("timeout", failed_timeout)
    printf("},\"failure_sample\":\"");
    for (char *p = failure_sample; *p; p++) {
        if (*p == '"' || *p == '\\') putchar('\\');
        if ((unsigned char)*p >= 32) putchar(*p);
    }
    printf("\",\"tokens_per_stream\":%d,\"interval_ms\":%.3f,\"wall_s\":%.2f,", tokens_per_stream,
           interval_ms, (now_ns() - start) / 1e9);
    print_pct("added_gap_ms", gaps, ngaps, interval_ms, 1);
    print_pct("delay_ms", delays, ndelays, 0, 1);
    print_pct("ttft_ms", ttfts, nttfts, 0, 1);
    printf("\"gaps_measured\":%zu,\"load_cpu_s\":%.2f}\n", ngaps, cpu);
    return 0;
}
