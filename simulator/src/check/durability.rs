//! Durability: after a restart the hub holds exactly the DM queues the model says were
//! durable — everything committed and not acknowledged durably, nothing else; and no
//! client is told of a change before it is durable ("write-ahead"), so none is lost in a
//! crash ("nothing acked lost", also checked by the model when the crash happens).

use cove_core::hub::{ConnId, Hub};

use crate::model::{Checked, Model, ModelDm, Violation};

/// The restarted `hub` against the model, user by user (`names` in user order). Adds
/// the DMs restored to `restored`.
pub(crate) fn queues_survive_restart<'a>(
    hub: &Hub,
    names: impl Iterator<Item = &'a str>,
    model: &Model,
    restored: &mut u64,
) -> Checked {
    for (u, name) in names.enumerate() {
        let held = hub.queued_for(name);
        let expected = model.queue_len(u);
        *restored += expected as u64;
        if held != expected {
            return Err(Violation::new(
                "durable queue",
                format!("after restart the hub holds {held} DMs for u{u}, {expected} were durable"),
            ));
        }
    }
    Ok(())
}

/// The write-ahead rule, seen from the clients: a reply that confirms a change (an account
/// created, a DM accepted or pushed) reaches a client only once the change is durable, so
/// no crash can take back what a client was told.
///
/// `is_it` picks the DM meant among those with its ID (IDs are reused after a crash).
fn confirmed_dm(
    model: &Model,
    msg_id: u64,
    is_it: impl Fn(&ModelDm) -> bool,
    what: impl Fn() -> String,
) -> Checked {
    match model.dms.get(&msg_id).filter(|dm| is_it(dm)) {
        Some(dm) if !dm.durable => Err(Violation::new(
            "write-ahead",
            format!("{} before it was durable", what()),
        )),
        None if model.lost_dms(msg_id).iter().any(is_it) => Err(Violation::new(
            "nothing acked lost",
            format!(
                "{}, and a server crash lost it (it was never durable)",
                what()
            ),
        )),
        // Unknown DMs are the integrity checks' business.
        _ => Ok(()),
    }
}

/// User `u` (on connection `conn`) was told its DM `msg_id` to user `to` was accepted.
pub(crate) fn dm_acked(model: &Model, u: usize, conn: ConnId, msg_id: u64, to: usize) -> Checked {
    confirmed_dm(
        model,
        msg_id,
        |dm| dm.from == u && dm.to == to && dm.via == conn,
        || format!("u{u} was told its DM {msg_id} to u{to} was accepted"),
    )
}

/// User `u` was shown DM `msg_id` from user `from` with `body`.
pub(crate) fn dm_shown(
    model: &Model,
    u: usize,
    msg_id: u64,
    from: Option<usize>,
    body: &[u8],
) -> Checked {
    confirmed_dm(
        model,
        msg_id,
        |dm| dm.to == u && Some(dm.from) == from && *dm.body == *body,
        || format!("u{u} was shown DM {msg_id}"),
    )
}

/// User `u`'s client logged in (or registered).
pub(crate) fn logged_in(model: &Model, u: usize) -> Checked {
    if model.account_durable(u) {
        return Ok(());
    }
    if model.account_lost(u) {
        return Err(Violation::new(
            "nothing acked lost",
            format!("u{u} was told its account was created, and a server crash lost it"),
        ));
    }
    Err(Violation::new(
        "write-ahead",
        format!("u{u} logged in before its account was durable"),
    ))
}
