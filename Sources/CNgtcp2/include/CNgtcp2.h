#ifndef AH_CNGTCP2_H
#define AH_CNGTCP2_H

// Everything Swift needs from ngtcp2 0.12, its GnuTLS crypto helper and GnuTLS.
// ngtcp2's public entry points that carry struct versions are C macros; Swift cannot
// import function-like macros, so each one used by AHQUIC gets a plain function here.

#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <gnutls/crypto.h>
#include <gnutls/abstract.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/socket.h>
#include <netinet/in.h>

int ah_ngtcp2_conn_client_new(ngtcp2_conn **pconn, const ngtcp2_cid *dcid,
                              const ngtcp2_cid *scid, const ngtcp2_path *path,
                              uint32_t client_chosen_version,
                              const ngtcp2_callbacks *callbacks,
                              const ngtcp2_settings *settings,
                              const ngtcp2_transport_params *params,
                              void *user_data);

int ah_ngtcp2_conn_server_new(ngtcp2_conn **pconn, const ngtcp2_cid *dcid,
                              const ngtcp2_cid *scid, const ngtcp2_path *path,
                              uint32_t client_chosen_version,
                              const ngtcp2_callbacks *callbacks,
                              const ngtcp2_settings *settings,
                              const ngtcp2_transport_params *params,
                              void *user_data);

int ah_ngtcp2_conn_read_pkt(ngtcp2_conn *conn, const ngtcp2_path *path,
                            const uint8_t *pkt, size_t pktlen, uint8_t ecn,
                            ngtcp2_tstamp ts);

/// Writes one packet carrying (optionally) data from one stream.
/// `stream_id` -1 writes control frames only.
ngtcp2_ssize ah_ngtcp2_conn_writev_stream(ngtcp2_conn *conn, ngtcp2_path *path,
                                          uint8_t *dest, size_t destlen,
                                          ngtcp2_ssize *pdatalen, uint32_t flags,
                                          int64_t stream_id, const ngtcp2_vec *datav,
                                          size_t datavcnt, ngtcp2_tstamp ts);

ngtcp2_ssize ah_ngtcp2_conn_write_connection_close(ngtcp2_conn *conn, ngtcp2_path *path,
                                                   uint8_t *dest, size_t destlen,
                                                   const ngtcp2_connection_close_error *ccerr,
                                                   ngtcp2_tstamp ts);

void ah_ngtcp2_settings_default(ngtcp2_settings *settings);
void ah_ngtcp2_transport_params_default(ngtcp2_transport_params *params);
void ah_ngtcp2_conn_get_conn_stat(ngtcp2_conn *conn, ngtcp2_conn_stat *cstat);

/// CLOCK_MONOTONIC in nanoseconds, the time base ngtcp2 expects.
ngtcp2_tstamp ah_monotonic_ns(void);

/// The callbacks table with every crypto-helper callback filled in; AHQUIC adds its own.
void ah_ngtcp2_callbacks_crypto_defaults(ngtcp2_callbacks *cb, int is_server);

/// `struct sockaddr_storage` is opaque enough in Swift that copying is easier here.
void ah_ngtcp2_addr_set(ngtcp2_addr *addr, struct sockaddr_storage *storage,
                        const struct sockaddr *sa, socklen_t len);

#endif

/// Creates and configures a GnuTLS session for QUIC: TLS 1.3 only, the given ALPNs
/// (one must match), our credentials, client certificate required on servers unless
/// `client_cert_optional` (then requested; the caller enforces per ALPN), the
/// verify callback, and ngtcp2's crypto helper hooks. `conn_ref` becomes the session
/// pointer (ngtcp2's helper expects a `ngtcp2_crypto_conn_ref *` there).
/// Returns 0 or a negative GnuTLS error; on error nothing is left allocated.
/// The TLS 1.3-only priority cache every QUIC session uses (share it; free with
/// gnutls_priority_deinit).
int ah_tls_priority_new(gnutls_priority_t *out);

int ah_tls_session_new(gnutls_session_t *out, int is_server,
                       gnutls_priority_t priority,
                       gnutls_certificate_credentials_t cred,
                       const gnutls_datum_t *alpns, unsigned alpn_count,
                       int client_cert_optional,
                       const char *server_name,
                       ngtcp2_crypto_conn_ref *conn_ref,
                       gnutls_certificate_verify_function *verify);

/// The ALPN the handshake selected, or 0 length.
size_t ah_tls_selected_alpn(gnutls_session_t session, uint8_t *dest, size_t destlen);

/// `gnutls_free` is a macro around a function pointer variable.
void ah_gnutls_free(void *p);

/// SHA-256 over the DER SubjectPublicKeyInfo of a DER certificate. Returns 0 on success.
int ah_x509_spki_sha256(const gnutls_datum_t *der, uint8_t out[32]);

/// SHA-256 of arbitrary bytes (certificate pins).
int ah_sha256(const void *data, size_t len, uint8_t out[32]);

/// Verifies `chain` (leaf first, `count` DER certificates) against the single CA `ca_der`.
/// Sets *status to GnuTLS verification flags (0 = trusted). Returns 0 or a GnuTLS error.
int ah_x509_verify_with_ca(const gnutls_datum_t *chain, unsigned count,
                           const gnutls_datum_t *ca_der, unsigned *status);

/// Expiry and serial number (big-endian bytes, up to 20) of a DER certificate.
int ah_x509_expiry_and_serial(const gnutls_datum_t *der, int64_t *not_after,
                              uint8_t *serial, size_t *serial_len);
