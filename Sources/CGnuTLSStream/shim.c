// GnuTLS set-up helpers for AHTLS: credentials, session creation on a memory transport,
// verification diagnostics. See include/CGnuTLSStream.h for the contracts.

#include "CGnuTLSStream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Releases a buffer from gnutls_load_file, wiping it first when it held a private key.
static void release_datum(gnutls_datum_t *d, int secret) {
  if (d->data == NULL) return;
  if (secret) gnutls_memset(d->data, 0, d->size);
  gnutls_free(d->data);
  d->size = 0;
}

int ah_stream_tls_server_credentials_new(gnutls_certificate_credentials_t *out,
                                  const char *chain_file, const char *key_file,
                                  ah_stream_tls_file_t *which) {
  gnutls_datum_t chain = {NULL, 0}, key = {NULL, 0};
  gnutls_certificate_credentials_t cred = NULL;
  gnutls_x509_crt_t *certs = NULL;
  unsigned ncerts = 0;
  gnutls_x509_privkey_t pk = NULL;
  int rv;

  *out = NULL;
  *which = AH_TLS_FILE_NONE;

  // Parse each file on its own first, so a failure names the file it is about.
  if ((rv = gnutls_load_file(chain_file, &chain)) < 0) { *which = AH_TLS_FILE_CERTIFICATE; goto done; }
  rv = gnutls_x509_crt_list_import2(&certs, &ncerts, &chain, GNUTLS_X509_FMT_PEM, 0);
  if (rv >= 0) {
    for (unsigned i = 0; i < ncerts; i++) gnutls_x509_crt_deinit(certs[i]);
    gnutls_free(certs);
    if (ncerts == 0) rv = GNUTLS_E_NO_CERTIFICATE_FOUND;
  }
  if (rv < 0) { *which = AH_TLS_FILE_CERTIFICATE; goto done; }

  if ((rv = gnutls_load_file(key_file, &key)) < 0) { *which = AH_TLS_FILE_KEY; goto done; }
  if ((rv = gnutls_x509_privkey_init(&pk)) < 0) goto done;
  rv = gnutls_x509_privkey_import2(pk, &key, GNUTLS_X509_FMT_PEM, NULL, 0);
  gnutls_x509_privkey_deinit(pk);
  if (rv < 0) { *which = AH_TLS_FILE_KEY; goto done; }

  if ((rv = gnutls_certificate_allocate_credentials(&cred)) < 0) goto done;
  rv = gnutls_certificate_set_x509_key_mem2(cred, &chain, &key, GNUTLS_X509_FMT_PEM, NULL, 0);
  if (rv < 0) {
    *which = AH_TLS_FILE_PAIR;
    gnutls_certificate_free_credentials(cred);
    goto done;
  }
  *out = cred;
  rv = 0;

done:
  release_datum(&chain, 0);
  release_datum(&key, 1);
  return rv;
}

int ah_stream_tls_client_credentials_new(gnutls_certificate_credentials_t *out, const char *ca_file) {
  gnutls_certificate_credentials_t cred = NULL;
  int rv;

  *out = NULL;
  if ((rv = gnutls_certificate_allocate_credentials(&cred)) < 0) return rv;
  if (ca_file != NULL) {
    rv = gnutls_certificate_set_x509_trust_file(cred, ca_file, GNUTLS_X509_FMT_PEM);
  } else {
    rv = gnutls_certificate_set_x509_system_trust(cred);
  }
  if (rv == 0) rv = GNUTLS_E_NO_CERTIFICATE_FOUND;
  if (rv < 0) {
    gnutls_certificate_free_credentials(cred);
    return rv;
  }
  *out = cred;
  return rv;
}

int ah_stream_tls_is_ip_literal(const char *name) {
  unsigned char addr[16];
  return inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1;
}

// At most this many ALPN protocols are passed on; more is a configuration mistake.
#define AH_TLS_MAX_ALPN 8

int ah_stream_tls_session_new(gnutls_session_t *out, int is_server,
                       gnutls_certificate_credentials_t credentials,
                       gnutls_priority_t priority,
                       const char *server_name,
                       const uint8_t *alpn, size_t alpn_len,
                       void *transport,
                       gnutls_push_func push, gnutls_pull_func pull,
                       gnutls_pull_timeout_func pull_timeout) {
  gnutls_session_t s = NULL;
  // No session tickets: nothing here resumes sessions, so do not issue or store them.
  unsigned flags = (is_server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NONBLOCK | GNUTLS_NO_TICKETS;
  int rv;

  *out = NULL;
  if ((rv = gnutls_init(&s, flags)) < 0) return rv;
  if ((rv = gnutls_priority_set(s, priority)) < 0) goto fail;
  if ((rv = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, credentials)) < 0) goto fail;

  if (alpn != NULL && alpn_len > 0) {
    gnutls_datum_t protocols[AH_TLS_MAX_ALPN];
    unsigned count = 0;
    size_t i = 0;
    while (i < alpn_len) {
      size_t n = alpn[i];
      if (n == 0 || i + 1 + n > alpn_len || count == AH_TLS_MAX_ALPN) { rv = GNUTLS_E_INVALID_REQUEST; goto fail; }
      protocols[count].data = (unsigned char *)(alpn + i + 1);
      protocols[count].size = (unsigned)n;
      count++;
      i += 1 + n;
    }
    // Copied by GnuTLS. The server picks by its own preference order.
    rv = gnutls_alpn_set_protocols(s, protocols, count, is_server ? GNUTLS_ALPN_SERVER_PRECEDENCE : 0);
    if (rv < 0) goto fail;
  }

  if (is_server) {
    gnutls_certificate_server_set_request(s, GNUTLS_CERT_IGNORE);
  } else {
    if (server_name == NULL || server_name[0] == '\0') { rv = GNUTLS_E_INVALID_REQUEST; goto fail; }
    // Owned by the session (via its user pointer), freed in ah_stream_tls_session_free: GnuTLS
    // keeps this pointer for verification rather than a copy.
    char *name = strdup(server_name);
    if (name == NULL) { rv = GNUTLS_E_MEMORY_ERROR; goto fail; }
    gnutls_session_set_ptr(s, name);
    if (!ah_stream_tls_is_ip_literal(name)) {
      // RFC 6066: SNI carries host names only, never address literals.
      if ((rv = gnutls_server_name_set(s, GNUTLS_NAME_DNS, name, strlen(name))) < 0) goto fail;
    }
    gnutls_session_set_verify_cert(s, name, 0);
  }

  // Timeouts belong to the caller (the channel); GnuTLS never waits on a memory transport.
  gnutls_handshake_set_timeout(s, GNUTLS_INDEFINITE_TIMEOUT);
  gnutls_transport_set_ptr(s, transport);
  gnutls_transport_set_push_function(s, push);
  gnutls_transport_set_pull_function(s, pull);
  gnutls_transport_set_pull_timeout_function(s, pull_timeout);
  *out = s;
  return 0;

fail:
  ah_stream_tls_session_free(s);
  return rv;
}

void ah_stream_tls_session_free(gnutls_session_t session) {
  if (session == NULL) return;
  char *name = gnutls_session_get_ptr(session);
  gnutls_deinit(session);
  free(name);
}

void ah_stream_tls_verify_failure_reason(gnutls_session_t session, char *buf, size_t len) {
  if (len == 0) return;
  buf[0] = '\0';
  unsigned status = gnutls_session_get_verify_cert_status(session);
  if (status == 0) {
    snprintf(buf, len, "the peer presented no usable certificate");
    return;
  }
  gnutls_datum_t text = {NULL, 0};
  if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0) < 0) {
    snprintf(buf, len, "verification status 0x%x", status);
    return;
  }
  snprintf(buf, len, "%.*s", (int)text.size, (const char *)text.data);
  gnutls_free(text.data);
}

size_t ah_stream_tls_selected_alpn(gnutls_session_t session, char *buf, size_t len) {
  gnutls_datum_t proto;
  if (len == 0) return 0;
  buf[0] = '\0';
  if (gnutls_alpn_get_selected_protocol(session, &proto) < 0 || proto.size >= len) return 0;
  memcpy(buf, proto.data, proto.size);
  buf[proto.size] = '\0';
  return proto.size;
}
