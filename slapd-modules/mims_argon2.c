/* mims_argon2: slapd's {ARGON2} password scheme on argon2's reference library.
 *
 * Why not OpenLDAP's own module (servers/slapd/pwmods/argon2.c, which the project built
 * against libsodium until 2026-12-02): libsodium maps each hash's memory (19 MiB at
 * m=19456) with mmap and unmaps it after, so every sign-in faults in 4,864 fresh pages
 * (10 of a 24 ms hash spent in the kernel) and slapd's threads queue for the process's
 * memory-map lock; built against libargon2 instead, 2.5.13's module makes argon2i and
 * stores the encoded string's terminating NUL and a stray byte in userPassword. This
 * module hashes in memory each slapd thread keeps for its next hash (argon2_kept.c: no
 * page faults, no map lock, whatever m is), with the reference library's SIMD code for the
 * CPU it runs on (argon2_simd.c), makes argon2id (RFC 9106's recommendation) and stores
 * exactly the encoded string.
 *
 * Compatible with what came before: it checks argon2id, argon2i and argon2d hashes from
 * libsodium, from Debian's module (whose stray bytes after the NUL are ignored) and from
 * argon2-cffi, and takes OpenLDAP's module arguments (m=<KiB> t=<passes> p=<lanes>). The
 * library is built without threads (-DARGON2_NO_THREADS): p lanes are computed one after
 * the other in the bind's own thread (the same hash; slapd's threads already fill the
 * cores).
 *
 * The password is never logged or kept; argon2 wipes its memory at the end of every hash.
 */

#include "portable.h"
#include "ac/string.h"
#include "lber_pvt.h"
#include "lutil.h"

#include <argon2.h>

#include "argon2_kept.h"

#define SALT_LENGTH 16
#define HASH_LENGTH 32
/* Longer than any hash this module or libsodium makes (~100 characters). */
#define MAX_STORED 512

static unsigned long iterations = 3;
static unsigned long memory = 19456;
static unsigned long parallelism = 1;

static const struct berval scheme = BER_BVC("{ARGON2}");

static int scheme_hash(const struct berval *sch, const struct berval *passwd,
                       struct berval *hash, const char **text) {
    unsigned char salt[SALT_LENGTH];
    size_t encoded = argon2_encodedlen(iterations, memory, parallelism, SALT_LENGTH,
                                       HASH_LENGTH, Argon2_id);
    char *p;

    (void)text;
    if (lutil_entropy(salt, sizeof salt)) return LUTIL_PASSWD_ERR;
    p = ber_memalloc(sch->bv_len + encoded);
    if (p == NULL) return LUTIL_PASSWD_ERR;
    AC_MEMCPY(p, sch->bv_val, sch->bv_len);
    if (mims_argon2_hash_encoded(iterations, memory, parallelism, passwd->bv_val,
                                 passwd->bv_len, salt, sizeof salt, HASH_LENGTH,
                                 p + sch->bv_len, encoded, Argon2_id)
        != ARGON2_OK) {
        ber_memfree(p);
        return LUTIL_PASSWD_ERR;
    }
    hash->bv_val = p;
    hash->bv_len = sch->bv_len + strlen(p + sch->bv_len);
    return LUTIL_PASSWD_OK;
}

static int scheme_verify(const struct berval *sch, const struct berval *passwd,
                         const struct berval *cred, const char **text) {
    /* The stored value up to its first NUL, copied so that argon2 reads a terminated
     * string whatever follows it in the attribute value. */
    char stored[MAX_STORED];
    size_t len = 0;
    argon2_type type;

    (void)sch;
    (void)text;
    while (len < passwd->bv_len && passwd->bv_val[len] != '\0') len++;
    if (len >= sizeof stored) return LUTIL_PASSWD_ERR;
    AC_MEMCPY(stored, passwd->bv_val, len);
    stored[len] = '\0';
    if (strncmp(stored, "$argon2id$", 10) == 0) type = Argon2_id;
    else if (strncmp(stored, "$argon2i$", 9) == 0) type = Argon2_i;
    else if (strncmp(stored, "$argon2d$", 9) == 0) type = Argon2_d;
    else return LUTIL_PASSWD_ERR;
    return mims_argon2_verify(stored, cred->bv_val, cred->bv_len, type) == ARGON2_OK
               ? LUTIL_PASSWD_OK
               : LUTIL_PASSWD_ERR;
}

static int argument(const char *arg, unsigned long *value) {
    const char *eq = strchr(arg, '=');
    return eq == NULL || lutil_atoulx(value, eq + 1, 0) != 0 || *value == 0;
}

int init_module(int argc, char *argv[]) {
    int i;

    for (i = 0; i < argc; i++) {
        unsigned long *target;
        switch (argv[i][0]) {
        case 'm': target = &memory; break;
        case 't': target = &iterations; break;
        case 'p': target = &parallelism; break;
        default: return -1;
        }
        if (argument(argv[i], target)) return -1;
    }
    /* argon2's own limits (at least 8 KiB a lane, at least 1 pass), refused at load time
     * rather than at the first password */
    if (memory < 8 * parallelism || parallelism > ARGON2_MAX_LANES
        || memory > ARGON2_MAX_MEMORY || iterations > ARGON2_MAX_TIME)
        return -1;
    return lutil_passwd_add((struct berval *)&scheme, scheme_verify, scheme_hash);
}
