#include "CLibSSH2.h"

static int64_t ah_ssh2_monotonic_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + (int64_t)now.tv_nsec;
}

// Same contract as libssh2's own _libssh2_recv: bytes read, or -errno (-EAGAIN when empty).
static ssize_t ah_ssh2_recv(libssh2_socket_t fd, void *buffer, size_t length, int flags, void **abstract) {
    ssize_t received = recv(fd, buffer, length, flags);
    if (received < 0) {
        if (errno == EWOULDBLOCK) return -EAGAIN;
        return -errno;
    }
    if (received > 0 && abstract != NULL && *abstract != NULL) {
        ((ah_ssh2_io *)*abstract)->last_receive_ns = ah_ssh2_monotonic_ns();
    }
    return received;
}

// Like libssh2's _libssh2_send, but a peer that went away is an error, never a SIGPIPE.
static ssize_t ah_ssh2_send(libssh2_socket_t fd, const void *buffer, size_t length, int flags, void **abstract) {
    (void)abstract;
#ifdef MSG_NOSIGNAL
    flags |= MSG_NOSIGNAL;
#endif
    ssize_t sent = send(fd, buffer, length, flags);
    if (sent < 0) {
        if (errno == EWOULDBLOCK) return -EAGAIN;
        return -errno;
    }
    return sent;
}

LIBSSH2_SESSION *ah_ssh2_session_new(ah_ssh2_io *io) {
    LIBSSH2_SESSION *session = libssh2_session_init_ex(NULL, NULL, NULL, io);
    if (session == NULL) return NULL;
    libssh2_session_callback_set(session, LIBSSH2_CALLBACK_RECV, (void *)ah_ssh2_recv);
    libssh2_session_callback_set(session, LIBSSH2_CALLBACK_SEND, (void *)ah_ssh2_send);
    return session;
}
