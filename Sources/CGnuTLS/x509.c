// X.509 helpers for peer checks (certificate pins, key hashes, verification against one CA).
// See include/CGnuTLS.h for the contracts.

#include "CGnuTLS.h"

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
