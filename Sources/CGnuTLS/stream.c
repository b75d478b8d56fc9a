// Stream sessions for AHTLS (TLS over TCP): set-up on a memory transport. See
// include/CGnuTLS.h for the contracts.

#include "CGnuTLS.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

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
