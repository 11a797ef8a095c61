/* SPDX-License-Identifier: MIT */
/* Tensor records: encode/decode round trip, validation, and garbage that must not crash. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rank-launcher.h"
#include "rm_run_layout.h"
#include "rm_worker.h"

static struct rm_tensor_record good(void) {
        struct rm_tensor_record r = {
                .kind = RM_HANDLE_CUDA_IPC,
                .flags = RM_TENSOR_HAS_EVENT,
                .exporter_device = 3,
                .exporter_rank = 2,
                .exporter_pid = 1234,
                .exporter_nonce = 0x1122334455667788ull,
                .dtype = RM_DTYPE_BF16,
                .ndim = 3,
                .shape = { 4, 5, 6 },
                .strides = { 30, 6, 1 },
                .byte_offset = 256,
                .nbytes = 4 * 5 * 6 * 2,
                .alloc_size = 1 << 20,
                .alloc_id = 9,
        };

        for (int i = 0; i < 16; i++)
                r.device_uuid[i] = (uint8_t) (i * 7);
        for (int i = 0; i < 64; i++) {
                r.mem_handle[i] = (unsigned char) i;
                r.event_handle[i] = (unsigned char) (255 - i);
        }
        return r;
}

static void expect_invalid(struct rm_tensor_record r, const char *what) {
        unsigned char buf[RM_TENSOR_RECORD_SIZE];

        if (rm_tensor_record_validate(&r) != -EBADMSG) {
                fprintf(stderr, "record accepted though %s\n", what);
                exit(1);
        }
        CHECK(rm_tensor_record_encode(&r, buf, sizeof(buf)) == -EINVAL);
}

int main(void) {
        unsigned char buf[RM_TENSOR_RECORD_SIZE + 16], copy[RM_TENSOR_RECORD_SIZE];
        struct rm_tensor_record r = good(), back, bad;
        uint64_t span;
        char key[64];
        unsigned long accepted = 0;
        unsigned long iterations = rmtest_env_u64("RMTEST_FUZZ_ITERATIONS", 200000);

        CHECK(RM_TENSOR_RECORD_SIZE <= RM_KV_VALUE_SIZE);

        /* Spans. */
        CHECK(rm_tensor_span(RM_DTYPE_F32, 0, NULL, NULL, &span) == 0 && span == 4);
        CHECK(rm_tensor_span(RM_DTYPE_F32, 2, (int64_t[]) { 3, 4 }, (int64_t[]) { 4, 1 }, &span) == 0 && span == 48);
        CHECK(rm_tensor_span(RM_DTYPE_F32, 2, (int64_t[]) { 3, 4 }, (int64_t[]) { 1, 3 }, &span) == 0 && span == 48);
        CHECK(rm_tensor_span(RM_DTYPE_F16, 2, (int64_t[]) { 3, 0 }, (int64_t[]) { 4, 1 }, &span) == 0 && span == 0);
        CHECK(rm_tensor_span(RM_DTYPE_U8, 1, (int64_t[]) { 10 }, (int64_t[]) { 0 }, &span) == 0 && span == 1);
        CHECK(rm_tensor_span(RM_DTYPE_F32, 1, (int64_t[]) { -1 }, (int64_t[]) { 1 }, &span) == -EINVAL);
        CHECK(rm_tensor_span(RM_DTYPE_F32, 1, (int64_t[]) { 2 }, (int64_t[]) { -1 }, &span) == -EINVAL);
        CHECK(rm_tensor_span(RM_DTYPE_INVALID, 1, (int64_t[]) { 2 }, (int64_t[]) { 1 }, &span) == -EINVAL);
        CHECK(rm_tensor_span((enum rm_dtype) 999, 1, (int64_t[]) { 2 }, (int64_t[]) { 1 }, &span) == -EINVAL);
        CHECK(rm_tensor_span(RM_DTYPE_F32, 9, (int64_t[9]) { 0 }, (int64_t[9]) { 0 }, &span) == -EINVAL);
        CHECK(rm_tensor_span(RM_DTYPE_F64, 2, (int64_t[]) { INT64_MAX, 3 }, (int64_t[]) { INT64_MAX, 1 }, &span) ==
              -EOVERFLOW);

        /* Names and kinds. */
        CHECK(rm_tensor_key("layer0/kv.cache_1", key) == 0 && strcmp(key, "tensor/layer0/kv.cache_1") == 0);
        CHECK(rm_tensor_key("", key) == -EINVAL);
        CHECK(rm_tensor_key("has space", key) == -EINVAL);
        CHECK(rm_tensor_key("0123456789012345678901234567890123456789012345678", key) == -EINVAL);
        CHECK(rm_tensor_key("012345678901234567890123456789012345678901234567", key) == 0);
        {
                enum rm_handle_kind k;

                CHECK(rm_handle_kind_from_string("legacy", &k) == 0 && k == RM_HANDLE_CUDA_IPC);
                CHECK(rm_handle_kind_from_string("vmm-fd", &k) == 0 && k == RM_HANDLE_VMM_FD);
                CHECK(rm_handle_kind_from_string("auto", &k) == 0 && k == RM_HANDLE_AUTO);
                CHECK(rm_handle_kind_from_string("cuda", &k) == -EINVAL);
                CHECK(strcmp(rm_handle_kind_name(RM_HANDLE_VMM_FD), "vmm-fd") == 0);
                CHECK(rm_handle_kind_name((enum rm_handle_kind) 7) == NULL);
        }
        CHECK(rm_dtype_size(RM_DTYPE_BF16) == 2 && rm_dtype_size(RM_DTYPE_F64) == 8);
        CHECK(rm_dtype_size((enum rm_dtype) 100) == 0 && rm_dtype_name((enum rm_dtype) 100) == NULL);

        /* Round trip. */
        CHECK(rm_tensor_record_validate(&r) == 0);
        CHECK(rm_tensor_record_encode(&r, buf, RM_TENSOR_RECORD_SIZE - 1) == -ENOBUFS);
        CHECK(rm_tensor_record_encode(&r, buf, sizeof(buf)) == RM_TENSOR_RECORD_SIZE);
        CHECK(rm_tensor_record_decode(buf, RM_TENSOR_RECORD_SIZE, &back) == 0);
        CHECK(memcmp(&r, &back, sizeof(r)) == 0);
        CHECK(rm_tensor_record_decode(buf, RM_TENSOR_RECORD_SIZE - 1, &back) == -EBADMSG);
        CHECK(rm_tensor_record_decode(buf, RM_TENSOR_RECORD_SIZE + 1, &back) == -EBADMSG);
        CHECK(rm_tensor_record_decode(buf, 3, &back) == -EBADMSG);
        CHECK(rm_tensor_record_decode(buf, 0, &back) == -EBADMSG);
        memcpy(copy, buf, sizeof(copy));
        copy[0] ^= 1;
        CHECK(rm_tensor_record_decode(copy, sizeof(copy), &back) == -EBADMSG);
        memcpy(copy, buf, sizeof(copy));
        copy[4] = 2;                                    /* format version 2 */
        CHECK(rm_tensor_record_decode(copy, sizeof(copy), &back) == -EPROTO);

        /* A VMM record and a tombstone. */
        bad = good();
        bad.kind = RM_HANDLE_VMM_FD;
        bad.fd_token = 42;
        CHECK(rm_tensor_record_encode(&bad, buf, sizeof(buf)) == RM_TENSOR_RECORD_SIZE);
        CHECK(rm_tensor_record_decode(buf, RM_TENSOR_RECORD_SIZE, &back) == 0 && back.fd_token == 42);
        bad = (struct rm_tensor_record) { .flags = RM_TENSOR_WITHDRAWN, .exporter_pid = 1 };
        CHECK(rm_tensor_record_encode(&bad, buf, sizeof(buf)) == RM_TENSOR_RECORD_SIZE);
        CHECK(rm_tensor_record_decode(buf, RM_TENSOR_RECORD_SIZE, &back) == 0 && (back.flags & RM_TENSOR_WITHDRAWN));

        /* Inconsistent records. */
        bad = good(); bad.kind = RM_HANDLE_AUTO; expect_invalid(bad, "kind auto");
        bad = good(); bad.kind = (enum rm_handle_kind) 9; expect_invalid(bad, "unknown kind");
        bad = good(); bad.flags |= 1u << 7; expect_invalid(bad, "unknown flag");
        bad = good(); bad.dtype = RM_DTYPE_INVALID; expect_invalid(bad, "no dtype");
        bad = good(); bad.ndim = 9; expect_invalid(bad, "ndim 9");
        bad = good(); bad.shape[5] = 1; expect_invalid(bad, "a dimension past ndim");
        bad = good(); bad.shape[1] = -5; expect_invalid(bad, "a negative dimension");
        bad = good(); bad.strides[0] = -30; expect_invalid(bad, "a negative stride");
        bad = good(); bad.nbytes += 2; expect_invalid(bad, "nbytes disagrees with the shape");
        bad = good(); bad.byte_offset = bad.alloc_size - 2; expect_invalid(bad, "it ends past the allocation");
        bad = good(); bad.byte_offset = UINT64_MAX - 1; expect_invalid(bad, "offset + size overflows");
        bad = good(); bad.byte_offset = 1; expect_invalid(bad, "a misaligned offset");
        bad = good(); bad.alloc_size = 0; expect_invalid(bad, "an empty allocation");
        bad = good(); bad.exporter_pid = 0; expect_invalid(bad, "no exporter pid");
        bad = good(); bad.exporter_device = -1; expect_invalid(bad, "a negative device");
        bad = good(); bad.shape[0] = INT64_MAX; bad.strides[0] = INT64_MAX; expect_invalid(bad, "the span overflows");

        /* Random corruption of a good record: decode accepts only valid records, never crashes. */
        CHECK(rm_tensor_record_encode(&r, buf, sizeof(buf)) == RM_TENSOR_RECORD_SIZE);
        srand(12345);
        for (unsigned long it = 0; it < iterations; it++) {
                memcpy(copy, buf, sizeof(copy));
                for (int k = 1 + rand() % 4; k > 0; k--) {
                        size_t pos = (size_t) rand() % sizeof(copy);

                        copy[pos] = (it & 1) ? (unsigned char) rand() : copy[pos] ^ (unsigned char) (1u << (rand() % 8));
                }
                if (rm_tensor_record_decode(copy, (size_t) (it % 17 == 0 ? rand() % (int) sizeof(copy) : (int) sizeof(copy)),
                                            &back) == 0) {
                        CHECK(rm_tensor_record_validate(&back) == 0);
                        accepted++;
                }
        }
        printf("%lu corrupted records: %lu still valid (handle or uuid bytes changed), none crashed\n", iterations,
               accepted);
        printf("ok\n");
        return 0;
}
