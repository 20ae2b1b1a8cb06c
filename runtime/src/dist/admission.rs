//! Admission: what a node does with a peer that has just authenticated, given what it already has
//! with that peer. Two nodes keep one connection between them, whoever dialed, so the decision
//! settles the races: both dialing at once, a peer that restarted, a connection one side lost
//! without the other noticing.
//!
//! | this node's state with the peer | decision |
//! | --- | --- |
//! | nothing (never connected, or down) | admit |
//! | dialing it too | the dial of the greater node name wins, as in Erlang's `net_kernel`: if this node's name is greater, the peer's dial loses ([`Status::Simultaneous`]: it waits for ours); otherwise this node abandons its own dial and admits |
//! | connected, and the peer has a new creation | the peer restarted: drop the old connection (everything on it fails as a lost connection), admit |
//! | connected, and the peer's last connection id is the current one | the peer lost this connection (it is half-open here): drop it, admit |
//! | connected otherwise | the peer's dial predates the current connection ([`Status::Stale`]): refuse it; the connection stays |
//!
//! The connection id is a random number the acceptor picks, sent under the handshake's MAC, and
//! each side remembers the last one it had with each peer: that is what tells "I lost our
//! connection" from "I dialed before I knew of it", which the name rule alone cannot.

use super::handshake::Status;

/// What this node has with a peer when the peer's dial authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerState {
    /// No connection and no dial.
    Idle,
    /// This node is dialing the peer.
    Dialing,
    /// Connected, to the peer's incarnation `creation`, by connection `conn_id`.
    Up { creation: u32, conn_id: u64 },
}

/// What to do with the authenticated dial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Admit it.
    Admit,
    /// Abandon this node's own dial, then admit it.
    AbandonDialAndAdmit,
    /// Drop the current connection (its losses reported), then admit it.
    ReplaceAndAdmit,
    /// Decline it with this status; whatever this node has with the peer stays.
    Decline(Status),
}

impl Decision {
    /// The status the `Welcome` carries for this decision.
    pub(crate) fn status(self) -> Status {
        match self {
            Decision::Decline(status) => status,
            _ => Status::Ok,
        }
    }
}

/// Decides on the authenticated dial of the peer named `peer` (incarnation `creation`, whose last
/// connection id with this node is `last_conn`, 0 for none) to this node, named `me`.
pub(crate) fn decide(
    state: PeerState,
    me: &str,
    peer: &str,
    creation: u32,
    last_conn: u64,
) -> Decision {
    match state {
        PeerState::Idle => Decision::Admit,
        PeerState::Dialing if me > peer => Decision::Decline(Status::Simultaneous),
        PeerState::Dialing => Decision::AbandonDialAndAdmit,
        PeerState::Up {
            creation: known, ..
        } if known != creation => Decision::ReplaceAndAdmit,
        PeerState::Up { conn_id, .. } if last_conn == conn_id => Decision::ReplaceAndAdmit,
        PeerState::Up { .. } => Decision::Decline(Status::Stale),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_yet_admits() {
        assert_eq!(decide(PeerState::Idle, "a@h", "b@h", 1, 0), Decision::Admit);
        assert_eq!(
            decide(PeerState::Idle, "a@h", "b@h", 1, 99).status(),
            Status::Ok
        );
    }

    #[test]
    fn of_two_simultaneous_dials_exactly_one_survives_on_both_sides() {
        for (a, b) in [
            ("a@h", "b@h"),
            ("b@h", "a@h"),
            ("n1@10.0.0.1:9", "n1@10.0.0.1:10"),
        ] {
            // Each node is dialing the other and receives the other's dial.
            let at_a = decide(PeerState::Dialing, a, b, 1, 0);
            let at_b = decide(PeerState::Dialing, b, a, 1, 0);
            let survivors = [at_a, at_b]
                .iter()
                .filter(|d| **d == Decision::AbandonDialAndAdmit)
                .count();
            let declined = [at_a, at_b]
                .iter()
                .filter(|d| **d == Decision::Decline(Status::Simultaneous))
                .count();
            assert_eq!((survivors, declined), (1, 1), "{a} and {b}");
            // The surviving connection is the one dialed by the greater name.
            let greater_admits_dial_of = if a > b { at_b } else { at_a };
            assert_eq!(greater_admits_dial_of, Decision::AbandonDialAndAdmit);
        }
    }

    #[test]
    fn a_restarted_peer_replaces_its_old_connection() {
        let up = PeerState::Up {
            creation: 1,
            conn_id: 42,
        };
        assert_eq!(decide(up, "a@h", "b@h", 2, 0), Decision::ReplaceAndAdmit);
    }

    #[test]
    fn a_peer_that_lost_the_connection_gets_a_new_one_and_a_stale_dial_does_not() {
        let up = PeerState::Up {
            creation: 1,
            conn_id: 42,
        };
        // The peer had connection 42 and lost it: half-open here.
        assert_eq!(decide(up, "a@h", "b@h", 1, 42), Decision::ReplaceAndAdmit);
        // A dial that never knew of connection 42 (it raced with it): declined, 42 stays. The
        // name order does not matter here.
        for (me, peer) in [("a@h", "b@h"), ("b@h", "a@h")] {
            let decision = decide(up, me, peer, 1, 7);
            assert_eq!(decision, Decision::Decline(Status::Stale));
            assert_eq!(decide(up, me, peer, 1, 0).status(), Status::Stale);
        }
    }
}
