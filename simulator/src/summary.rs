//! The counters of one run and their rendering.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Counters of one run.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Simulated users.
    pub clients: usize,
    /// Whether the cheap crypto provider was used.
    pub cheap_crypto: bool,
    /// Rooms created.
    pub rooms: u64,
    /// Room messages the hub stamped.
    pub room_messages: u64,
    /// Room posts clients sent.
    pub room_posts: u64,
    /// Room messages clients were shown (and checked).
    pub room_deliveries: u64,
    /// Room messages shown again to a client that had lost its local state (allowed).
    pub room_reshown_after_state_loss: u64,
    /// Retention gaps announced to clients.
    pub room_gaps: u64,
    /// History pages clients received (and checked).
    pub history_pages: u64,
    /// Invitations clients received.
    pub invitations: u64,
    /// Removals by an admin that reached the removed member.
    pub removals: u64,
    /// Direct messages clients sent.
    pub dms_sent: u64,
    /// Direct messages acknowledged to their sender as delivered or queued.
    pub dms_acked: u64,
    /// Direct messages shown to recipients.
    pub dm_deliveries: u64,
    /// DMs shown again to a client that had lost its local state (allowed).
    pub dms_reshown_after_state_loss: u64,
    /// Queued DMs the hub restored from the store after server restarts.
    pub dms_restored: u64,
    /// Bodies sent at exactly the protocol's largest or one byte less (edge users).
    pub edge_bodies: u64,
    /// Bodies sent one byte over the protocol's largest (edge users).
    pub edge_bodies_over: u64,
    /// Requests clients saw refused as `BodyTooLarge`.
    pub bodies_refused: u64,
    /// DMs clients saw refused as `QueueFull`.
    pub dms_refused_full: u64,
    /// Rooms entered at the user's request (created, joined, direct conversations opened).
    pub joins: u64,
    /// Joins refused because the room was full.
    pub joins_refused_full: u64,
    /// Transport key updates sent (both sides).
    pub key_updates: u64,
    /// Server connections accepted.
    pub connections: u64,
    /// Successful logins and registrations.
    pub logins: u64,
    /// Client connections that closed.
    pub disconnects: u64,
    /// Logouts.
    pub logouts: u64,
    /// Client crashes.
    pub client_crashes: u64,
    /// Server crashes.
    pub server_crashes: u64,
    /// Server crashes that struck while a batch was being made durable.
    pub server_crashes_mid_commit: u64,
    /// Connection resets.
    pub resets: u64,
    /// Partitions.
    pub partitions: u64,
    /// Stalls.
    pub stalls: u64,
    /// Batches the disk made durable.
    pub commits: u64,
    /// Reads of older room messages the disk answered.
    pub loads: u64,
    /// Times a connection's input was left unread because the driver was full.
    pub held_back: u64,
    /// Events processed.
    pub events: u64,
    /// Simulated time at the end, µs.
    pub sim_us: u64,
    /// When the safety phase ended, µs.
    pub safety_end_us: u64,
    /// Time the liveness phase took to converge, µs.
    pub converged_us: u64,
    /// Wall-clock seconds the run took (not part of the trace).
    pub wall_secs: f64,
    /// The trace hash: equal for equal runs.
    pub trace_hash: u64,
    /// End-to-end encryption.
    pub e2ee: E2eeSummary,
}

impl Summary {
    /// Events per wall-clock second.
    pub fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.wall_secs.max(1e-9)
    }

    /// Simulated time over wall-clock time.
    pub fn compression(&self) -> f64 {
        self.sim_us as f64 / 1e6 / self.wall_secs.max(1e-9)
    }

    /// The summary as text, one counter per line.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let provider = if self.cheap_crypto {
            "cheap deterministic (NOT real crypto: --cheap-crypto)"
        } else {
            "real (RustCrypto + dalek)"
        };
        let _ = writeln!(s, "  clients          {}", self.clients);
        let _ = writeln!(s, "  crypto provider  {provider}");
        if self.e2ee.users >= self.clients {
            let _ = writeln!(
                s,
                "  plaintext users  none: every user encrypts end to end (--set e2ee_every=0 for plaintext rooms)"
            );
        } else {
            let _ = writeln!(s, "  rooms created    {}", self.rooms);
            let _ = writeln!(
                s,
                "  room messages    {} stamped, {} shown, {} re-shown after a client lost its state",
                self.room_messages, self.room_deliveries, self.room_reshown_after_state_loss
            );
            let _ = writeln!(
                s,
                "  room extras      {} retention gaps seen, {} history pages, {} invitations, {} removals",
                self.room_gaps, self.history_pages, self.invitations, self.removals
            );
            let _ = writeln!(
                s,
                "  direct messages  {} sent, {} acked, {} shown",
                self.dms_sent, self.dms_acked, self.dm_deliveries
            );
            let _ = writeln!(
                s,
                "  dm recovery      {} restored from the store after restarts, {} re-shown after a client lost its state",
                self.dms_restored, self.dms_reshown_after_state_loss
            );
            let _ = writeln!(
                s,
                "  limits           {} bodies drawn of the largest size or 1 less, {} of 1 byte more; {} refused as too large, {} DMs refused as queue full",
                self.edge_bodies, self.edge_bodies_over, self.bodies_refused, self.dms_refused_full
            );
            let _ = writeln!(
                s,
                "  joins            {} ok, {} refused as full",
                self.joins, self.joins_refused_full
            );
        }
        self.e2ee.render(&mut s);
        let _ = writeln!(s, "  key rotations    {}", self.key_updates);
        let _ = writeln!(
            s,
            "  connections      {} accepted, {} logins, {} closed, {} logouts",
            self.connections, self.logins, self.disconnects, self.logouts
        );
        let _ = writeln!(
            s,
            "  faults           {} client crashes, {} server crashes ({} mid-commit), {} resets, {} partitions, {} stalls",
            self.client_crashes,
            self.server_crashes,
            self.server_crashes_mid_commit,
            self.resets,
            self.partitions,
            self.stalls
        );
        let _ = writeln!(
            s,
            "  disk commits     {} batches, {} reads of older room messages; {} connections held back by a full pipeline",
            self.commits, self.loads, self.held_back
        );
        let _ = writeln!(
            s,
            "  simulated time   {:.1} s (safety {:.1} s, converged {:.1} s after healing)",
            self.sim_us as f64 / 1e6,
            self.safety_end_us as f64 / 1e6,
            self.converged_us as f64 / 1e6
        );
        let _ = writeln!(s, "  events           {}", self.events);
        let _ = writeln!(s, "  wall time        {:.2} s", self.wall_secs);
        let _ = writeln!(s, "  events/s         {:.0}", self.events_per_sec());
        let _ = writeln!(s, "  time compression {:.1}x", self.compression());
        let _ = writeln!(s, "  trace hash       {:016x}", self.trace_hash);
        s
    }
}

/// Counters of the end-to-end encrypted users.
#[derive(Clone, Debug, Default)]
pub struct E2eeSummary {
    /// Encrypted users.
    pub users: usize,
    /// Plaintexts the workload handed to sessions (room and direct messages).
    pub texts: u64,
    /// Application messages encrypted and sent.
    pub messages_encrypted: u64,
    /// Application messages members decrypted (and checked).
    pub decrypted: u64,
    /// Entries from before a member's group began (unreadable by design).
    pub before_join: u64,
    /// Entries unreadable after retention dropped a Commit or Welcome a member needed.
    pub after_gap: u64,
    /// External joins and direct openings accepted while their answer was lost with the
    /// connection (the group never became active: the room is left).
    pub lost_joins: u64,
    /// Rooms left because the member's group could no longer follow them.
    pub left_broken: u64,
    /// Groups published (`InitGroup`).
    pub groups_published: u64,
    /// Direct conversations opened (`OpenDirect` sent).
    pub directs_opened: u64,
    /// `OpenDirect` answered `DirectExists` (the pair's conversation existed).
    pub direct_exists: u64,
    /// Commits sent (joins, removals, updates), not counting adds.
    pub commits_sent: u64,
    /// Commits adding a member (with a Welcome) sent.
    pub adds_sent: u64,
    /// Requests refused as `StaleEpoch` (another Commit won the epoch).
    pub stale_epochs: u64,
    /// `GroupSet`s the hub wrote (groups published and epochs closed).
    pub group_sets: u64,
    /// Rooms entered at the user's request (created, joined, direct conversations opened).
    pub joins: u64,
    /// Removals that reached the removed member.
    pub removed: u64,
    /// Retention gaps encrypted users saw.
    pub gaps: u64,
    /// Groups that became ready (created, joined, opened or welcomed into).
    pub ready: u64,
    /// KeyPackages uploaded.
    pub key_packages: u64,
    /// States persisted.
    pub persists: u64,
    /// Actions the client could not send (connection closing).
    pub actions_unsent: u64,
    /// Removed members' old states watched, entries fed to them, messages they could
    /// read (encrypted before the sender heard of the removal), and states retired once
    /// a Commit removed their leaf.
    pub removed_states: [u64; 4],
    /// Requests, replies, store ops and log lines scanned for the end-to-end canary.
    pub canary_scans: u64,
    /// Failures the sessions reported, by kind.
    pub failures: BTreeMap<String, u64>,
}

impl E2eeSummary {
    fn render(&self, s: &mut String) {
        if self.users == 0 {
            let _ = writeln!(s, "  end-to-end       off (no encrypted users)");
            return;
        }
        let _ = writeln!(
            s,
            "  e2ee users       {}: {} plaintexts sent, {} messages encrypted, {} decrypted",
            self.users, self.texts, self.messages_encrypted, self.decrypted
        );
        let _ = writeln!(
            s,
            "  e2ee groups      {} published, {} direct opened ({} already existed), {} ready, {} rooms entered on request, {} removals",
            self.groups_published,
            self.directs_opened,
            self.direct_exists,
            self.ready,
            self.joins,
            self.removed
        );
        let _ = writeln!(
            s,
            "  e2ee commits     {} sent, {} adds, {} refused as stale, {} epochs closed or groups set; {} key packages",
            self.commits_sent,
            self.adds_sent,
            self.stale_epochs,
            self.group_sets,
            self.key_packages
        );
        let _ = writeln!(
            s,
            "  e2ee unreadable  {} from before a join, {} after a retention gap ({} gaps); {} join answers lost; {} rooms left",
            self.before_join, self.after_gap, self.gaps, self.lost_joins, self.left_broken
        );
        let [states, fed, before, retired] = self.removed_states;
        let _ = writeln!(
            s,
            "  e2ee removed     {states} old states watched, {fed} entries fed, {before} read (sent before the removal was known), {retired} retired"
        );
        let _ = writeln!(
            s,
            "  e2ee canary      {} scans; {} states persisted; {} actions unsent",
            self.canary_scans, self.persists, self.actions_unsent
        );
        if !self.failures.is_empty() {
            let list: Vec<String> = self
                .failures
                .iter()
                .map(|(k, v)| format!("{k} x{v}"))
                .collect();
            let _ = writeln!(s, "  e2ee failures    {}", list.join(", "));
        }
    }
}
