#include "CNgtcp2.h"
#include <string.h>

// TLS 1.3 only, no middlebox compatibility mode (QUIC forbids it).
static const char *kPriority =
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:%DISABLE_TLS13_COMPAT_MODE";

int ah_tls_priority_new(gnutls_priority_t *out) {
  return gnutls_priority_init(out, kPriority, NULL);
}

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

size_t ah_tls_selected_alpn(gnutls_session_t session, uint8_t *dest, size_t destlen) {
  gnutls_datum_t proto;
  if (gnutls_alpn_get_selected_protocol(session, &proto) != 0) return 0;
  size_t n = proto.size < destlen ? proto.size : destlen;
  memcpy(dest, proto.data, n);
  return n;
}

void ah_gnutls_free(void *p) { gnutls_free(p); }

int ah_sha256(const void *data, size_t len, uint8_t out[32]) {
  return gnutls_hash_fast(GNUTLS_DIG_SHA256, data, len, out);
}

int ah_x509_spki_sha256(const gnutls_datum_t *der, uint8_t out[32]) {
  gnutls_x509_crt_t crt;
  gnutls_pubkey_t pub;
  gnutls_datum_t spki = {NULL, 0};
  int rv = gnutls_x509_crt_init(&crt);
  if (rv < 0) return rv;
  if ((rv = gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER)) < 0) goto done_crt;
  if ((rv = gnutls_pubkey_init(&pub)) < 0) goto done_crt;
  if ((rv = gnutls_pubkey_import_x509(pub, crt, 0)) < 0) goto done_pub;
  if ((rv = gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &spki)) < 0) goto done_pub;
  rv = gnutls_hash_fast(GNUTLS_DIG_SHA256, spki.data, spki.size, out);
  gnutls_free(spki.data);
done_pub:
  gnutls_pubkey_deinit(pub);
done_crt:
  gnutls_x509_crt_deinit(crt);
  return rv;
}

int ah_x509_verify_with_ca(const gnutls_datum_t *chain, unsigned count,
                           const gnutls_datum_t *ca_der, unsigned *status) {
  gnutls_x509_trust_list_t list;
  gnutls_x509_crt_t ca = NULL;
  gnutls_x509_crt_t certs[16];
  unsigned imported = 0;
  int rv;
  if (count == 0 || count > 16) return GNUTLS_E_INVALID_REQUEST;
  if ((rv = gnutls_x509_trust_list_init(&list, 0)) < 0) return rv;
  if ((rv = gnutls_x509_crt_init(&ca)) < 0) goto done;
  if ((rv = gnutls_x509_crt_import(ca, ca_der, GNUTLS_X509_FMT_DER)) < 0) { gnutls_x509_crt_deinit(ca); goto done; }
  // The trust list takes ownership of `ca`.
  if ((rv = gnutls_x509_trust_list_add_cas(list, &ca, 1, 0)) < 0) { gnutls_x509_crt_deinit(ca); goto done; }
  for (; imported < count; imported++) {
    if ((rv = gnutls_x509_crt_init(&certs[imported])) < 0) goto done;
    if ((rv = gnutls_x509_crt_import(certs[imported], &chain[imported], GNUTLS_X509_FMT_DER)) < 0) {
      imported++;
      goto done;
    }
  }
  rv = gnutls_x509_trust_list_verify_crt(list, certs, count, 0, status, NULL);
done:
  for (unsigned i = 0; i < imported; i++) gnutls_x509_crt_deinit(certs[i]);
  gnutls_x509_trust_list_deinit(list, 1);
  return rv;
}

int ah_x509_expiry_and_serial(const gnutls_datum_t *der, int64_t *not_after,
                              uint8_t *serial, size_t *serial_len) {
  gnutls_x509_crt_t crt;
  int rv = gnutls_x509_crt_init(&crt);
  if (rv < 0) return rv;
  if ((rv = gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER)) >= 0) {
    *not_after = (int64_t)gnutls_x509_crt_get_expiration_time(crt);
    rv = gnutls_x509_crt_get_serial(crt, serial, serial_len);
  }
  gnutls_x509_crt_deinit(crt);
  return rv;
}
