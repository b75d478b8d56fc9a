// Certificate and key loading that names the input a failure is about. See
// include/CGnuTLS.h for the contracts.

#include "CGnuTLS.h"

void ah_gnutls_free(void *p) { gnutls_free(p); }

// Releases a buffer from gnutls_load_file, wiping it first when it held a private key.
static void release_datum(gnutls_datum_t *d, int secret) {
  if (d->data == NULL) return;
  if (secret) gnutls_memset(d->data, 0, d->size);
  gnutls_free(d->data);
  d->data = NULL;
  d->size = 0;
}

int ah_gnutls_credentials_set_key_pair(gnutls_certificate_credentials_t cred,
                                       const gnutls_datum_t *chain, const gnutls_datum_t *key,
                                       ah_gnutls_input_t *which) {
  gnutls_x509_crt_t *certs = NULL;
  unsigned ncerts = 0;
  gnutls_x509_privkey_t pk = NULL;
  int rv;

  *which = AH_GNUTLS_INPUT_NONE;
  // Parse each input on its own first, so a failure names the input it is about.
  rv = gnutls_x509_crt_list_import2(&certs, &ncerts, chain, GNUTLS_X509_FMT_PEM, 0);
  if (rv >= 0) {
    for (unsigned i = 0; i < ncerts; i++) gnutls_x509_crt_deinit(certs[i]);
    gnutls_free(certs);
    if (ncerts == 0) rv = GNUTLS_E_NO_CERTIFICATE_FOUND;
  }
  if (rv < 0) { *which = AH_GNUTLS_INPUT_CERTIFICATE; return rv; }

  if ((rv = gnutls_x509_privkey_init(&pk)) < 0) return rv;
  rv = gnutls_x509_privkey_import2(pk, key, GNUTLS_X509_FMT_PEM, NULL, 0);
  gnutls_x509_privkey_deinit(pk);
  if (rv < 0) { *which = AH_GNUTLS_INPUT_KEY; return rv; }

  rv = gnutls_certificate_set_x509_key_mem2(cred, chain, key, GNUTLS_X509_FMT_PEM, NULL, 0);
  if (rv < 0) { *which = AH_GNUTLS_INPUT_PAIR; return rv; }
  return 0;
}

int ah_gnutls_credentials_set_key_pair_files(gnutls_certificate_credentials_t cred,
                                             const char *chain_file, const char *key_file,
                                             ah_gnutls_input_t *which) {
  gnutls_datum_t chain = {NULL, 0}, key = {NULL, 0};
  int rv;

  *which = AH_GNUTLS_INPUT_NONE;
  if ((rv = gnutls_load_file(chain_file, &chain)) < 0) {
    *which = AH_GNUTLS_INPUT_CERTIFICATE;
  } else if ((rv = gnutls_load_file(key_file, &key)) < 0) {
    *which = AH_GNUTLS_INPUT_KEY;
  } else {
    rv = ah_gnutls_credentials_set_key_pair(cred, &chain, &key, which);
  }
  release_datum(&chain, 0);
  release_datum(&key, 1);
  return rv;
}
