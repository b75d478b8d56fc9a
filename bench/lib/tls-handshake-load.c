/*
 * tls-handshake-load — full TLS 1.3 mutual-auth handshakes per second against a TCP server
 * (bench/enroll runs it against gnutls-serv --echo). Built by bench/enroll with
 *
 *     gcc -O2 -pthread tls-handshake-load.c -o tls-handshake-load $(pkg-config --cflags --libs gnutls)
 *
 * usage: tls-handshake-load HOST PORT CA.pem CERT.pem KEY.pem HANDSHAKES CONCURRENCY [PRIORITY]
 *
 * CONCURRENCY threads share one certificate credential (loaded once, like a QUIC endpoint's
 * credentials) and take handshakes from a common counter until HANDSHAKES are done. One
 * handshake: TCP connect (TCP_NODELAY), a fresh GnuTLS session (GNUTLS_NO_TICKETS, no
 * session data set, so never resumed), TLS 1.3 handshake presenting our client certificate
 * and verifying the server's chain against CA.pem, then one byte out and its echo back —
 * the echo is the proof that the server accepted our certificate and Finished, like QUIC's
 * HANDSHAKE_DONE that ends our side's handshake — then close_notify and close.
 *
 * Prints one JSON document: handshakes (successful), failures, seconds (to the last
 * successful handshake), wallSeconds, handshakesPerSecond (= handshakes / seconds),
 * medianMilliseconds, p99Milliseconds, clientCPUSeconds, firstError. Exit 0 when every
 * handshake succeeded, 1 otherwise, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *host, *priority = "NORMAL:-VERS-ALL:+VERS-TLS1.3";
static struct sockaddr_in server;
static gnutls_certificate_credentials_t credentials;
static long total;
static atomic_long next_index, failures;
static double *latencies; /* seconds per handshake, by index; < 0 for a failure */
static pthread_mutex_t error_lock = PTHREAD_MUTEX_INITIALIZER;
static char first_error[256];
static double start_time, last_success; /* seconds; last_success relative to start_time */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void record_error(const char *what, const char *detail) {
    pthread_mutex_lock(&error_lock);
    if (!first_error[0]) snprintf(first_error, sizeof first_error, "%s: %s", what, detail);
    pthread_mutex_unlock(&error_lock);
}

/* One full handshake; returns 0 on success. */
static int handshake_once(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), rc = -1, ret;
    gnutls_session_t session = NULL;
    if (fd < 0) { record_error("socket", strerror(errno)); return -1; }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {10, 0};  /* no step may hang: 10 s per read or write */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&server, sizeof server) != 0) {
        record_error("connect", strerror(errno));
        goto done;
    }
    if ((ret = gnutls_init(&session, GNUTLS_CLIENT | GNUTLS_NO_TICKETS)) < 0) { record_error("gnutls_init", gnutls_strerror(ret)); goto done; }
    const char *err = NULL;
    if ((ret = gnutls_priority_set_direct(session, priority, &err)) < 0) { record_error("priority", gnutls_strerror(ret)); goto done; }
    gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, credentials);
    gnutls_server_name_set(session, GNUTLS_NAME_DNS, "localhost", strlen("localhost"));
    gnutls_session_set_verify_cert(session, "localhost", 0);  /* chain against CA.pem + name */
    gnutls_transport_set_int(session, fd);
    gnutls_handshake_set_timeout(session, 10000);
    do {
        ret = gnutls_handshake(session);
    } while (ret < 0 && gnutls_error_is_fatal(ret) == 0);
    if (ret < 0) { record_error("handshake", gnutls_strerror(ret)); goto done; }
    if (gnutls_protocol_get_version(session) != GNUTLS_TLS1_3) { record_error("handshake", "not TLS 1.3"); goto done; }
    /* One byte out, its echo back: the server has verified our certificate and Finished. */
    do {
        ret = gnutls_record_send(session, "x\n", 2);
    } while (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED);
    if (ret != 2) { record_error("send", ret < 0 ? gnutls_strerror(ret) : "short write"); goto done; }
    char echo[64];
    do {
        ret = gnutls_record_recv(session, echo, sizeof echo);
    } while (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED);
    if (ret <= 0) { record_error("echo", ret < 0 ? gnutls_strerror(ret) : "server closed the connection"); goto done; }
    gnutls_bye(session, GNUTLS_SHUT_WR);  /* close_notify, like QUIC's CONNECTION_CLOSE; not waited for */
    rc = 0;
done:
    if (session) gnutls_deinit(session);
    close(fd);
    return rc;
}

static void *worker(void *unused) {
    (void)unused;
    for (;;) {
        long index = atomic_fetch_add(&next_index, 1);
        if (index >= total) return NULL;
        double t0 = now();
        if (handshake_once() == 0) {
            double t1 = now();
            latencies[index] = t1 - t0;
            pthread_mutex_lock(&error_lock);
            if (t1 - start_time > last_success) last_success = t1 - start_time;
            pthread_mutex_unlock(&error_lock);
        } else {
            latencies[index] = -1;
            atomic_fetch_add(&failures, 1);
        }
    }
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 8 || argc > 9) {
        fprintf(stderr, "usage: %s HOST PORT CA.pem CERT.pem KEY.pem HANDSHAKES CONCURRENCY [PRIORITY]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);  /* a refused peer closes first: report it, do not die */
    host = argv[1];
    int port = atoi(argv[2]);
    total = atol(argv[6]);
    int width = atoi(argv[7]);
    if (argc == 9) priority = argv[8];
    if (port <= 0 || port > 65535 || total <= 0 || width <= 0 || width > 4096) {
        fprintf(stderr, "error: bad PORT, HANDSHAKES or CONCURRENCY\n");
        return 2;
    }
    memset(&server, 0, sizeof server);
    server.sin_family = AF_INET;
    server.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &server.sin_addr) != 1) {
        fprintf(stderr, "error: HOST '%s' is not an IPv4 address\n", host);
        return 2;
    }
    int ret;
    if ((ret = gnutls_global_init()) < 0 ||
        (ret = gnutls_certificate_allocate_credentials(&credentials)) < 0) {
        fprintf(stderr, "error: %s\n", gnutls_strerror(ret));
        return 2;
    }
    if ((ret = gnutls_certificate_set_x509_trust_file(credentials, argv[3], GNUTLS_X509_FMT_PEM)) <= 0) {
        fprintf(stderr, "error: no CA certificate in %s: %s\n", argv[3], ret < 0 ? gnutls_strerror(ret) : "empty");
        return 2;
    }
    if ((ret = gnutls_certificate_set_x509_key_file(credentials, argv[4], argv[5], GNUTLS_X509_FMT_PEM)) < 0) {
        fprintf(stderr, "error: loading %s / %s: %s\n", argv[4], argv[5], gnutls_strerror(ret));
        return 2;
    }
    latencies = calloc((size_t)total, sizeof *latencies);
    pthread_t *threads = calloc((size_t)width, sizeof *threads);
    if (!latencies || !threads) { fprintf(stderr, "error: out of memory\n"); return 2; }

    start_time = now();
    for (int i = 0; i < width; i++) pthread_create(&threads[i], NULL, worker, NULL);
    for (int i = 0; i < width; i++) pthread_join(threads[i], NULL);
    double wall = now() - start_time;
    /* The rate runs to the last successful handshake: a failed one (which can hold its thread
     * until a timeout) is counted and reported, not allowed to stretch the clock. */
    double seconds = last_success > 0 ? last_success : wall;

    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    double cpu = (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6 +
                 (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec / 1e6;
    long ok = 0;
    for (long i = 0; i < total; i++)
        if (latencies[i] >= 0) latencies[ok++] = latencies[i];
    qsort(latencies, (size_t)ok, sizeof *latencies, compare);
    double median = ok ? (ok % 2 ? latencies[ok / 2] : (latencies[ok / 2 - 1] + latencies[ok / 2]) / 2) : 0;
    long rank = ok ? (long)((double)ok * 0.99 + 0.999999) - 1 : 0;
    double p99 = ok ? latencies[rank < 0 ? 0 : (rank >= ok ? ok - 1 : rank)] : 0;
    for (char *c = first_error; *c; c++)
        if (*c == '"' || *c == '\\') *c = '\'';
    printf("{\"handshakes\": %ld, \"failures\": %ld, \"concurrency\": %d, \"seconds\": %.6f, \"wallSeconds\": %.6f, "
           "\"handshakesPerSecond\": %.3f, \"medianMilliseconds\": %.3f, \"p99Milliseconds\": %.3f, "
           "\"clientCPUSeconds\": %.3f, \"firstError\": \"%s\"}\n",
           ok, (long)atomic_load(&failures), width, seconds, wall, (double)ok / seconds, median * 1000, p99 * 1000,
           cpu, first_error);
    gnutls_certificate_free_credentials(credentials);
    gnutls_global_deinit();
    return atomic_load(&failures) == 0 ? 0 : 1;
}
