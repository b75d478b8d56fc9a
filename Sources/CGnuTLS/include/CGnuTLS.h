#ifndef AH_CGNUTLS_H
#define AH_CGNUTLS_H

// The one C shim over GnuTLS, shared by QUIC (AHQUIC, through ngtcp2's GnuTLS crypto
// helper; CNgtcp2 includes this header instead of GnuTLS's) and TLS over TCP (AHTLS).
// It holds what is awkward from Swift: `gnutls_free` (a macro around a function pointer),
// credential loading that names the input a failure is about, X.509 helpers for peer
// checks, and stream-session set-up on a memory transport. Swift owns every object
// created here through one type each (see AHGnuTLS and docs/architecture.md).

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <gnutls/crypto.h>
#include <gnutls/abstract.h>
#include <stddef.h>
#include <stdint.h>

/// `gnutls_free` is a macro around a function pointer variable.
void ah_gnutls_free(void *p);

// MARK: credentials

/// Which input a credential-loading failure is about.
typedef enum {
  AH_GNUTLS_INPUT_NONE = 0,
  AH_GNUTLS_INPUT_CERTIFICATE = 1,
  AH_GNUTLS_INPUT_KEY = 2,
  AH_GNUTLS_INPUT_PAIR = 3,  // both parse, but they do not belong together
} ah_gnutls_input_t;

/// Adds a PEM certificate chain (leaf first, then any intermediates) and its PEM private
/// key to `cred`. Each is parsed on its own first, so that a failure names its input in
/// `*which`. Returns 0 or a negative GnuTLS error. The buffers are only read.
int ah_gnutls_credentials_set_key_pair(gnutls_certificate_credentials_t cred,
                                       const gnutls_datum_t *chain, const gnutls_datum_t *key,
                                       ah_gnutls_input_t *which);

/// `ah_gnutls_credentials_set_key_pair` with both inputs read from files (a file that
/// cannot be read is reported as that input). The key's buffer is wiped before it is freed.
int ah_gnutls_credentials_set_key_pair_files(gnutls_certificate_credentials_t cred,
                                             const char *chain_file, const char *key_file,
                                             ah_gnutls_input_t *which);

// MARK: X.509 helpers for peer checks

/// SHA-256 of arbitrary bytes (certificate pins).
int ah_sha256(const void *data, size_t len, uint8_t out[32]);

/// SHA-256 over the DER SubjectPublicKeyInfo of a DER certificate. Returns 0 on success.
int ah_x509_spki_sha256(const gnutls_datum_t *der, uint8_t out[32]);

/// Verifies `chain` (leaf first, `count` DER certificates) against the single CA `ca_der`.
/// Sets *status to GnuTLS verification flags (0 = trusted). Returns 0 or a GnuTLS error.
int ah_x509_verify_with_ca(const gnutls_datum_t *chain, unsigned count,
                           const gnutls_datum_t *ca_der, unsigned *status);

/// Expiry and serial number (big-endian bytes, up to 20) of a DER certificate.
int ah_x509_expiry_and_serial(const gnutls_datum_t *der, int64_t *not_after,
                              uint8_t *serial, size_t *serial_len);

// MARK: stream sessions (TLS over TCP)

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

/// Whether `name` is an IPv4 or IPv6 literal.
int ah_stream_tls_is_ip_literal(const char *name);

#endif
