#ifndef AH_CGNUTLSSTREAM_H
#define AH_CGNUTLSSTREAM_H

// The C side of AHTLS (TLS over TCP on GnuTLS). Swift drives GnuTLS directly for the
// per-record calls; this shim holds what is awkward from Swift: session set-up (flag
// enums that clash with same-named macros, ALPN datums, the verification host name that
// must outlive the session), credential loading with `gnutls_free`d buffers (a macro),
// and turning verification status bits into text.

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stddef.h>
#include <stdint.h>

/// Which input a credential-loading failure is about.
typedef enum {
  AH_TLS_FILE_NONE = 0,
  AH_TLS_FILE_CERTIFICATE = 1,
  AH_TLS_FILE_KEY = 2,
  AH_TLS_FILE_PAIR = 3,  // both files parse, but they do not belong together
} ah_stream_tls_file_t;

/// Allocates server credentials from a PEM certificate chain (leaf first, then any
/// intermediates) and a PEM private key. On failure returns a negative GnuTLS error,
/// leaves `*out` NULL and sets `*which` to the file the error is about.
int ah_stream_tls_server_credentials_new(gnutls_certificate_credentials_t *out,
                                  const char *chain_file, const char *key_file,
                                  ah_stream_tls_file_t *which);

/// Allocates client credentials trusting the PEM CAs in `ca_file`, or the system trust
/// store when `ca_file` is NULL. Returns the number of trusted certificates loaded (> 0)
/// or a negative GnuTLS error (GNUTLS_E_NO_CERTIFICATE_FOUND when the file holds none).
int ah_stream_tls_client_credentials_new(gnutls_certificate_credentials_t *out, const char *ca_file);

/// Creates a non-blocking stream session on a memory transport.
/// - `transport` is passed back to `push`/`pull`/`pull_timeout`; the caller keeps it alive
///   until `ah_stream_tls_session_free`.
/// - `alpn` is a wire-format protocol list (each name prefixed by its 1-byte length), or
///   NULL/0 for no ALPN. It is copied.
/// - Client only: `server_name` (required) is sent as SNI unless it is an IP literal, and
///   the peer certificate is verified against it (DNS or IP SAN). A private copy is kept
///   for the session's lifetime (GnuTLS does not copy the verification name).
/// Certificate credentials and the priority cache are referenced, not copied: they must
/// outlive the session.
int ah_stream_tls_session_new(gnutls_session_t *out, int is_server,
                       gnutls_certificate_credentials_t credentials,
                       gnutls_priority_t priority,
                       const char *server_name,
                       const uint8_t *alpn, size_t alpn_len,
                       void *transport,
                       gnutls_push_func push, gnutls_pull_func pull,
                       gnutls_pull_timeout_func pull_timeout);

/// `gnutls_deinit` plus the private copy of the verification name. Call exactly once.
void ah_stream_tls_session_free(gnutls_session_t session);

/// Writes a human-readable reason for the last failed certificate verification into
/// `buf` (NUL-terminated, truncated to `len`).
void ah_stream_tls_verify_failure_reason(gnutls_session_t session, char *buf, size_t len);

/// The negotiated ALPN protocol copied into `buf` (NUL-terminated); 0 if none.
size_t ah_stream_tls_selected_alpn(gnutls_session_t session, char *buf, size_t len);

/// Whether `name` is an IPv4 or IPv6 literal.
int ah_stream_tls_is_ip_literal(const char *name);

#endif
