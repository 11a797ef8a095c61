/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "etcd.h"
#include "json.h"
#include "util.h"

/* ------------------------------------------------------------ base64 */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *etcd_base64_encode(const void *data, size_t len) {
        const unsigned char *p = data;
        char *out = malloc(4 * ((len + 2) / 3) + 1), *o = out;

        if (!out)
                return NULL;
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t) p[i] << 16 | (i + 1 < len ? (uint32_t) p[i + 1] << 8 : 0) |
                             (i + 2 < len ? p[i + 2] : 0);
                *o++ = b64[v >> 18 & 63];
                *o++ = b64[v >> 12 & 63];
                *o++ = i + 1 < len ? b64[v >> 6 & 63] : '=';
                *o++ = i + 2 < len ? b64[v & 63] : '=';
        }
        *o = 0;
        return out;
}

static int b64_value(char c) {
        const char *p = c ? strchr(b64, c) : NULL;
        return p ? (int) (p - b64) : -1;
}

int etcd_base64_decode(const char *s, size_t slen, char **ret, size_t *ret_len) {
        char *out;
        size_t n = 0;

        if (slen % 4 != 0)
                return -EBADMSG;
        out = malloc(slen / 4 * 3 + 1);
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < slen; i += 4) {
                int v[4];
                for (int k = 0; k < 4; k++) {
                        v[k] = s[i + k] == '=' && i + 4 == slen && k >= 2 ? 0 : b64_value(s[i + k]);
                        if (v[k] < 0) {
                                free(out);
                                return -EBADMSG;
                        }
                }
                uint32_t x = (uint32_t) v[0] << 18 | (uint32_t) v[1] << 12 | (uint32_t) v[2] << 6 | (uint32_t) v[3];
                out[n++] = (char) (x >> 16);
                if (s[i + 2] != '=')
                        out[n++] = (char) (x >> 8 & 0xff);
                if (s[i + 3] != '=')
                        out[n++] = (char) (x & 0xff);
        }
        out[n] = 0;
        *ret = out;
        *ret_len = n;
        return 0;
}

char *etcd_prefix_end(const char *prefix) {
        size_t n = strlen(prefix);
        char *end = strdup(prefix);

        if (!end)
                return NULL;
        /* The last byte that is not 0xff, plus one; a prefix of all 0xff has no end ("\0": to the last key). */
        while (n > 0) {
                if ((unsigned char) end[n - 1] < 0xff) {
                        end[n - 1]++;
                        end[n] = 0;
                        return end;
                }
                n--;
        }
        end[0] = 0;
        return end;
}

#if HAVE_LIBCURL
#include <curl/curl.h>
#include <pthread.h>

#define MAX_RESPONSE (64u << 20)

struct etcd_client {
        char *base;             /* "http://host:port" */
        char *cacert, *cert, *key;      /* TLS (etcd_credentials) */
        char *user, *password;          /* etcd's auth: a token from /v3/auth/authenticate */
        char *token;                    /* NULL: none yet, or etcd no longer takes it */
        long timeout_ms;
        CURL *curl;
        CURLM *watch_multi;             /* while a watch runs, under wake_lock: for etcd_client_wakeup() */
        pthread_mutex_t wake_lock;
        char error[512];
        char curl_error[CURL_ERROR_SIZE];
};

static int curl_init_result;
static void curl_init_once(void) {
        curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT) == 0 ? 0 : -EIO;
}

static int copy_field(char **dst, const char *src) {
        if (!src || !*src)
                return 0;
        *dst = strdup(src);
        return *dst ? 0 : -ENOMEM;
}

static void wipe_free(char *s) {
        if (s)
                explicit_bzero(s, strlen(s));
        free(s);
}

int etcd_client_new(const char *endpoint, const struct etcd_credentials *cred, long timeout_ms,
                    struct etcd_client **ret) {
        struct etcd_client *c;
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        const struct etcd_credentials none = {};

        if (!endpoint || !*endpoint || timeout_ms <= 0)
                return -EINVAL;
        if (!cred)
                cred = &none;
        pthread_once(&once, curl_init_once);
        if (curl_init_result < 0)
                return curl_init_result;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        pthread_mutex_init(&c->wake_lock, NULL);
        if (startswith(endpoint, "http://") || startswith(endpoint, "https://"))
                c->base = strdup(endpoint);
        else if (asprintf(&c->base, "%s://%s", cred->cacert || cred->cert ? "https" : "http", endpoint) < 0)
                c->base = NULL;
        c->curl = curl_easy_init();
        if (!c->base || !c->curl || copy_field(&c->cacert, cred->cacert) < 0 ||
            copy_field(&c->cert, cred->cert) < 0 || copy_field(&c->key, cred->key) < 0 ||
            copy_field(&c->user, cred->user) < 0 || copy_field(&c->password, cred->password) < 0) {
                etcd_client_free(c);
                return -ENOMEM;
        }
        while (c->base[0] && c->base[strlen(c->base) - 1] == '/')
                c->base[strlen(c->base) - 1] = 0;
        c->timeout_ms = timeout_ms;
        *ret = c;
        return 0;
}

struct etcd_client *etcd_client_free(struct etcd_client *c) {
        if (!c)
                return NULL;
        if (c->curl)
                curl_easy_cleanup(c->curl);
        free(c->base);
        free(c->cacert);
        free(c->cert);
        free(c->key);
        free(c->user);
        wipe_free(c->password);
        wipe_free(c->token);
        pthread_mutex_destroy(&c->wake_lock);
        free(c);
        return NULL;
}

void etcd_client_wakeup(struct etcd_client *c) {
        pthread_mutex_lock(&c->wake_lock);
        if (c->watch_multi)
                curl_multi_wakeup(c->watch_multi);
        pthread_mutex_unlock(&c->wake_lock);
}

const char *etcd_last_error(const struct etcd_client *c) {
        return c->error;
}

static int set_error(struct etcd_client *c, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int set_error(struct etcd_client *c, int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(c->error, sizeof(c->error), fmt, ap);
        va_end(ap);
        return r;
}

struct buffer {
        char *data;
        size_t len;
};

static size_t collect(char *ptr, size_t size, size_t nmemb, void *userdata) {
        struct buffer *b = userdata;
        size_t n = size * nmemb;
        char *d;

        if (b->len + n > MAX_RESPONSE)
                return 0;
        d = realloc(b->data, b->len + n + 1);
        if (!d)
                return 0;
        memcpy(d + b->len, ptr, n);
        b->data = d;
        b->len += n;
        d[b->len] = 0;
        return n;
}

static int curl_errno(CURLcode cc) {
        switch (cc) {
        case CURLE_COULDNT_CONNECT: return -ECONNREFUSED;
        case CURLE_COULDNT_RESOLVE_HOST: return -EHOSTUNREACH;
        case CURLE_OPERATION_TIMEDOUT: return -ETIMEDOUT;
        case CURLE_OUT_OF_MEMORY: return -ENOMEM;
        case CURLE_WRITE_ERROR: return -ECANCELED;
        case CURLE_ABORTED_BY_CALLBACK: return -ECANCELED;
        default: return -ECONNRESET;
        }
}

/* Content-Type, and the token when there is one. */
static struct curl_slist *request_headers(struct etcd_client *c, bool with_token) {
        struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json"), *t;
        _cleanup_free_ char *auth = NULL;

        if (!h || !with_token || !c->token)
                return h;
        if (asprintf(&auth, "Authorization: %s", c->token) < 0 || !(t = curl_slist_append(h, auth))) {
                curl_slist_free_all(h);
                h = NULL;
        } else
                h = t;
        if (auth)
                explicit_bzero(auth, strlen(auth));
        return h;
}

static void setup_post(struct etcd_client *c, const char *path, const char *body, struct curl_slist *headers) {
        char url[1024];

        snprintf(url, sizeof(url), "%s%s", c->base, path);
        curl_easy_reset(c->curl);
        curl_easy_setopt(c->curl, CURLOPT_URL, url);
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, c->timeout_ms);
        curl_easy_setopt(c->curl, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->curl_error);
        curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
        if (c->cacert)
                curl_easy_setopt(c->curl, CURLOPT_CAINFO, c->cacert);
        if (c->cert)
                curl_easy_setopt(c->curl, CURLOPT_SSLCERT, c->cert);
        if (c->key)
                curl_easy_setopt(c->curl, CURLOPT_SSLKEY, c->key);
        c->curl_error[0] = 0;
}

/* What a failed TLS connection means for the one who set it up ("" when it is not TLS's). */
static const char *tls_hint(const struct etcd_client *c, CURLcode cc, char *buf, size_t size) {
        switch (cc) {
        case CURLE_PEER_FAILED_VERIFICATION:
                snprintf(buf, size, ": etcd's certificate is not signed by %s%s (or does not name the host): give "
                         "the CA that signed etcd's server certificate (--store-cacert)",
                         c->cacert ? "the CA in " : "a CA of the system's", c->cacert ? c->cacert : "");
                return buf;
        case CURLE_SSL_CACERT_BADFILE:
                snprintf(buf, size, ": the CA file %s cannot be read as PEM certificates (--store-cacert)",
                         c->cacert ? c->cacert : "(the system's)");
                return buf;
        case CURLE_SSL_CERTPROBLEM:
                snprintf(buf, size, ": the client certificate %s or its key %s cannot be used (--store-cert, "
                         "--store-key: PEM files, the key unencrypted and the certificate's)",
                         c->cert ? c->cert : "(none)", c->key ? c->key : "(none)");
                return buf;
        case CURLE_GOT_NOTHING:
                if (!startswith(c->base, "http://"))
                        return "";
                snprintf(buf, size, " (does etcd speak TLS there? give https://%s, or --store-cacert)",
                         c->base + strlen("http://"));
                return buf;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
                if (!startswith(c->base, "https://"))
                        return "";
                snprintf(buf, size, ": the TLS handshake failed%s", c->cert ? "" :
                         " (does etcd want a client certificate? --store-cert and --store-key)");
                return buf;
        default:
                return "";
        }
}

/* etcd's message for a token it no longer takes (expired, etcd restarted, the password changed). */
static bool token_refused(long status, const char *message) {
        return status == 401 || (message && strstr(message, "auth token"));
}

/*
 * POSTs body to path once; on HTTP 200, *ret is the parsed reply.  *ret_token_refused: etcd refused the token
 * (with_token) or wants one.
 */
static int post_once(struct etcd_client *c, const char *path, const char *body, bool with_token,
                     struct json_value **ret, bool *ret_token_refused) {
        struct curl_slist *headers = request_headers(c, with_token);
        struct buffer b = {};
        long status = 0;
        CURLcode cc;
        char hint[512];
        int r;

        *ret_token_refused = false;
        if (!headers)
                return -ENOMEM;
        c->error[0] = 0;
        setup_post(c, path, body, headers);
        curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, c->timeout_ms);
        curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &b);
        cc = curl_easy_perform(c->curl);
        curl_slist_free_all(headers);
        if (cc != CURLE_OK) {
                free(b.data);
                return set_error(c, curl_errno(cc), "%s%s: %s%s", c->base, path,
                                 c->curl_error[0] ? c->curl_error : curl_easy_strerror(cc),
                                 tls_hint(c, cc, hint, sizeof(hint)));
        }
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
        r = json_parse(b.data ? b.data : "", b.len, ret);
        if (status != 200) {
                const struct json_value *m = r == 0 ? json_object_get(*ret, "message") : NULL;
                const char *text;

                if (!m && r == 0)
                        m = json_object_get(*ret, "error");
                text = m && m->type == JSON_STRING ? m->text : (b.data ? b.data : "");
                *ret_token_refused = token_refused(status, text);
                if (strstr(text, "user name is empty"))
                        set_error(c, 0, "%s%s: etcd has authentication enabled and wants a user and password "
                                  "(--store-user, --store-password-file)", c->base, path);
                else if (strstr(text, "HTTPS server"))
                        set_error(c, 0, "%s%s: etcd speaks TLS there: give https://%s", c->base, path,
                                  c->base + strlen("http://"));
                else
                        set_error(c, 0, "%s%s: HTTP %ld: %s", c->base, path, status, text);
                if (r == 0)
                        *ret = json_value_free(*ret);
                free(b.data);
                return status == 404 ? -ENOENT : -EPROTO;
        }
        if (r < 0) {
                set_error(c, 0, "%s%s: not a JSON reply", c->base, path);
                free(b.data);
                return -EBADMSG;
        }
        free(b.data);
        return 0;
}

/* A token for c->user (POST /v3/auth/authenticate); -EACCES when etcd refuses the user or the password. */
static int authenticate(struct etcd_client *c) {
        struct json_value *v = NULL;
        const struct json_value *t;
        char *body = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&body, &size);
        struct json_writer w;
        bool refused;
        int r;

        if (!f)
                return -ENOMEM;
        json_writer_init(&w, f);
        json_begin_object(&w);
        json_key(&w, "name");
        json_string(&w, c->user);
        json_key(&w, "password");
        json_string(&w, c->password ? c->password : "");
        json_end_object(&w);
        r = memstream_finish(f, &body, NULL);
        if (r < 0)
                return r;
        r = post_once(c, "/v3/auth/authenticate", body, false, &v, &refused);
        explicit_bzero(body, strlen(body));
        free(body);
        if (r == -EPROTO && strstr(c->error, "authentication failed"))
                return set_error(c, -EACCES, "%s: etcd refused user '%s': authentication failed, a wrong user "
                                 "or password: check --store-user and the password (--store-password-file, "
                                 "$RINGMASTER_STORE_PASSWORD)", c->base, c->user);
        if (r == -EPROTO && strstr(c->error, "authentication is not enabled"))
                return set_error(c, -EACCES, "%s: etcd has no authentication enabled, yet a user was given "
                                 "(--store-user): leave it out, or enable etcd's (etcdctl auth enable)", c->base);
        if (r < 0)
                return r;
        t = json_object_get(v, "token");
        if (!t || t->type != JSON_STRING || !*t->text) {
                json_value_free(v);
                return set_error(c, -EPROTO, "%s/v3/auth/authenticate: no token in etcd's reply", c->base);
        }
        wipe_free(c->token);
        c->token = strdup(t->text);
        json_value_free(v);
        return c->token ? 0 : -ENOMEM;
}

/* POSTs body to path, authenticated when c has a user (once more when etcd no longer takes the token). */
static int post(struct etcd_client *c, const char *path, const char *body, struct json_value **ret) {
        bool refused = false;
        int r;

        if (c->user && !c->token) {
                r = authenticate(c);
                if (r < 0)
                        return r;
        }
        r = post_once(c, path, body, true, ret, &refused);
        if (r < 0 && refused && c->user) {
                c->token = (wipe_free(c->token), NULL);
                r = authenticate(c);
                if (r == 0)
                        r = post_once(c, path, body, true, ret, &refused);
        }
        return r;
}

/* An int64 the gateway writes as a string (or a number); 0 when absent. */
static int64_t get_int64(const struct json_value *o, const char *key) {
        const struct json_value *v = o ? json_object_get(o, key) : NULL;

        if (!v || (v->type != JSON_STRING && v->type != JSON_NUMBER))
                return 0;
        return strtoll(v->text, NULL, 10);
}

int etcd_lease_grant(struct etcd_client *c, int ttl_s, int64_t *ret_id) {
        struct json_value *v = NULL;
        char body[64];
        int64_t id;
        int r;

        snprintf(body, sizeof(body), "{\"TTL\":%d}", ttl_s);
        r = post(c, "/v3/lease/grant", body, &v);
        if (r < 0)
                return r;
        id = get_int64(v, "ID");
        json_value_free(v);
        if (id == 0)
                return set_error(c, -EPROTO, "lease grant: no lease ID in the reply");
        *ret_id = id;
        return 0;
}

int etcd_lease_keepalive(struct etcd_client *c, int64_t id, int *ret_ttl_s) {
        struct json_value *v = NULL;
        char body[64];
        int64_t ttl;
        int r;

        snprintf(body, sizeof(body), "{\"ID\":\"%" PRId64 "\"}", id);
        r = post(c, "/v3/lease/keepalive", body, &v);
        if (r < 0)
                return r;
        ttl = get_int64(json_object_get(v, "result"), "TTL");
        json_value_free(v);
        if (ttl <= 0)
                return set_error(c, -ENOENT, "lease %" PRIx64 " has expired", (uint64_t) id);
        if (ret_ttl_s)
                *ret_ttl_s = (int) ttl;
        return 0;
}

int etcd_lease_revoke(struct etcd_client *c, int64_t id) {
        struct json_value *v = NULL;
        char body[64];
        int r;

        snprintf(body, sizeof(body), "{\"ID\":\"%" PRId64 "\"}", id);
        r = post(c, "/v3/lease/revoke", body, &v);
        json_value_free(v);
        return r;
}

static int put_body(const char *key, const void *value, size_t len, int64_t lease, char **ret) {
        _cleanup_free_ char *k = etcd_base64_encode(key, strlen(key));
        _cleanup_free_ char *val = etcd_base64_encode(value, len);

        if (!k || !val)
                return -ENOMEM;
        if (asprintf(ret, "{\"key\":\"%s\",\"value\":\"%s\",\"lease\":\"%" PRId64 "\"}", k, val, lease) < 0)
                return -ENOMEM;
        return 0;
}

int etcd_put(struct etcd_client *c, const char *key, const void *value, size_t len, int64_t lease) {
        _cleanup_free_ char *body = NULL;
        struct json_value *v = NULL;
        int r;

        r = put_body(key, value, len, lease, &body);
        if (r < 0)
                return r;
        r = post(c, "/v3/kv/put", body, &v);
        json_value_free(v);
        return r;
}

int etcd_delete_prefix(struct etcd_client *c, const char *prefix, int64_t *ret_deleted) {
        _cleanup_free_ char *end = etcd_prefix_end(prefix), *k = etcd_base64_encode(prefix, strlen(prefix));
        _cleanup_free_ char *e = NULL, *body = NULL;
        struct json_value *v = NULL;
        int r;

        if (!end || !k)
                return -ENOMEM;
        e = etcd_base64_encode(end, strlen(end) ? strlen(end) : 1);
        if (!e || asprintf(&body, "{\"key\":\"%s\",\"range_end\":\"%s\"}", k, e) < 0)
                return -ENOMEM;
        r = post(c, "/v3/kv/deleterange", body, &v);
        if (r == 0 && ret_deleted)
                *ret_deleted = get_int64(v, "deleted");
        json_value_free(v);
        return r;
}

int etcd_compare_and_swap(struct etcd_client *c, const char *key, const char *expected, const void *value,
                          size_t len, int64_t lease, bool *ret_swapped) {
        _cleanup_free_ char *put = NULL, *body = NULL, *cmp = NULL, *k = etcd_base64_encode(key, strlen(key));
        _cleanup_free_ char *e = expected ? etcd_base64_encode(expected, strlen(expected)) : NULL;
        struct json_value *v = NULL;
        const struct json_value *ok;
        int r;

        if (!k || (expected && !e))
                return -ENOMEM;
        r = put_body(key, value, len, lease, &put);
        if (r < 0)
                return r;
        /* Absent: its create_revision is 0; else its value must be the expected one. */
        if (expected)
                r = asprintf(&cmp, "{\"key\":\"%s\",\"target\":\"VALUE\",\"result\":\"EQUAL\",\"value\":\"%s\"}",
                             k, e);
        else
                r = asprintf(&cmp, "{\"key\":\"%s\",\"target\":\"CREATE\",\"result\":\"EQUAL\","
                                   "\"create_revision\":\"0\"}", k);
        if (r < 0 || asprintf(&body, "{\"compare\":[%s],\"success\":[{\"request_put\":%s}]}", cmp, put) < 0)
                return -ENOMEM;
        r = post(c, "/v3/kv/txn", body, &v);
        if (r < 0)
                return r;
        ok = json_object_get(v, "succeeded");
        *ret_swapped = ok && ok->type == JSON_TRUE;
        json_value_free(v);
        return 0;
}

int etcd_create(struct etcd_client *c, const char *key, const void *value, size_t len, int64_t lease,
                bool *ret_created) {
        return etcd_compare_and_swap(c, key, NULL, value, len, lease, ret_created);
}

void etcd_kvs_free(struct etcd_kv *kvs, size_t n) {
        for (size_t i = 0; kvs && i < n; i++) {
                free(kvs[i].key);
                free(kvs[i].value);
        }
        free(kvs);
}

static int kv_from_json(const struct json_value *o, struct etcd_kv *ret) {
        const struct json_value *k = json_object_get(o, "key"), *val = json_object_get(o, "value");
        struct etcd_kv kv = {};
        size_t n;
        int r;

        if (!k || k->type != JSON_STRING)
                return -EBADMSG;
        r = etcd_base64_decode(k->text, k->len, &kv.key, &n);
        if (r < 0)
                return r;
        if (val && val->type == JSON_STRING)
                r = etcd_base64_decode(val->text, val->len, &kv.value, &kv.len);
        else
                r = (kv.value = strdup("")) ? 0 : -ENOMEM;
        if (r < 0) {
                free(kv.key);
                return r;
        }
        kv.mod_revision = get_int64(o, "mod_revision");
        kv.create_revision = get_int64(o, "create_revision");
        kv.lease = get_int64(o, "lease");
        *ret = kv;
        return 0;
}

/* Keys from key to end (NULL: key alone). */
static int range(struct etcd_client *c, const char *key, const char *end, struct etcd_kv **ret, size_t *ret_n,
                 int64_t *ret_revision) {
        _cleanup_free_ char *k = etcd_base64_encode(key, strlen(key)), *e = NULL, *body = NULL;
        struct json_value *v = NULL;
        const struct json_value *kvs;
        struct etcd_kv *out = NULL;
        size_t n = 0;
        int r;

        if (!k)
                return -ENOMEM;
        if (end) {
                e = etcd_base64_encode(end, strlen(end) ? strlen(end) : 1);
                if (!e || asprintf(&body, "{\"key\":\"%s\",\"range_end\":\"%s\"}", k, e) < 0)
                        return -ENOMEM;
        } else if (asprintf(&body, "{\"key\":\"%s\"}", k) < 0)
                return -ENOMEM;
        r = post(c, "/v3/kv/range", body, &v);
        if (r < 0)
                return r;
        kvs = json_object_get(v, "kvs");
        if (kvs && kvs->type == JSON_ARRAY && kvs->n > 0) {
                out = calloc(kvs->n, sizeof(*out));
                if (!out) {
                        json_value_free(v);
                        return -ENOMEM;
                }
                for (; n < kvs->n; n++) {
                        r = kv_from_json(kvs->items[n], &out[n]);
                        if (r < 0) {
                                etcd_kvs_free(out, n);
                                json_value_free(v);
                                return set_error(c, r, "range %s: a key that is not base64", key);
                        }
                }
        }
        if (ret_revision)
                *ret_revision = get_int64(json_object_get(v, "header"), "revision");
        json_value_free(v);
        *ret = out;
        *ret_n = n;
        return 0;
}

int etcd_range_prefix(struct etcd_client *c, const char *prefix, struct etcd_kv **ret, size_t *ret_n,
                      int64_t *ret_revision) {
        _cleanup_free_ char *end = etcd_prefix_end(prefix);

        if (!end)
                return -ENOMEM;
        return range(c, prefix, end, ret, ret_n, ret_revision);
}

int etcd_first_created(struct etcd_client *c, const char *prefix, char **ret_key) {
        _cleanup_free_ char *end = etcd_prefix_end(prefix), *k = etcd_base64_encode(prefix, strlen(prefix));
        _cleanup_free_ char *e = NULL, *body = NULL;
        struct json_value *v = NULL;
        const struct json_value *kvs;
        struct etcd_kv kv = {};
        int r;

        if (!end || !k)
                return -ENOMEM;
        e = etcd_base64_encode(end, strlen(end) ? strlen(end) : 1);
        if (!e || asprintf(&body, "{\"key\":\"%s\",\"range_end\":\"%s\",\"limit\":1,\"sort_order\":\"ASCEND\","
                                  "\"sort_target\":\"CREATE\",\"keys_only\":true}", k, e) < 0)
                return -ENOMEM;
        r = post(c, "/v3/kv/range", body, &v);
        if (r < 0)
                return r;
        kvs = json_object_get(v, "kvs");
        if (!kvs || kvs->type != JSON_ARRAY || kvs->n == 0)
                r = -ENOENT;
        else if ((r = kv_from_json(kvs->items[0], &kv)) == 0) {
                *ret_key = kv.key;
                free(kv.value);
        }
        json_value_free(v);
        return r;
}

int etcd_get(struct etcd_client *c, const char *key, char **ret_value, size_t *ret_len) {
        struct etcd_kv *kvs = NULL;
        size_t n = 0;
        int r;

        r = range(c, key, NULL, &kvs, &n, NULL);
        if (r < 0)
                return r;
        if (n == 0)
                return -ENOENT;
        *ret_value = TAKE_PTR(kvs[0].value);
        if (ret_len)
                *ret_len = kvs[0].len;
        etcd_kvs_free(kvs, n);
        return 0;
}

int etcd_local_address(struct etcd_client *c, char **ret) {
        char *ip = NULL;

        if (curl_easy_getinfo(c->curl, CURLINFO_LOCAL_IP, &ip) != CURLE_OK || !ip || !*ip)
                return -ENOTCONN;
        *ret = strdup(ip);
        return *ret ? 0 : -ENOMEM;
}

/* ------------------------------------------------------------ watch */

struct watch_state {
        struct etcd_client *c;
        struct buffer line;
        int (*on_event)(const struct etcd_event *ev, int64_t revision, void *userdata);
        void (*on_ready)(void *userdata);
        void *userdata;
        atomic_bool *stop;
        int result;             /* on_event's non-zero, or a protocol error */
};

static int watch_message(struct watch_state *w, const char *text, size_t len) {
        struct json_value *v = NULL;
        const struct json_value *res, *events, *err;
        int64_t revision;
        int r;

        if (json_parse(text, len, &v) < 0)
                return set_error(w->c, -EBADMSG, "watch: not a JSON message");
        err = json_object_get(v, "error");
        res = json_object_get(v, "result");
        if (err || !res) {
                const struct json_value *m = err ? json_object_get(err, "message") : NULL;
                set_error(w->c, 0, "watch: %s", m && m->type == JSON_STRING ? m->text : "an error");
                json_value_free(v);
                return -EPROTO;
        }
        if (json_object_get(res, "canceled")) {
                const struct json_value *m = json_object_get(res, "cancel_reason");
                set_error(w->c, 0, "watch canceled: %s", m && m->type == JSON_STRING ? m->text : "(no reason)");
                json_value_free(v);
                return -ECANCELED;
        }
        if (json_object_get(res, "created") && w->on_ready)
                w->on_ready(w->userdata);
        revision = get_int64(json_object_get(res, "header"), "revision");
        events = json_object_get(res, "events");
        for (size_t i = 0; events && events->type == JSON_ARRAY && i < events->n; i++) {
                const struct json_value *t = json_object_get(events->items[i], "type");
                struct etcd_event ev = {
                        .type = t && t->type == JSON_STRING && strcmp(t->text, "DELETE") == 0 ? ETCD_DELETE : ETCD_PUT,
                };
                r = kv_from_json(json_object_get(events->items[i], "kv"), &ev.kv);
                if (r < 0) {
                        json_value_free(v);
                        return r;
                }
                r = w->on_event(&ev, ev.kv.mod_revision ? ev.kv.mod_revision : revision, w->userdata);
                free(ev.kv.key);
                free(ev.kv.value);
                if (r != 0) {
                        json_value_free(v);
                        return r;
                }
        }
        json_value_free(v);
        return 0;
}

static size_t watch_data(char *ptr, size_t size, size_t nmemb, void *userdata) {
        struct watch_state *w = userdata;
        size_t n = size * nmemb, start = 0;

        if (atomic_load(w->stop))
                return 0;
        if (w->line.len + n > MAX_RESPONSE || !collect(ptr, size, nmemb, &w->line)) {
                w->result = set_error(w->c, -E2BIG, "watch: a message over %u bytes", MAX_RESPONSE);
                return 0;
        }
        /* One JSON object a line. */
        for (size_t i = 0; i < w->line.len; i++)
                if (w->line.data[i] == '\n') {
                        if (i > start) {
                                int r = watch_message(w, w->line.data + start, i - start);
                                if (r != 0) {
                                        w->result = r;
                                        return 0;
                                }
                        }
                        start = i + 1;
                }
        memmove(w->line.data, w->line.data + start, w->line.len - start);
        w->line.len -= start;
        return n;
}

static int watch_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                          curl_off_t ulnow) {
        struct watch_state *w = userdata;

        (void) dltotal, (void) dlnow, (void) ultotal, (void) ulnow;
        return atomic_load(w->stop) ? 1 : 0;
}

int etcd_watch_prefix(struct etcd_client *c, const char *prefix, int64_t start_revision,
                      int (*on_event)(const struct etcd_event *ev, int64_t revision, void *userdata),
                      void (*on_ready)(void *userdata), void *userdata, atomic_bool *stop) {
        _cleanup_free_ char *end = etcd_prefix_end(prefix), *k = etcd_base64_encode(prefix, strlen(prefix));
        _cleanup_free_ char *e = NULL, *body = NULL;
        struct curl_slist *headers = NULL;
        struct watch_state w = { .c = c, .on_event = on_event, .on_ready = on_ready, .userdata = userdata,
                                 .stop = stop };
        CURLcode cc;
        long status = 0;
        char hint[512];
        int r;

        if (c->user && !c->token) {
                r = authenticate(c);
                if (r < 0)
                        return r;
        }
        headers = request_headers(c, true);
        if (!end || !k || !headers) {
                curl_slist_free_all(headers);
                return -ENOMEM;
        }
        e = etcd_base64_encode(end, strlen(end) ? strlen(end) : 1);
        if (!e || asprintf(&body, "{\"create_request\":{\"key\":\"%s\",\"range_end\":\"%s\","
                                  "\"start_revision\":\"%" PRId64 "\"}}", k, e, start_revision) < 0) {
                curl_slist_free_all(headers);
                return -ENOMEM;
        }
        c->error[0] = 0;
        setup_post(c, "/v3/watch", body, headers);
        curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, watch_data);
        curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &w);
        curl_easy_setopt(c->curl, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c->curl, CURLOPT_XFERINFOFUNCTION, watch_progress);
        curl_easy_setopt(c->curl, CURLOPT_XFERINFODATA, &w);
        {
                /* The multi interface, so that etcd_client_wakeup() can end a wait at once. */
                CURLM *m = curl_multi_init();
                int running = 1;

                cc = CURLE_OUT_OF_MEMORY;
                if (m && curl_multi_add_handle(m, c->curl) == CURLM_OK) {
                        pthread_mutex_lock(&c->wake_lock);
                        c->watch_multi = m;
                        pthread_mutex_unlock(&c->wake_lock);
                        cc = CURLE_OK;
                        while (running && !atomic_load(stop)) {
                                if (curl_multi_perform(m, &running) != CURLM_OK)
                                        break;
                                if (running)
                                        (void) curl_multi_poll(m, NULL, 0, 1000, NULL);
                        }
                        CURLMsg *msg;
                        int left;
                        while ((msg = curl_multi_info_read(m, &left)))
                                if (msg->msg == CURLMSG_DONE)
                                        cc = msg->data.result;
                        if (running && atomic_load(stop))
                                cc = CURLE_ABORTED_BY_CALLBACK;
                        pthread_mutex_lock(&c->wake_lock);
                        c->watch_multi = NULL;
                        pthread_mutex_unlock(&c->wake_lock);
                        curl_multi_remove_handle(m, c->curl);
                }
                if (m)
                        curl_multi_cleanup(m);
        }
        curl_slist_free_all(headers);
        free(w.line.data);
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
        if (token_refused(status, w.result == -EPROTO ? c->error : NULL))
                c->token = (wipe_free(c->token), NULL);         /* the caller's next watch authenticates again */
        if (w.result != 0)
                return w.result;
        if ((cc == CURLE_ABORTED_BY_CALLBACK || cc == CURLE_WRITE_ERROR) && atomic_load(stop))
                return 0;
        if (cc == CURLE_OK)
                return set_error(c, -ECONNRESET, "watch: etcd closed the stream");
        return set_error(c, curl_errno(cc), "watch %s%s: %s%s", c->base, "/v3/watch",
                         c->curl_error[0] ? c->curl_error : curl_easy_strerror(cc), tls_hint(c, cc, hint, sizeof(hint)));
}

#else /* !HAVE_LIBCURL */

struct etcd_client {
        char error[1];
};

int etcd_client_new(const char *endpoint, const struct etcd_credentials *cred, long timeout_ms,
                    struct etcd_client **ret) {
        (void) endpoint, (void) cred, (void) timeout_ms, (void) ret;
        return -EOPNOTSUPP;
}
struct etcd_client *etcd_client_free(struct etcd_client *c) {
        (void) c;
        return NULL;
}
void etcd_client_wakeup(struct etcd_client *c) {
        (void) c;
}
const char *etcd_last_error(const struct etcd_client *c) {
        (void) c;
        return "ringmaster was built without libcurl (configure --without-etcd)";
}
int etcd_lease_grant(struct etcd_client *c, int ttl_s, int64_t *ret_id) {
        (void) c, (void) ttl_s, (void) ret_id;
        return -EOPNOTSUPP;
}
int etcd_lease_keepalive(struct etcd_client *c, int64_t id, int *ret_ttl_s) {
        (void) c, (void) id, (void) ret_ttl_s;
        return -EOPNOTSUPP;
}
int etcd_lease_revoke(struct etcd_client *c, int64_t id) {
        (void) c, (void) id;
        return -EOPNOTSUPP;
}
int etcd_put(struct etcd_client *c, const char *key, const void *value, size_t len, int64_t lease) {
        (void) c, (void) key, (void) value, (void) len, (void) lease;
        return -EOPNOTSUPP;
}
int etcd_delete_prefix(struct etcd_client *c, const char *prefix, int64_t *ret_deleted) {
        (void) c, (void) prefix, (void) ret_deleted;
        return -EOPNOTSUPP;
}
int etcd_compare_and_swap(struct etcd_client *c, const char *key, const char *expected, const void *value,
                          size_t len, int64_t lease, bool *ret_swapped) {
        (void) c, (void) key, (void) expected, (void) value, (void) len, (void) lease, (void) ret_swapped;
        return -EOPNOTSUPP;
}
int etcd_first_created(struct etcd_client *c, const char *prefix, char **ret_key) {
        (void) c, (void) prefix, (void) ret_key;
        return -EOPNOTSUPP;
}
int etcd_get(struct etcd_client *c, const char *key, char **ret_value, size_t *ret_len) {
        (void) c, (void) key, (void) ret_value, (void) ret_len;
        return -EOPNOTSUPP;
}
int etcd_local_address(struct etcd_client *c, char **ret) {
        (void) c, (void) ret;
        return -EOPNOTSUPP;
}
int etcd_create(struct etcd_client *c, const char *key, const void *value, size_t len, int64_t lease,
                bool *ret_created) {
        (void) c, (void) key, (void) value, (void) len, (void) lease, (void) ret_created;
        return -EOPNOTSUPP;
}
void etcd_kvs_free(struct etcd_kv *kvs, size_t n) {
        (void) n;
        free(kvs);
}
int etcd_range_prefix(struct etcd_client *c, const char *prefix, struct etcd_kv **ret, size_t *ret_n,
                      int64_t *ret_revision) {
        (void) c, (void) prefix, (void) ret, (void) ret_n, (void) ret_revision;
        return -EOPNOTSUPP;
}
int etcd_watch_prefix(struct etcd_client *c, const char *prefix, int64_t start_revision,
                      int (*on_event)(const struct etcd_event *ev, int64_t revision, void *userdata),
                      void (*on_ready)(void *userdata), void *userdata, atomic_bool *stop) {
        (void) c, (void) prefix, (void) start_revision, (void) on_event, (void) on_ready, (void) userdata,
                (void) stop;
        return -EOPNOTSUPP;
}
#endif
