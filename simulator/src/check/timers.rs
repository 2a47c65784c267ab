//! Busy timers: after `handle_timeout` ran, a state machine must not ask to be woken at
//! once again — an adapter trusting `poll_timeout` would spin.

use cove_core::client::ClientState;
use cove_core::server::ServerConnection;
use cove_core::time::Instant;

use crate::model::{Checked, Violation};

/// Server connection `conn` just handled its timeout at `now`.
pub(crate) fn server_timer_not_busy(conn: u64, sc: &ServerConnection, now: u64) -> Checked {
    let busy = !sc.is_closed() && sc.poll_timeout().is_some_and(|t| t.0 <= now);
    if busy {
        return Err(Violation::new(
            "busy timer",
            format!(
                "server connection {conn} asks to be woken now, but handle_timeout \
                 changes nothing: an adapter trusting poll_timeout spins"
            ),
        ));
    }
    Ok(())
}

/// User `u`'s client (in `state`) handled its timeout at this instant and still asks to
/// be woken now, at `t`.
pub(crate) fn busy_client_timer(u: usize, state: ClientState, t: Instant) -> Checked {
    Err(Violation::new(
        "busy timer",
        format!(
            "u{u}'s client ({state:?}) asks to be woken at {t:?}, but handle_timeout \
             then changes nothing: an adapter trusting poll_timeout spins"
        ),
    ))
}
