/* fedhpc/psi.h — two-party private set intersection of ids (issue 16, docs/psi.md).
 *
 * Diffie-Hellman PSI (Meadows 1986; Huberman, Franklin, Hogg 1999) over ristretto255, all
 * primitives from libsodium:
 *   H(id)   = crypto_core_ristretto255_from_hash(crypto_generichash_64("fedhpc-psi-v1\0" || id))
 *   party A has a secret scalar a, party B a secret scalar b (crypto_core_ristretto255_scalar_random,
 *   fresh per party object, i.e. per session).
 *   message 1 (each party): its own ids blinded, {H(x)^a}, sorted by their bytes (the order
 *             reveals nothing about the input order).
 *   message 2 (each party): the peer's message-1 points re-blinded with the own scalar, in the
 *             order received: {H(y)^ba}.
 *   Each party compares the doubly blinded values of its own ids (received in message 2, aligned
 *   with its own message 1) with the doubly blinded values of the peer's ids (computed by itself)
 *   and learns which of its own ids are in the intersection.
 *
 * What each party learns (semi-honest peers): the intersection (as indices into its own list) and
 * the size of the peer's set; nothing about the peer's ids outside the intersection (they are
 * seen only as blinded points, hidden under the decisional Diffie-Hellman assumption).
 *
 * Authentication: every message is signed with Ed25519 (crypto_sign_detached) under the sender's
 * signing key; each party is given its own secret key and the peer's public key. A message
 * carries the session id, its type and the sender's role inside the signed bytes, so a
 * modified, truncated, re-ordered, replayed or other-session message is refused with FH_EINPUT
 * and a message naming what failed. Signatures protect against a network attacker; they do not
 * make a malicious peer compute honestly (it could e.g. send a wrong message 2 — see docs/psi.md).
 *
 * Message layout (all integers little-endian):
 *   bytes 0-3    magic "FPSI"
 *   byte  4      version (1)
 *   byte  5      type (1 = blinded set, 2 = re-blinded peer set)
 *   byte  6      sender role (0 = A, 1 = B)
 *   byte  7      0 (reserved)
 *   bytes 8-39   session id (PSI_SESSION_BYTES)
 *   bytes 40-47  count (uint64)
 *   then count x 32-byte ristretto255 points, then a 64-byte Ed25519 signature over all
 *   preceding bytes.
 *
 * Duplicate ids in one party's list are refused (FH_EINPUT naming both positions): the
 * intersection is defined on sets. Ids are NUL-terminated byte strings (may be empty).
 */
#ifndef FEDHPC_PSI_H
#define FEDHPC_PSI_H

#include "fedhpc/common.h"

#include <stddef.h>
#include <stdint.h>

#define PSI_SESSION_BYTES 32 /* session id, the same on both sides, fresh per run     */
#define PSI_PK_BYTES 32      /* Ed25519 public key (crypto_sign_PUBLICKEYBYTES)       */
#define PSI_SK_BYTES 64      /* Ed25519 secret key (crypto_sign_SECRETKEYBYTES)       */
#define PSI_POINT_BYTES 32   /* a ristretto255 point                                  */
#define PSI_HEADER_BYTES 48  /* magic, version, type, role, reserved, session, count  */
#define PSI_SIG_BYTES 64     /* Ed25519 signature                                     */

enum { PSI_ROLE_A = 0, PSI_ROLE_B = 1 };
enum { PSI_MSG_BLINDED = 1, PSI_MSG_REBLINDED = 2 };

typedef struct psi_party psi_party;

/* A fresh Ed25519 signing key pair (pk: PSI_PK_BYTES, sk: PSI_SK_BYTES). */
fh_status psi_keypair(uint8_t *pk, uint8_t *sk);
/* A fresh random session id (PSI_SESSION_BYTES). */
fh_status psi_session_new(uint8_t *session);

/* One party of one PSI session.
 *   out     receives the party (free with psi_party_free)
 *   role    PSI_ROLE_A or PSI_ROLE_B (the two parties must take different roles)
 *   session the session id shared by both parties (PSI_SESSION_BYTES)
 *   my_sk   this party's Ed25519 secret key (PSI_SK_BYTES), signs its messages
 *   peer_pk the peer's Ed25519 public key (PSI_PK_BYTES), verifies the peer's messages
 *   ids, n  this party's ids (NUL-terminated strings; n may be 0); copied as hashes, the caller
 *           keeps ownership
 * Picks a fresh secret scalar. FH_EINPUT on a duplicate id or a bad role. */
fh_status psi_party_new(psi_party **out, int role, const uint8_t *session, const uint8_t *my_sk,
                        const uint8_t *peer_pk, const char *const *ids, size_t n);
void psi_party_free(psi_party *p);

/* Message 1: this party's blinded, sorted set. *msg is malloc'ed (caller frees), *len its size. */
fh_status psi_msg_blinded(psi_party *p, uint8_t **msg, size_t *len);
/* Receive the peer's message 1 (verified: signature, session, type, sender, length, points) and
 * produce message 2 (the peer's points re-blinded, same order) in *reply / *reply_len. */
fh_status psi_recv_blinded(psi_party *p, const uint8_t *msg, size_t len, uint8_t **reply,
                           size_t *reply_len);
/* Receive the peer's message 2 (verified as above, and its count must equal this party's set
 * size); requires that this party has sent message 1 and received the peer's message 1. Computes
 * the intersection. */
fh_status psi_recv_reblinded(psi_party *p, const uint8_t *msg, size_t len);
/* The intersection as ascending indices into this party's id list (valid until psi_party_free);
 * FH_EINPUT if the protocol has not completed. */
fh_status psi_result(const psi_party *p, const size_t **idx, size_t *n);

/* Both parties in one process (tests, `fedhpc psi`): fresh keys and session, the four messages
 * exchanged in memory. ia/na and ib/nb receive malloc'ed ascending index lists into a and b
 * (caller frees). */
fh_status psi_run_local(const char *const *a, size_t na, const char *const *b, size_t nb,
                        size_t **ia, size_t *nia, size_t **ib, size_t *nib);

#endif
