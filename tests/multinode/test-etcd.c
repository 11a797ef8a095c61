/* SPDX-License-Identifier: MIT */
/*
 * The etcd v3 client (etcd.c): base64 and prefix ends always; against a
 * real etcd at $RM_ETCD_ENDPOINT (tests/supervisor/with-etcd starts one):
 * leases, put, create-if-absent, range, and a watch that sees a put and the
 * deletion a revoked lease causes.  Without the variable only the pure
 * parts run, and the test skips (77) when built without libcurl.
 */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "etcd.h"
#include "unit.h"
#include "util.h"

static void test_base64(void) {
        static const struct { const char *in, *out; } cases[] = {
                { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" }, { "foob", "Zm9vYg==" },
                { "/ringmaster/job/", "L3JpbmdtYXN0ZXIvam9iLw==" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *e = etcd_base64_encode(cases[i].in, strlen(cases[i].in)), *d = NULL;
                size_t n = 0;
                CHECK(e && strcmp(e, cases[i].out) == 0, "encode %s: %s", cases[i].in, e);
                CHECK(etcd_base64_decode(cases[i].out, strlen(cases[i].out), &d, &n) == 0 && n == strlen(cases[i].in) &&
                      memcmp(d, cases[i].in, n) == 0, "decode %s", cases[i].out);
                free(e);
                free(d);
        }
        char *d = NULL;
        size_t n;
        CHECK(etcd_base64_decode("Zm9", 3, &d, &n) == -EBADMSG, "a length not a multiple of 4");
        CHECK(etcd_base64_decode("Zm!v", 4, &d, &n) == -EBADMSG, "a byte outside the alphabet");
        CHECK(etcd_base64_decode("Z=9v", 4, &d, &n) == -EBADMSG, "padding in the middle");

        char *end = etcd_prefix_end("/rm/a/");
        CHECK(end && strcmp(end, "/rm/a0") == 0, "prefix end of /rm/a/: %s", end);
        free(end);
}

struct watch_seen {
        atomic_bool stop;
        atomic_bool ready;
        int puts, deletes;
        char last_put[128];
        char last_delete[128];
        pthread_mutex_t lock;
        int result;
        struct etcd_client *c;
        const char *prefix;
};

static int on_event(const struct etcd_event *ev, int64_t revision, void *userdata) {
        struct watch_seen *w = userdata;

        (void) revision;
        pthread_mutex_lock(&w->lock);
        if (ev->type == ETCD_PUT) {
                w->puts++;
                snprintf(w->last_put, sizeof(w->last_put), "%s=%s", ev->kv.key, ev->kv.value);
        } else {
                w->deletes++;
                snprintf(w->last_delete, sizeof(w->last_delete), "%s", ev->kv.key);
        }
        pthread_mutex_unlock(&w->lock);
        return 0;
}

static void on_ready(void *userdata) {
        struct watch_seen *w = userdata;
        atomic_store(&w->ready, true);
}

static void *watcher(void *userdata) {
        struct watch_seen *w = userdata;
        w->result = etcd_watch_prefix(w->c, w->prefix, 0, on_event, on_ready, w, &w->stop);
        return NULL;
}

static bool wait_for(struct watch_seen *w, int *counter, int want, double seconds) {
        struct timespec ts = { 0, 20 * 1000 * 1000 };
        for (int i = 0; i < seconds * 50; i++) {
                pthread_mutex_lock(&w->lock);
                bool done = *counter >= want;
                pthread_mutex_unlock(&w->lock);
                if (done)
                        return true;
                nanosleep(&ts, NULL);
        }
        return false;
}

static void test_live(const char *endpoint) {
        struct etcd_client *c = NULL, *wc = NULL;
        struct watch_seen w = { .lock = PTHREAD_MUTEX_INITIALIZER, .prefix = "/rm-test/job/" };
        struct etcd_kv *kvs = NULL;
        size_t n = 0;
        int64_t lease = 0, rev = 0;
        bool created = false;
        pthread_t t;
        int ttl = 0, r;

        CHECK(etcd_client_new(endpoint, NULL, 2000, &c) == 0, "client");
        CHECK(etcd_client_new(endpoint, NULL, 2000, &wc) == 0, "watch client");
        if (!c || !wc)
                return;
        w.c = wc;
        pthread_create(&t, NULL, watcher, &w);
        for (int i = 0; i < 250 && !atomic_load(&w.ready); i++)
                nanosleep(&(struct timespec) { 0, 20 * 1000 * 1000 }, NULL);
        CHECK(atomic_load(&w.ready), "the watch is confirmed");

        r = etcd_lease_grant(c, 2, &lease);
        CHECK(r == 0 && lease != 0, "lease grant: %d %s", r, etcd_last_error(c));
        r = etcd_lease_keepalive(c, lease, &ttl);
        CHECK(r == 0 && ttl == 2, "keepalive: %d ttl %d %s", r, ttl, etcd_last_error(c));
        r = etcd_put(c, "/rm-test/job/nodes/1", "{\"state\":\"running\"}", 19, lease);
        CHECK(r == 0, "put: %d %s", r, etcd_last_error(c));
        CHECK(wait_for(&w, &w.puts, 1, 5) && strcmp(w.last_put, "/rm-test/job/nodes/1={\"state\":\"running\"}") == 0,
              "the watch sees the put: %s", w.last_put);

        r = etcd_create(c, "/rm-test/job/failure", "node 1 rank 9", 13, 0, &created);
        CHECK(r == 0 && created, "create: %d %d %s", r, created, etcd_last_error(c));
        r = etcd_create(c, "/rm-test/job/failure", "node 0 rank 2", 13, 0, &created);
        CHECK(r == 0 && !created, "a second create does not overwrite: %d %d", r, created);

        r = etcd_range_prefix(c, "/rm-test/job/", &kvs, &n, &rev);
        CHECK(r == 0 && n == 2 && rev > 0, "range: %d n=%zu rev=%lld", r, n, (long long) rev);
        if (r == 0 && n == 2) {
                CHECK(strcmp(kvs[0].key, "/rm-test/job/failure") == 0 && strcmp(kvs[0].value, "node 1 rank 9") == 0,
                      "the first writer's failure: %s=%s", kvs[0].key, kvs[0].value);
                CHECK(strcmp(kvs[1].key, "/rm-test/job/nodes/1") == 0 && kvs[1].lease == lease, "the node, leased");
        }
        etcd_kvs_free(kvs, n);
        kvs = NULL;
        /* Keys outside the prefix are not in it. */
        CHECK(etcd_put(c, "/rm-test/jobx", "x", 1, 0) == 0, "put outside");
        r = etcd_range_prefix(c, "/rm-test/job/", &kvs, &n, NULL);
        CHECK(r == 0 && n == 2, "still 2 under the prefix: %zu", n);
        etcd_kvs_free(kvs, n);

        /* A revoked lease deletes its keys, and the watch says so. */
        r = etcd_lease_revoke(c, lease);
        CHECK(r == 0, "revoke: %d %s", r, etcd_last_error(c));
        CHECK(wait_for(&w, &w.deletes, 1, 5) && strcmp(w.last_delete, "/rm-test/job/nodes/1") == 0,
              "the watch sees the deletion: %s", w.last_delete);
        r = etcd_lease_keepalive(c, lease, &ttl);
        CHECK(r == -ENOENT, "keepalive of a revoked lease: %d", r);

        /* An expiring lease (no keepalive): its key goes within the TTL (+ etcd's granularity). */
        CHECK(etcd_lease_grant(c, 1, &lease) == 0, "grant 1 s");
        CHECK(etcd_put(c, "/rm-test/job/nodes/2", "x", 1, lease) == 0, "put 2");
        CHECK(wait_for(&w, &w.deletes, 2, 6) && strcmp(w.last_delete, "/rm-test/job/nodes/2") == 0,
              "an expired lease's key is deleted: %s", w.last_delete);

        atomic_store(&w.stop, true);
        pthread_join(t, NULL);
        CHECK(w.result == 0, "the watch stops on the flag: %d %s", w.result, etcd_last_error(wc));
        etcd_client_free(c);
        etcd_client_free(wc);

        /* Nobody there: an error that names the endpoint. */
        CHECK(etcd_client_new("127.0.0.1:1", NULL, 500, &c) == 0, "client to a closed port");
        r = etcd_lease_grant(c, 5, &lease);
        CHECK(r == -ECONNREFUSED && strstr(etcd_last_error(c), "127.0.0.1:1"), "refused: %d %s", r,
              etcd_last_error(c));
        etcd_client_free(c);
}

int main(void) {
        const char *endpoint = getenv("RM_ETCD_ENDPOINT");
        struct etcd_client *c = NULL;

        test_base64();
        if (etcd_client_new("127.0.0.1:2379", NULL, 100, &c) == -EOPNOTSUPP) {
                printf("built without libcurl: the live part skipped\n");
                return failures ? 1 : 77;
        }
        etcd_client_free(c);
        if (endpoint)
                test_live(endpoint);
        else
                printf("RM_ETCD_ENDPOINT is not set: the live part skipped\n");
        printf("%s\n", failures ? "FAILED" : "ok");
        return failures ? 1 : endpoint ? 0 : 77;
}
