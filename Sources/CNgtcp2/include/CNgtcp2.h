#ifndef AH_CNGTCP2_H
#define AH_CNGTCP2_H

// Everything Swift needs from ngtcp2 0.12 and its GnuTLS crypto helper.
// ngtcp2's public entry points that carry struct versions are C macros; Swift cannot
// import function-like macros, so each one used by AHQUIC gets a plain function here.
// GnuTLS itself comes from the shared CGnuTLS shim (included first, so its headers belong
// to that one module and the crypto helper's own include of them is a no-op).

#include <CGnuTLS.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>
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

/// Creates and configures a GnuTLS session for QUIC: the given priority cache (TLS 1.3
/// only; referenced, GnuTLS counts the reference), the given ALPNs (one must match), our
/// credentials, client certificate required on servers unless `client_cert_optional` (then
/// requested; the caller enforces per ALPN), the verify callback, and ngtcp2's crypto
/// helper hooks. `conn_ref` becomes the session pointer (ngtcp2's helper expects a
/// `ngtcp2_crypto_conn_ref *` there).
/// Returns 0 or a negative GnuTLS error; on error nothing is left allocated.
int ah_tls_session_new(gnutls_session_t *out, int is_server,
                       gnutls_priority_t priority,
                       gnutls_certificate_credentials_t cred,
                       const gnutls_datum_t *alpns, unsigned alpn_count,
                       int client_cert_optional,
                       const char *server_name,
                       ngtcp2_crypto_conn_ref *conn_ref,
                       gnutls_certificate_verify_function *verify);

#endif
