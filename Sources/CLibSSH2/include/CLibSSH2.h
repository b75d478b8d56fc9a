// libssh2 1.10 (Debian libssh2-1-dev) for Swift: the function-like macros Swift cannot import
// as plain functions, and (shim.c) socket callbacks that note when the server last sent
// anything (the keepalive's liveness check) and never raise SIGPIPE.
#ifndef AH_CLIBSSH2_SHIM_H
#define AH_CLIBSSH2_SHIM_H

#include <libssh2.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/types.h>

/// Per-session state the socket callbacks update, passed to libssh2 as the session's
/// `abstract` pointer. Owned by the Swift type that owns the session (freed after it).
typedef struct ah_ssh2_io {
    /// CLOCK_MONOTONIC nanoseconds of the last recv(2) that returned bytes; 0 = none yet.
    int64_t last_receive_ns;
} ah_ssh2_io;

/// A session whose socket I/O goes through shim.c's callbacks (recv notes the time bytes
/// arrived in `io`; send never raises SIGPIPE), with `io` as their state. In a .c file, not
/// inline here: Swift's importer does not emit inline functions that are only referenced
/// by address, which left the callbacks null.
LIBSSH2_SESSION *ah_ssh2_session_new(ah_ssh2_io *io);

static inline LIBSSH2_CHANNEL *ah_ssh2_channel_open_session(LIBSSH2_SESSION *session) {
    return libssh2_channel_open_ex(session, "session", sizeof("session") - 1,
                                   LIBSSH2_CHANNEL_WINDOW_DEFAULT, LIBSSH2_CHANNEL_PACKET_DEFAULT, NULL, 0);
}

static inline int ah_ssh2_channel_exec(LIBSSH2_CHANNEL *channel, const char *command) {
    return libssh2_channel_process_startup(channel, "exec", sizeof("exec") - 1,
                                           command, (unsigned int)strlen(command));
}

static inline int ah_ssh2_session_disconnect(LIBSSH2_SESSION *session, const char *reason) {
    return libssh2_session_disconnect_ex(session, SSH_DISCONNECT_BY_APPLICATION, reason, "");
}

/// poll(2)'s "peer closed its side" bit (Linux; glibc hides POLLRDHUP without _GNU_SOURCE).
#ifdef __linux__
static const short ah_ssh2_pollrdhup = 0x2000;
#else
static const short ah_ssh2_pollrdhup = 0;
#endif

/// The largest read/write chunk: one SSH packet's payload.
static const int ah_ssh2_packet_size = LIBSSH2_CHANNEL_PACKET_DEFAULT;

#endif
