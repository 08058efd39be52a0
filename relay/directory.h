/*
 * directory: the relay side of the key directory (proto/README.md section
 * 7; DESIGN.md section 3), over the pure checks of synod/announce.h and
 * synod/statement.h and the queries of dirstore.h.
 *
 *   Publish            a client's announcement: verified, checked against
 *                      the chain held, countersigned when this relay is
 *                      the user's home, otherwise accepted only with the
 *                      home relay's countersignature; stored, gossiped
 *   LookupRequest      a freshly signed LookupAnswer with the links from
 *                      the asker's pin, their countersignatures and proofs
 *   ProofRequest       ProofList
 *   CountersignRequest the home relay's stored countersignature
 *   GossipAnnouncement from a peer: each link validated as a visitor's
 *                      Publish (home countersignature required), proofs
 *                      verified; both stored and passed on when new
 *   FetchAnnouncements from a peer: answered with a GossipAnnouncement
 *   HeadsSummary       pushed by the accepting side of every federation
 *                      connection when it comes up; the dialling side (the
 *                      link) compares with its own heads and fetches what
 *                      it lacks over the same connection
 *
 * Every change to a user's chain goes through one queue per process, one
 * link at a time, so two links of one user never race each other here; the
 * database's (user, version) key and the conditional insert of
 * dirstore_accept() cover two processes on one database.
 *
 * A conflict (two different announcements of one user and version) is
 * turned into every proof that can be built from the two (announcement,
 * countersignature), stored and gossiped; the user is then frozen: no
 * newer link is accepted here (EEQUIVOCATION).
 */
#ifndef SYNOD_RELAY_DIRECTORY_H
#define SYNOD_RELAY_DIRECTORY_H

#include "server.h"

/* Handles a directory frame on an accepted session (client or peer); the
 * caller keeps and frees f. Returns 0 when f was not a directory frame. */
int dir_session_frame(session_t *s, Synod__V1__Frame *f);

/* A peer's session became ready: push our heads (HeadsSummary). */
void dir_peer_up(session_t *s);

/* A directory frame arrived on our link (HeadsSummary, or the
 * GossipAnnouncement answering a FetchAnnouncements); the caller keeps and
 * frees f. Returns 0 when f was not one. */
int dir_link_frame(link_t *l, Synod__V1__Frame *f);

/* Pushes our heads on l (a HeadsSummary; the peer fetches what it lacks
 * through its own link to us). Called periodically. */
void dir_link_summary(link_t *l);

/* Sends a queued gossip notice (a packed GossipAnnouncement) as a push on
 * l. 0 sent; SYNOD_EAGAIN try later; SYNOD_EPARSE unreadable (drop it);
 * other errors from synod_conn_send. */
int dir_link_push(link_t *l, const uint8_t *body, size_t len);

/* Frees what the directory still holds at exit (after the loop ended). */
void dir_free(server_t *srv);

#endif
