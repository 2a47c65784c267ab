use alloc::vec;
use alloc::vec::Vec;

use super::*;

const S: ConnId = ConnId(1);
const T: ConnId = ConnId(2);
const R: ConnId = ConnId(3);
const Q: ConnId = ConnId(4);
/// How long a waited-for connection has to drain.
const STALL: Duration = Duration::from_millis(1_000);

fn at(ms: u64) -> Instant {
    Instant(ms * 1_000)
}

fn d(replies: usize, bytes: usize) -> Depth {
    Depth { replies, bytes }
}

/// Bounds of 100 replies and 1,000 bytes: high water at 50 / 500, low at 25 / 250.
fn flow() -> Flow {
    Flow::new(FlowConfig::for_queue(100, 1_000, STALL))
}

#[test]
fn watermarks_sit_at_half_and_a_quarter_of_the_bounds() {
    let c = FlowConfig::for_queue(100, 1_000, STALL);
    assert_eq!(c.high, d(50, 500));
    assert_eq!(c.low, d(25, 250));
    // Deep at the mark in either unit, not below it.
    assert!(!c.is_deep(d(49, 499)));
    assert!(c.is_deep(d(50, 0)));
    assert!(c.is_deep(d(0, 500)));
    // Drained at the mark in both units, not above it.
    assert!(c.is_drained(d(25, 250)));
    assert!(!c.is_drained(d(26, 0)));
    assert!(!c.is_drained(d(0, 251)));
    // Tiny bounds still have a high-water mark above zero.
    let tiny = FlowConfig::for_queue(1, 1, STALL);
    assert_eq!(tiny.high, d(1, 1));
    assert_eq!(tiny.low, d(0, 0));
    assert!(!tiny.is_deep(d(0, 0)));
    let o = ServerOptions::default();
    assert_eq!(
        o.flow(),
        FlowConfig::for_queue(o.send_queue, o.connection.send_queue_bytes, o.write_timeout)
    );
    assert_eq!(o.flow().stall, Duration::from_secs(10));
}

#[test]
fn a_shallow_queue_pauses_nobody() {
    let mut f = flow();
    assert!(!f.queued(at(0), S, R, d(49, 499)));
    assert!(!f.is_paused(S));
    assert!(!f.is_awaited(R));
    assert_eq!(f.paused(), 0);
    assert_eq!(f.stats().pauses, 0);
}

#[test]
fn a_sender_waits_until_its_recipient_drains_to_low_water() {
    let mut f = flow();
    assert!(f.queued(at(10), S, R, d(50, 0)));
    assert!(f.is_paused(S));
    assert!(f.is_awaited(R));
    assert!(!f.is_paused(R), "the recipient itself goes on reading");
    assert_eq!(f.longest_wait(at(15)), Some(Duration::from_millis(5)));
    let mut resumed = Vec::new();
    // Below high water but above low water: still waiting (hysteresis).
    assert!(!f.drained(at(20), R, d(26, 0), &mut resumed));
    assert!(resumed.is_empty() && f.is_paused(S));
    assert!(f.drained(at(30), R, d(25, 250), &mut resumed));
    assert_eq!(resumed, vec![S]);
    assert!(!f.is_paused(S) && !f.is_awaited(R));
    assert_eq!(f.longest_wait(at(30)), None);
    let st = f.stats();
    assert_eq!((st.pauses, st.resumes), (1, 1));
    assert_eq!(st.paused_time, Duration::from_millis(20));
}

#[test]
fn a_sender_waits_for_every_deep_recipient() {
    let mut f = flow();
    assert!(f.queued(at(0), S, R, d(60, 0)));
    assert!(f.queued(at(1), S, Q, d(0, 600)));
    assert_eq!(f.stats().pauses, 1, "one wait, two recipients");
    let mut resumed = Vec::new();
    assert!(f.drained(at(2), R, d(0, 0), &mut resumed));
    assert!(resumed.is_empty(), "still waiting for Q");
    assert!(f.is_paused(S) && !f.is_awaited(R) && f.is_awaited(Q));
    assert!(f.drained(at(3), Q, d(0, 0), &mut resumed));
    assert_eq!(resumed, vec![S]);
    assert_eq!(f.stats().paused_time, Duration::from_millis(3));
}

#[test]
fn several_senders_wait_for_one_recipient() {
    let mut f = flow();
    assert!(f.queued(at(0), S, R, d(50, 0)));
    assert!(f.queued(at(4), T, R, d(51, 0)));
    assert_eq!(f.paused(), 2);
    assert_eq!(f.longest_wait(at(6)), Some(Duration::from_millis(6)));
    let mut resumed = Vec::new();
    assert!(f.drained(at(10), R, d(0, 0), &mut resumed));
    resumed.sort();
    assert_eq!(resumed, vec![S, T]);
    assert_eq!(f.paused(), 0);
    assert_eq!(f.stats().resumes, 2);
    assert_eq!(f.stats().paused_time, Duration::from_millis(16));
    // Draining again releases nobody twice.
    let mut again = Vec::new();
    assert!(f.drained(at(11), R, d(0, 0), &mut again));
    assert!(again.is_empty());
}

#[test]
fn two_senders_waiting_for_each_other_both_go_on_once_both_drain() {
    // Pausing stops input only: both queues still drain, each release frees the other.
    let mut f = flow();
    assert!(f.queued(at(0), S, T, d(50, 0)));
    assert!(f.queued(at(0), T, S, d(50, 0)));
    let mut resumed = Vec::new();
    assert!(f.drained(at(1), T, d(0, 0), &mut resumed));
    assert_eq!(resumed, vec![S]);
    assert!(f.is_paused(T));
    assert!(f.drained(at(2), S, d(0, 0), &mut resumed));
    assert_eq!(resumed, vec![S, T]);
    assert_eq!(f.paused(), 0);
}

#[test]
fn a_sender_may_wait_for_its_own_queue() {
    let mut f = flow();
    assert!(f.queued(at(0), S, S, d(50, 0)));
    assert!(f.is_paused(S) && f.is_awaited(S));
    let mut resumed = Vec::new();
    assert!(f.drained(at(1), S, d(1, 1), &mut resumed));
    assert_eq!(resumed, vec![S]);
    assert!(!f.is_paused(S) && !f.is_awaited(S));
}

#[test]
fn a_recipient_that_goes_away_releases_its_waiters() {
    // A member who does not read is cut off by the write-stall timeout; the senders
    // waiting for it go on.
    let mut f = flow();
    assert!(f.queued(at(0), S, R, d(90, 0)));
    assert!(f.queued(at(0), T, R, d(90, 0)));
    assert!(f.queued(at(0), T, Q, d(90, 0)));
    let mut resumed = Vec::new();
    f.closed(at(1_000), R, &mut resumed);
    assert_eq!(resumed, vec![S], "T still waits for Q");
    assert!(!f.is_awaited(R) && f.is_paused(T));
    assert_eq!(f.stats().paused_time, Duration::from_millis(1_000));
}

#[test]
fn a_sender_that_goes_away_waits_no_more() {
    let mut f = flow();
    assert!(f.queued(at(0), S, R, d(50, 0)));
    assert!(f.queued(at(0), S, S, d(50, 0)));
    assert!(f.queued(at(0), T, R, d(50, 0)));
    let mut resumed = Vec::new();
    f.closed(at(1), S, &mut resumed);
    assert!(resumed.is_empty(), "a closed sender is not resumed");
    assert!(!f.is_paused(S) && !f.is_awaited(S));
    assert!(f.is_awaited(R), "T still waits for R");
    assert_eq!(f.paused(), 1);
    // R draining now frees T only; S's wait was dropped, not finished.
    assert!(f.drained(at(2), R, d(0, 0), &mut resumed));
    assert_eq!(resumed, vec![T]);
    assert_eq!(f.stats().resumes, 1);
    assert_eq!(f.stats().pauses, 2);
    // Closing a connection nobody knows changes nothing.
    f.closed(at(3), Q, &mut resumed);
    assert_eq!(resumed, vec![T]);
}

#[test]
fn closing_the_only_waiter_forgets_the_recipient() {
    let mut f = flow();
    assert!(f.queued(at(0), S, R, d(50, 0)));
    let mut resumed = Vec::new();
    f.closed(at(1), S, &mut resumed);
    assert!(!f.is_awaited(R));
    assert_eq!(f.paused(), 0);
}

#[test]
fn depths_add_up_without_overflow() {
    assert_eq!(d(1, 2).plus(d(3, 4)), d(4, 6));
    assert_eq!(
        d(usize::MAX, 1).plus(d(1, usize::MAX)),
        d(usize::MAX, usize::MAX)
    );
    assert_eq!(*flow().config(), FlowConfig::for_queue(100, 1_000, STALL));
}

#[test]
fn a_recipient_that_does_not_drain_within_the_stall_time_is_overdue() {
    let mut f = flow();
    assert_eq!(f.deadline(), None);
    assert_eq!(f.overdue(at(1_000_000)), None, "nobody waits");
    assert!(f.queued(at(100), S, R, d(50, 0)));
    // A later waiter does not move the deadline: R has been waited for since 100 ms.
    assert!(f.queued(at(600), T, R, d(60, 0)));
    assert!(f.queued(at(300), S, Q, d(60, 0)));
    assert_eq!(f.deadline(), Some(at(1_100)));
    assert_eq!(f.overdue(at(1_099)), None);
    assert_eq!(f.overdue(at(1_100)), Some(R));
    // Cut off: its waiters stop waiting for it; Q is next.
    let mut resumed = Vec::new();
    f.closed(at(1_100), R, &mut resumed);
    assert_eq!(resumed, vec![T]);
    assert_eq!(f.deadline(), Some(at(1_300)));
    assert_eq!(f.overdue(at(1_200)), None);
    assert_eq!(f.overdue(at(1_300)), Some(Q));
    // Q drains in time after all: its clock stops.
    assert!(f.drained(at(1_250), Q, d(0, 0), &mut resumed));
    assert_eq!(f.deadline(), None);
    assert_eq!(f.overdue(at(5_000)), None);
    // Waited for again later: a fresh clock.
    assert!(f.queued(at(6_000), S, Q, d(50, 0)));
    assert_eq!(f.deadline(), Some(at(7_000)));
}
