/* argon2_kept.h: argon2 hashes and checks whose memory a thread keeps (argon2_kept.c). */
#ifndef MIMS_ARGON2_KEPT_H
#define MIMS_ARGON2_KEPT_H

#include <stddef.h>
#include <stdint.h>

#include "argon2.h"

/* argon2_hash's encoded form (argon2.h), the memory taken from the thread's kept block. */
int mims_argon2_hash_encoded(uint32_t t_cost, uint32_t m_cost, uint32_t parallelism,
                             const void *pwd, size_t pwdlen, const void *salt, size_t saltlen,
                             size_t hashlen, char *encoded, size_t encodedlen,
                             argon2_type type);

/* argon2_verify (argon2.h), the memory taken from the thread's kept block. */
int mims_argon2_verify(const char *encoded, const void *pwd, size_t pwdlen, argon2_type type);

#endif
