/* argon2_kept.c: argon2 hashes and checks whose memory a thread keeps for its next one.
 *
 * Why: a hash at m KiB needs m KiB of fresh memory, and memory that comes fresh from the
 * kernel costs a page fault a page (4,864 at m=19456: 8-10 ms in the kernel a hash, and a
 * process's threads queueing for its memory-map lock). glibc's malloc keeps a freed block
 * for the next request only below its mmap threshold, which grows to at most 32 MiB: at
 * m=32768 and above every hash mapped and faulted its memory again (8,193 faults and 18 ms
 * in the kernel a hash at m=32768, 16,385 and 35 ms at m=65536; measured 2026-12-02). So
 * the block is the thread's own (a pthread key, freed when the thread ends), grown when a
 * hash needs more and otherwise handed to every hash the thread makes: after a thread's
 * first hash, none faults, whatever m is (docs/directory.md, "Passwords").
 *
 * Otherwise these are argon2.c's argon2_hash (encoded) and argon2_verify: the same inputs,
 * the same checks, the same constant-time comparison (argon2_verify_ctx). argon2 wipes the
 * memory before handing it back (core.c, free_memory), so a block kept between hashes holds
 * nothing of the last password.
 */

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "argon2.h"
#include "argon2_kept.h"
#include "core.h"
#include "encoding.h"

struct block {
    uint8_t *memory;
    size_t size;
};

static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int key_failed;

static void release(void *b) {
    struct block *kept = b;
    free(kept->memory);
    free(kept);
}

static void make_key(void) { key_failed = pthread_key_create(&key, release) != 0; }

static int kept_allocate(uint8_t **memory, size_t bytes) {
    struct block *kept;

    if (pthread_once(&once, make_key) != 0 || key_failed) return ARGON2_MEMORY_ALLOCATION_ERROR;
    kept = pthread_getspecific(key);
    if (kept == NULL) {
        kept = calloc(1, sizeof *kept);
        if (kept == NULL || pthread_setspecific(key, kept) != 0) {
            free(kept);
            return ARGON2_MEMORY_ALLOCATION_ERROR;
        }
    }
    if (kept->size < bytes) {
        free(kept->memory); /* wiped by argon2 when the last hash gave it back */
        kept->memory = malloc(bytes);
        kept->size = kept->memory ? bytes : 0;
        if (kept->memory == NULL) return ARGON2_MEMORY_ALLOCATION_ERROR;
    }
    *memory = kept->memory;
    return ARGON2_OK;
}

static void kept_free(uint8_t *memory, size_t bytes) {
    /* kept for the thread's next hash */
    (void)memory;
    (void)bytes;
}

int mims_argon2_hash_encoded(uint32_t t_cost, uint32_t m_cost, uint32_t parallelism,
                             const void *pwd, size_t pwdlen, const void *salt, size_t saltlen,
                             size_t hashlen, char *encoded, size_t encodedlen,
                             argon2_type type) {
    argon2_context ctx;
    uint8_t *out;
    int rc;

    if (pwdlen > ARGON2_MAX_PWD_LENGTH) return ARGON2_PWD_TOO_LONG;
    if (saltlen > ARGON2_MAX_SALT_LENGTH) return ARGON2_SALT_TOO_LONG;
    if (hashlen > ARGON2_MAX_OUTLEN) return ARGON2_OUTPUT_TOO_LONG;
    if (hashlen < ARGON2_MIN_OUTLEN) return ARGON2_OUTPUT_TOO_SHORT;
    out = malloc(hashlen);
    if (out == NULL) return ARGON2_MEMORY_ALLOCATION_ERROR;
    memset(&ctx, 0, sizeof ctx);
    ctx.out = out;
    ctx.outlen = (uint32_t)hashlen;
    ctx.pwd = (uint8_t *)pwd;
    ctx.pwdlen = (uint32_t)pwdlen;
    ctx.salt = (uint8_t *)salt;
    ctx.saltlen = (uint32_t)saltlen;
    ctx.t_cost = t_cost;
    ctx.m_cost = m_cost;
    ctx.lanes = parallelism;
    ctx.threads = parallelism;
    ctx.allocate_cbk = kept_allocate;
    ctx.free_cbk = kept_free;
    ctx.flags = ARGON2_DEFAULT_FLAGS;
    ctx.version = ARGON2_VERSION_NUMBER;
    rc = argon2_ctx(&ctx, type);
    if (rc == ARGON2_OK && encode_string(encoded, encodedlen, &ctx, type) != ARGON2_OK) {
        memset(encoded, 0, encodedlen);
        rc = ARGON2_ENCODING_FAIL;
    }
    clear_internal_memory(out, hashlen);
    free(out);
    return rc;
}

int mims_argon2_verify(const char *encoded, const void *pwd, size_t pwdlen, argon2_type type) {
    argon2_context ctx;
    uint8_t *desired = NULL;
    size_t len;
    int rc;

    if (pwdlen > ARGON2_MAX_PWD_LENGTH) return ARGON2_PWD_TOO_LONG;
    if (encoded == NULL) return ARGON2_DECODING_FAIL;
    len = strlen(encoded);
    if (len > UINT32_MAX) return ARGON2_DECODING_FAIL;
    memset(&ctx, 0, sizeof ctx);
    /* no field can be longer than the encoded string */
    ctx.saltlen = (uint32_t)len;
    ctx.outlen = (uint32_t)len;
    ctx.salt = malloc(ctx.saltlen);
    ctx.out = malloc(ctx.outlen);
    if (ctx.salt == NULL || ctx.out == NULL) {
        rc = ARGON2_MEMORY_ALLOCATION_ERROR;
        goto done;
    }
    ctx.pwd = (uint8_t *)pwd;
    ctx.pwdlen = (uint32_t)pwdlen;
    rc = decode_string(&ctx, encoded, type);
    if (rc != ARGON2_OK) goto done;
    desired = ctx.out; /* the stored hash; the new one gets a buffer of its own */
    ctx.out = malloc(ctx.outlen);
    if (ctx.out == NULL) {
        rc = ARGON2_MEMORY_ALLOCATION_ERROR;
        goto done;
    }
    ctx.allocate_cbk = kept_allocate;
    ctx.free_cbk = kept_free;
    rc = argon2_verify_ctx(&ctx, (char *)desired, type);
done:
    free(ctx.salt);
    free(ctx.out);
    free(desired);
    return rc;
}
