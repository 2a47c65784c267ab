//! Request budgets per account: a rate limit that a reconnect does not refill.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;

use super::{DriverConfig, STRIKE_FORGIVEN_EVERY};
use crate::rate::TokenBucket;
use crate::time::Instant;

/// Acknowledgements are flow control with a budget of their own (per connection).
pub(super) fn is_ack(request: &crate::hub::Request) -> bool {
    use crate::hub::Request;
    matches!(request, Request::AckDm { .. } | Request::AckRoom { .. })
}

/// The request budget of one account, kept across its connections.
#[derive(Debug)]
pub(super) struct AccountBudget {
    pub(super) requests: TokenBucket,
    pub(super) strikes: TokenBucket,
    last_used: Instant,
}

/// Request budgets per account. An entry idle long enough to have refilled is the same
/// as a fresh one, so such entries are forgotten: memory follows the active accounts.
#[derive(Debug, Default)]
pub(super) struct AccountBudgets {
    budgets: BTreeMap<Arc<str>, AccountBudget>,
    /// The table size at which idle entries are next swept.
    sweep_at: usize,
}

impl AccountBudgets {
    pub(super) fn get(
        &mut self,
        now: Instant,
        name: &Arc<str>,
        c: &DriverConfig,
    ) -> &mut AccountBudget {
        if self.budgets.len() >= self.sweep_at.max(64) && !self.budgets.contains_key(name) {
            // Longest refill: the request burst at its rate, or the strikes at one a second.
            let rate = u64::from(c.account_rate_per_sec.max(1));
            let refill_us = (u64::from(c.account_burst) * 1_000_000 / rate)
                .max(u64::from(c.account_strikes) * STRIKE_FORGIVEN_EVERY.micros());
            self.budgets
                .retain(|_, b| now.saturating_since(b.last_used).micros() < refill_us);
            self.sweep_at = self.budgets.len() * 2;
        }
        let budget = self
            .budgets
            .entry(name.clone())
            .or_insert_with(|| AccountBudget {
                requests: TokenBucket::new(now, c.account_rate_per_sec, c.account_burst),
                strikes: TokenBucket::every(now, STRIKE_FORGIVEN_EVERY, c.account_strikes),
                last_used: now,
            });
        budget.last_used = now;
        budget
    }
}
