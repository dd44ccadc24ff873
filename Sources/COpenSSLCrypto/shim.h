#ifndef PLEXOR_COPENSSLCRYPTO_SHIM_H
#define PLEXOR_COPENSSLCRYPTO_SHIM_H
/* HMAC-SHA-256 for verifying the trigger's NOTIFY payloads and the tokens
 * gateways and sites sign. libcrypto comes
 * with libpq (libpq-dev depends on libssl-dev). The low-level SHA-256 calls
 * let a key's two padded blocks be hashed once and copied per message: no
 * algorithm fetch and two compressions fewer per notification. */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <string.h>

typedef struct {
    SHA256_CTX inner;
    SHA256_CTX outer;
} plexor_hmac_sha256_key;

/* Prepares `key` (at most 64 bytes, as the trigger's key is). */
static inline int plexor_hmac_sha256_key_init(plexor_hmac_sha256_key *prepared, const unsigned char *key, size_t length) {
    unsigned char inner[64], outer[64];
    if (length > 64) return 0;
    memset(inner, 0x36, sizeof inner);
    memset(outer, 0x5c, sizeof outer);
    for (size_t i = 0; i < length; i++) {
        inner[i] ^= key[i];
        outer[i] ^= key[i];
    }
    int ok = SHA256_Init(&prepared->inner) && SHA256_Update(&prepared->inner, inner, sizeof inner)
          && SHA256_Init(&prepared->outer) && SHA256_Update(&prepared->outer, outer, sizeof outer);
    OPENSSL_cleanse(inner, sizeof inner);
    OPENSSL_cleanse(outer, sizeof outer);
    return ok;
}

/* HMAC-SHA-256 of `data` into `mac` (32 bytes). */
static inline int plexor_hmac_sha256(const plexor_hmac_sha256_key *key, const void *data, size_t length, unsigned char *mac) {
    SHA256_CTX context = key->inner;
    unsigned char inner[32];
    if (!SHA256_Update(&context, data, length) || !SHA256_Final(inner, &context)) return 0;
    context = key->outer;
    return SHA256_Update(&context, inner, sizeof inner) && SHA256_Final(mac, &context);
}

/* SHA-256 of `data` into `digest` (32 bytes): HMAC keys longer than a block are hashed first. */
static inline int plexor_sha256(const void *data, size_t length, unsigned char *digest) {
    SHA256_CTX context;
    return SHA256_Init(&context) && SHA256_Update(&context, data, length) && SHA256_Final(digest, &context);
}

/* Compares in time that depends only on the length. */
static inline int plexor_equal_secrets(const void *a, const void *b, size_t length) {
    return CRYPTO_memcmp(a, b, length) == 0;
}
#endif
