/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_ETCD_H
#define RINGMASTER_ETCD_H

/*
 * A small client of etcd's v3 API through its JSON gateway (grpc-gateway,
 * POST /v3/...; keys and values travel base64-encoded), over HTTP with
 * libcurl.  Only what the cross-node view (cluster.h) and the rendezvous
 * (rendezvous.h) need: leases, put, compare-and-swap and create-if-absent
 * (transactions), a read of one key or of a prefix, and a watch of a
 * prefix.
 *
 * Every call blocks, bounded by the client's timeout (a watch by its stop
 * flag): the callers run them on their own threads, never on the
 * supervisor's event loop (the rendezvous, rendezvous.h, blocks on purpose:
 * it runs before the loop).  One client is one connection; it is not shared
 * between threads (but for etcd_client_wakeup()).  Library code: errors are negative errno values, and
 * etcd_last_error() says more (etcd's or curl's message); nothing is logged.
 *
 * A secured etcd (struct etcd_credentials): TLS with the CA that signed
 * etcd's certificate and a client certificate (etcd --client-cert-auth),
 * and etcd's own users (etcdctl auth enable): the client authenticates
 * (POST /v3/auth/authenticate) before its first call, sends the token in
 * the Authorization header, and authenticates again once when etcd says
 * the token is no longer valid (its TTL passed, etcd restarted, the
 * password changed).  The password is never part of an error message.
 *
 * Built without libcurl (configure --without-etcd), etcd_client_new()
 * returns -EOPNOTSUPP.
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct etcd_client;

/*
 * How to reach a secured etcd; any field may be NULL (a NULL struct: none).  Files are PEM.  The client
 * copies what it needs (the password too, wiped when the client is freed).
 */
struct etcd_credentials {
        const char *cacert;     /* the CA that signed etcd's server certificate (NULL: the system's CAs) */
        const char *cert;       /* this client's certificate, for etcd's --client-cert-auth; with key */
        const char *key;        /* its private key (unencrypted) */
        const char *user;       /* etcd's user (auth enabled); with password */
        const char *password;
};

/*
 * Endpoint: "HOST:PORT" (http://, or https:// when cred names a CA or a certificate), "http://HOST:PORT"
 * or "https://HOST:PORT".  cred: NULL for none.  timeout: per call, ms.
 */
int etcd_client_new(const char *endpoint, const struct etcd_credentials *cred, long timeout_ms,
                    struct etcd_client **ret);
struct etcd_client *etcd_client_free(struct etcd_client *c);
/* Wakes a watch running on c in another thread, so that it sees its stop flag (thread-safe). */
void etcd_client_wakeup(struct etcd_client *c);
/*
 * The last failure's detail ("" when none); valid until the next call on c.  A TLS failure says what to check
 * (the CA, the client certificate), a refused user is -EACCES from the call.
 */
const char *etcd_last_error(const struct etcd_client *c);

int etcd_lease_grant(struct etcd_client *c, int ttl_s, int64_t *ret_id);
/* Renews the lease once; -ENOENT when it has expired (or never was). */
int etcd_lease_keepalive(struct etcd_client *c, int64_t id, int *ret_ttl_s);
int etcd_lease_revoke(struct etcd_client *c, int64_t id);

/* lease 0: none.  Values are bytes (len); keys are strings. */
int etcd_put(struct etcd_client *c, const char *key, const void *value, size_t len, int64_t lease);
/* Deletes every key under prefix; *ret_deleted (may be NULL): how many there were. */
int etcd_delete_prefix(struct etcd_client *c, const char *prefix, int64_t *ret_deleted);
/* Puts only when key does not exist: *ret_created says whether this call made it. */
int etcd_create(struct etcd_client *c, const char *key, const void *value, size_t len, int64_t lease,
                bool *ret_created);

/*
 * Puts only when key's value is expected (NULL: when key does not exist): *ret_swapped says whether this
 * call wrote it.
 */
int etcd_compare_and_swap(struct etcd_client *c, const char *key, const char *expected, const void *value,
                          size_t len, int64_t lease, bool *ret_swapped);
/* One key's value (NUL-terminated, *ret_len bytes; free it); -ENOENT when absent. */
int etcd_get(struct etcd_client *c, const char *key, char **ret_value, size_t *ret_len);
/* The key under prefix made first (the lowest create revision): -ENOENT when there is none. */
int etcd_first_created(struct etcd_client *c, const char *prefix, char **ret_key);
/* This client's own address on its last connection to etcd (the address other nodes reach it by). */
int etcd_local_address(struct etcd_client *c, char **ret);

struct etcd_kv {
        char *key;
        char *value;            /* NUL-terminated; len bytes */
        size_t len;
        int64_t mod_revision;
        int64_t create_revision;        /* when the key was made (etcd's global order) */
        int64_t lease;
};
void etcd_kvs_free(struct etcd_kv *kvs, size_t n);

/* Every key under prefix, in key order; *ret_revision: the store's revision of this read. */
int etcd_range_prefix(struct etcd_client *c, const char *prefix, struct etcd_kv **ret, size_t *ret_n,
                      int64_t *ret_revision);

enum etcd_event_type { ETCD_PUT, ETCD_DELETE };

struct etcd_event {
        enum etcd_event_type type;
        struct etcd_kv kv;      /* DELETE: the key only */
};

/*
 * Watches every key under prefix from start_revision (0: from now),
 * calling on_event for each change, in revision order, until on_event
 * returns non-zero (returned), *stop becomes true (0), or the connection
 * fails (-ECONNRESET etc.; the caller re-watches from the next revision).
 * *stop is checked whenever data arrives, at least once a second, and at
 * once after etcd_client_wakeup() from another thread.  on_ready, when not
 * NULL, is called once etcd has confirmed the watch (so later changes will be seen).
 */
int etcd_watch_prefix(struct etcd_client *c, const char *prefix, int64_t start_revision,
                      int (*on_event)(const struct etcd_event *ev, int64_t revision, void *userdata),
                      void (*on_ready)(void *userdata), void *userdata, atomic_bool *stop);

/* Base64 (RFC 4648, with padding), as the gateway wants bytes; exposed for the tests. */
char *etcd_base64_encode(const void *data, size_t len);
int etcd_base64_decode(const char *s, size_t slen, char **ret, size_t *ret_len);
/* The key just past every key that starts with prefix (etcd's range_end for a prefix). */
char *etcd_prefix_end(const char *prefix);

#endif
