#include "CNgtcp2.h"
#include <string.h>
#include <time.h>

int ah_ngtcp2_conn_client_new(ngtcp2_conn **pconn, const ngtcp2_cid *dcid,
                              const ngtcp2_cid *scid, const ngtcp2_path *path,
                              uint32_t client_chosen_version,
                              const ngtcp2_callbacks *callbacks,
                              const ngtcp2_settings *settings,
                              const ngtcp2_transport_params *params,
                              void *user_data) {
  return ngtcp2_conn_client_new(pconn, dcid, scid, path, client_chosen_version,
                                callbacks, settings, params, NULL, user_data);
}

int ah_ngtcp2_conn_server_new(ngtcp2_conn **pconn, const ngtcp2_cid *dcid,
                              const ngtcp2_cid *scid, const ngtcp2_path *path,
                              uint32_t client_chosen_version,
                              const ngtcp2_callbacks *callbacks,
                              const ngtcp2_settings *settings,
                              const ngtcp2_transport_params *params,
                              void *user_data) {
  return ngtcp2_conn_server_new(pconn, dcid, scid, path, client_chosen_version,
                                callbacks, settings, params, NULL, user_data);
}

int ah_ngtcp2_conn_read_pkt(ngtcp2_conn *conn, const ngtcp2_path *path,
                            const uint8_t *pkt, size_t pktlen, uint8_t ecn,
                            ngtcp2_tstamp ts) {
  ngtcp2_pkt_info pi;
  memset(&pi, 0, sizeof(pi));
  pi.ecn = ecn;
  return ngtcp2_conn_read_pkt(conn, path, &pi, pkt, pktlen, ts);
}

ngtcp2_ssize ah_ngtcp2_conn_writev_stream(ngtcp2_conn *conn, ngtcp2_path *path,
                                          uint8_t *dest, size_t destlen,
                                          ngtcp2_ssize *pdatalen, uint32_t flags,
                                          int64_t stream_id, const ngtcp2_vec *datav,
                                          size_t datavcnt, ngtcp2_tstamp ts) {
  ngtcp2_pkt_info pi;
  return ngtcp2_conn_writev_stream(conn, path, &pi, dest, destlen, pdatalen, flags,
                                   stream_id, datav, datavcnt, ts);
}

ngtcp2_ssize ah_ngtcp2_conn_write_connection_close(ngtcp2_conn *conn, ngtcp2_path *path,
                                                   uint8_t *dest, size_t destlen,
                                                   const ngtcp2_connection_close_error *ccerr,
                                                   ngtcp2_tstamp ts) {
  ngtcp2_pkt_info pi;
  return ngtcp2_conn_write_connection_close(conn, path, &pi, dest, destlen, ccerr, ts);
}

void ah_ngtcp2_settings_default(ngtcp2_settings *settings) {
  ngtcp2_settings_default(settings);
}

void ah_ngtcp2_transport_params_default(ngtcp2_transport_params *params) {
  ngtcp2_transport_params_default(params);
}

void ah_ngtcp2_conn_get_conn_stat(ngtcp2_conn *conn, ngtcp2_conn_stat *cstat) {
  ngtcp2_conn_get_conn_stat(conn, cstat);
}

ngtcp2_tstamp ah_monotonic_ns(void) {
  struct timespec tp;
  clock_gettime(CLOCK_MONOTONIC, &tp);
  return (ngtcp2_tstamp)tp.tv_sec * NGTCP2_SECONDS + (ngtcp2_tstamp)tp.tv_nsec;
}

// After the handshake an access point frees the connection's GnuTLS session (see
// QUICConnection.releaseTLSAfterHandshake): a client has nothing left to say in CRYPTO
// frames then (QUIC forbids TLS KeyUpdate; we request no post-handshake authentication),
// so any that still arrive end the connection with unexpected_message instead of
// reaching a session that is gone.
static int ah_recv_crypto_data(ngtcp2_conn *conn, ngtcp2_crypto_level crypto_level,
                               uint64_t offset, const uint8_t *data, size_t datalen,
                               void *user_data) {
  if (ngtcp2_conn_get_tls_native_handle(conn) == NULL) {
    ngtcp2_conn_set_tls_alert(conn, 10 /* unexpected_message */);
    return NGTCP2_ERR_CRYPTO;
  }
  return ngtcp2_crypto_recv_crypto_data_cb(conn, crypto_level, offset, data, datalen, user_data);
}

void ah_ngtcp2_callbacks_crypto_defaults(ngtcp2_callbacks *cb, int is_server) {
  memset(cb, 0, sizeof(*cb));
  if (is_server) {
    cb->recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
  } else {
    cb->client_initial = ngtcp2_crypto_client_initial_cb;
    cb->recv_retry = ngtcp2_crypto_recv_retry_cb;
  }
  cb->recv_crypto_data = ah_recv_crypto_data;
  cb->encrypt = ngtcp2_crypto_encrypt_cb;
  cb->decrypt = ngtcp2_crypto_decrypt_cb;
  cb->hp_mask = ngtcp2_crypto_hp_mask_cb;
  cb->update_key = ngtcp2_crypto_update_key_cb;
  cb->delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
  cb->delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
  cb->get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
  cb->version_negotiation = ngtcp2_crypto_version_negotiation_cb;
}

void ah_ngtcp2_addr_set(ngtcp2_addr *addr, struct sockaddr_storage *storage,
                        const struct sockaddr *sa, socklen_t len) {
  if (len > sizeof(*storage)) len = sizeof(*storage);
  memcpy(storage, sa, len);
  addr->addr = (ngtcp2_sockaddr *)storage;
  addr->addrlen = len;
}
