#include "CNgtcp2.h"
#include <string.h>

// QUIC session set-up: ngtcp2-specific (its crypto helper configures the session), so it
// stays here; priorities, credentials and X.509 helpers are the shared CGnuTLS layer.

int ah_tls_session_new(gnutls_session_t *out, int is_server,
                       gnutls_priority_t priority,
                       gnutls_certificate_credentials_t cred,
                       const gnutls_datum_t *alpns, unsigned alpn_count,
                       int client_cert_optional,
                       const char *server_name,
                       ngtcp2_crypto_conn_ref *conn_ref,
                       gnutls_certificate_verify_function *verify) {
  gnutls_session_t s;
  unsigned int flags = GNUTLS_NO_END_OF_EARLY_DATA;
  flags |= is_server ? (GNUTLS_SERVER | GNUTLS_NO_AUTO_SEND_TICKET)
                     : (GNUTLS_CLIENT | GNUTLS_NO_TICKETS);
  int rv = gnutls_init(&s, flags);
  if (rv != 0) return rv;

  // One parsed priority cache per endpoint, shared (GnuTLS reference-counts it): parsing
  // it per session cost ~8 KiB for every connection an access point holds.
  if ((rv = gnutls_priority_set(s, priority)) != 0) goto fail;
  rv = is_server ? ngtcp2_crypto_gnutls_configure_server_session(s)
                 : ngtcp2_crypto_gnutls_configure_client_session(s);
  if (rv != 0) { rv = GNUTLS_E_INTERNAL_ERROR; goto fail; }
  gnutls_session_set_ptr(s, conn_ref);
  if ((rv = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred)) != 0) goto fail;

  if ((rv = gnutls_alpn_set_protocols(s, alpns, alpn_count, GNUTLS_ALPN_MANDATORY)) != 0) goto fail;

  if (is_server) {
    // Mutual TLS: a client without a certificate fails the handshake.
    gnutls_certificate_server_set_request(s, client_cert_optional ? GNUTLS_CERT_REQUEST : GNUTLS_CERT_REQUIRE);
    // Do not list acceptable CAs in the CertificateRequest: clients then present whatever
    // certificate they hold, so a refusal can name the identity that was presented
    // (a forged or foreign certificate is still refused by chain verification).
    gnutls_certificate_send_x509_rdn_sequence(s, 1);
  } else if (server_name && server_name[0]) {
    if ((rv = gnutls_server_name_set(s, GNUTLS_NAME_DNS, server_name, strlen(server_name))) != 0) goto fail;
  }
  gnutls_session_set_verify_function(s, verify);
  *out = s;
  return 0;
fail:
  gnutls_deinit(s);
  return rv;
}
