//! The client's end-to-end layer fed arbitrary MLS bytes and server replies: a
//! [`SecureSession`](cove_core::e2ee::session::SecureSession) (through `handle_reply` and
//! the application's commands) and a bare [`E2ee`](cove_core::e2ee::E2ee) (through
//! `handle_room_message` and its other calls), both restored from alice's state in the
//! scripted world (`world.rs`) at the start of every input.
//!
//! Bodies are real MLS messages from the script (Welcomes, Commits, application messages
//! of several epochs, GroupInfos, KeyPackages), what alice herself sent (to echo it back),
//! those with a byte flipped or cut short, or arbitrary bytes; the room, sequence number and
//! sender the server claims are the script's or any.
//!
//! Checked (`harness.rs`):
//! - nothing panics;
//! - every decrypted message is one the script encrypted, from the sender it names: a
//!   flipped, cut, replayed or re-attributed message never yields other plaintext;
//! - every action the session asks for encodes as a client message and would pass the
//!   hub's checks of its MLS headers (an application message is a PrivateMessage of
//!   application data; a Commit's GroupInfo names the same group and the next epoch; a
//!   Welcome is a Welcome);
//! - the state exported after any step restores, and the restored state exports to the
//!   same bytes (checked at each `Restart` and at the end, for both the session and the
//!   bare layer).

mod harness;
mod world;

pub use world::{ALICE, ENTRY_DIRECT, ENTRY_GROUP, NAMES, ROOMS, SECS, World, world};

use arbitrary::Arbitrary;

use crate::arb::{ArbWriter, Bytes, ToArb, decode};

/// Where a body comes from.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum Src {
    /// A scripted room log entry's body.
    Entry(u8),
    /// A scripted GroupInfo.
    GroupInfo(u8),
    /// A scripted KeyPackage.
    KeyPackage(u8),
    /// Something alice sent (a message, a Commit, a GroupInfo, a Welcome), newest first.
    Outbox(u8),
}

impl ToArb for Src {
    fn write(&self, w: &mut ArbWriter) {
        let (i, v) = match self {
            Src::Entry(v) => (0, v),
            Src::GroupInfo(v) => (1, v),
            Src::KeyPackage(v) => (2, v),
            Src::Outbox(v) => (3, v),
        };
        w.variant(i, 4).u8(*v);
    }
}

/// A body.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// As it is.
    Take(Src),
    /// With the byte at `at` (modulo the length) xor-ed with `xor`.
    Flip {
        /// The source.
        src: Src,
        /// Which byte.
        at: u16,
        /// What to xor it with.
        xor: u8,
    },
    /// Its first `len` bytes (modulo the length).
    Cut {
        /// The source.
        src: Src,
        /// How many bytes to keep.
        len: u16,
    },
    /// Any bytes.
    Raw(Bytes),
}

impl ToArb for Body {
    fn write(&self, w: &mut ArbWriter) {
        match self {
            Body::Take(s) => {
                w.variant(0, 4);
                s.write(w);
            }
            Body::Flip { src, at, xor } => {
                w.variant(1, 4);
                src.write(w);
                w.u16(*at).u8(*xor);
            }
            Body::Cut { src, len } => {
                w.variant(2, 4);
                src.write(w);
                w.u16(*len);
            }
            Body::Raw(b) => {
                w.variant(3, 4).bytes(&b.0);
            }
        }
    }
}

/// A sequence number for a room entry.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum Seq {
    /// One past the last one delivered in that room.
    Next,
    /// This one.
    Raw(u64),
}

impl ToArb for Seq {
    fn write(&self, w: &mut ArbWriter) {
        match self {
            Seq::Next => {
                w.variant(0, 2);
            }
            Seq::Raw(s) => {
                w.variant(1, 2).u64(*s);
            }
        }
    }
}

/// A server reply to the session. `req` picks one of the request IDs the session was
/// given (0 = the newest), `room` one of [`ROOMS`], names one of [`NAMES`], `members` is a
/// bit set over [`NAMES`].
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ReplySpec {
    /// A scripted entry, exactly as the server delivers it.
    Scripted(u8),
    Entry {
        room: u8,
        seq: Seq,
        from: u8,
        body: Body,
    },
    Ok {
        req: u8,
    },
    /// `code` picks from the codes the Delivery Service answers with.
    Error {
        req: u8,
        code: u8,
    },
    Joined {
        req: u8,
        room: u8,
        members: u8,
        direct: bool,
    },
    MemberJoined {
        room: u8,
        who: u8,
    },
    MemberLeft {
        room: u8,
        who: u8,
    },
    RoomLeft {
        req: u8,
        room: u8,
    },
    Removed {
        room: u8,
    },
    KeyPackage {
        req: u8,
        who: u8,
        body: Body,
    },
    GroupInfo {
        req: u8,
        room: u8,
        body: Body,
    },
    Low {
        remaining: u8,
    },
}

impl ToArb for ReplySpec {
    fn write(&self, w: &mut ArbWriter) {
        const N: u32 = 12;
        match self {
            ReplySpec::Scripted(i) => {
                w.variant(0, N).u8(*i);
            }
            ReplySpec::Entry {
                room,
                seq,
                from,
                body,
            } => {
                w.variant(1, N).u8(*room);
                seq.write(w);
                w.u8(*from);
                body.write(w);
            }
            ReplySpec::Ok { req } => {
                w.variant(2, N).u8(*req);
            }
            ReplySpec::Error { req, code } => {
                w.variant(3, N).u8(*req).u8(*code);
            }
            ReplySpec::Joined {
                req,
                room,
                members,
                direct,
            } => {
                w.variant(4, N)
                    .u8(*req)
                    .u8(*room)
                    .u8(*members)
                    .bool(*direct);
            }
            ReplySpec::MemberJoined { room, who } => {
                w.variant(5, N).u8(*room).u8(*who);
            }
            ReplySpec::MemberLeft { room, who } => {
                w.variant(6, N).u8(*room).u8(*who);
            }
            ReplySpec::RoomLeft { req, room } => {
                w.variant(7, N).u8(*req).u8(*room);
            }
            ReplySpec::Removed { room } => {
                w.variant(8, N).u8(*room);
            }
            ReplySpec::KeyPackage { req, who, body } => {
                w.variant(9, N).u8(*req).u8(*who);
                body.write(w);
            }
            ReplySpec::GroupInfo { req, room, body } => {
                w.variant(10, N).u8(*req).u8(*room);
                body.write(w);
            }
            ReplySpec::Low { remaining } => {
                w.variant(11, N).u8(*remaining);
            }
        }
    }
}

/// What the application asks of the session.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Command {
    SendText {
        room: u8,
        text: u8,
    },
    SendDirect {
        peer: u8,
        text: u8,
    },
    Join {
        room: u8,
    },
    Leave {
        room: u8,
    },
    Invite {
        room: u8,
        who: u8,
    },
    Remove {
        room: u8,
        who: u8,
    },
    Create {
        private: bool,
    },
    /// Accept `who`'s key as the first `KeyPackage` source's signature key, or zeros.
    AcceptKey {
        who: u8,
        real: bool,
    },
    Login,
}

impl ToArb for Command {
    fn write(&self, w: &mut ArbWriter) {
        const N: u32 = 9;
        match self {
            Command::SendText { room, text } => {
                w.variant(0, N).u8(*room).u8(*text);
            }
            Command::SendDirect { peer, text } => {
                w.variant(1, N).u8(*peer).u8(*text);
            }
            Command::Join { room } => {
                w.variant(2, N).u8(*room);
            }
            Command::Leave { room } => {
                w.variant(3, N).u8(*room);
            }
            Command::Invite { room, who } => {
                w.variant(4, N).u8(*room).u8(*who);
            }
            Command::Remove { room, who } => {
                w.variant(5, N).u8(*room).u8(*who);
            }
            Command::Create { private } => {
                w.variant(6, N).bool(*private);
            }
            Command::AcceptKey { who, real } => {
                w.variant(7, N).u8(*who).bool(*real);
            }
            Command::Login => {
                w.variant(8, N);
            }
        }
    }
}

/// A call on the bare layer.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum LayerOp {
    /// `handle_room_message`.
    Entry {
        room: u8,
        seq: Seq,
        from: u8,
        body: Body,
    },
    /// A scripted entry, as the server delivers it.
    Scripted(u8),
    Accepted {
        room: u8,
    },
    Refused {
        room: u8,
    },
    Encrypt {
        room: u8,
        text: u8,
    },
    Update {
        room: u8,
    },
    Add {
        room: u8,
        package: Body,
    },
    RemoveMember {
        room: u8,
        who: u8,
    },
    JoinExternal {
        room: u8,
        info: Body,
    },
    OpenDirect {
        peer: u8,
        package: Body,
    },
    Bind {
        peer: u8,
        room: u8,
    },
    Cancel {
        peer: u8,
    },
    Forget {
        room: u8,
    },
    Create {
        room: u8,
    },
}

impl ToArb for LayerOp {
    fn write(&self, w: &mut ArbWriter) {
        const N: u32 = 14;
        match self {
            LayerOp::Entry {
                room,
                seq,
                from,
                body,
            } => {
                w.variant(0, N).u8(*room);
                seq.write(w);
                w.u8(*from);
                body.write(w);
            }
            LayerOp::Scripted(i) => {
                w.variant(1, N).u8(*i);
            }
            LayerOp::Accepted { room } => {
                w.variant(2, N).u8(*room);
            }
            LayerOp::Refused { room } => {
                w.variant(3, N).u8(*room);
            }
            LayerOp::Encrypt { room, text } => {
                w.variant(4, N).u8(*room).u8(*text);
            }
            LayerOp::Update { room } => {
                w.variant(5, N).u8(*room);
            }
            LayerOp::Add { room, package } => {
                w.variant(6, N).u8(*room);
                package.write(w);
            }
            LayerOp::RemoveMember { room, who } => {
                w.variant(7, N).u8(*room).u8(*who);
            }
            LayerOp::JoinExternal { room, info } => {
                w.variant(8, N).u8(*room);
                info.write(w);
            }
            LayerOp::OpenDirect { peer, package } => {
                w.variant(9, N).u8(*peer);
                package.write(w);
            }
            LayerOp::Bind { peer, room } => {
                w.variant(10, N).u8(*peer).u8(*room);
            }
            LayerOp::Cancel { peer } => {
                w.variant(11, N).u8(*peer);
            }
            LayerOp::Forget { room } => {
                w.variant(12, N).u8(*room);
            }
            LayerOp::Create { room } => {
                w.variant(13, N).u8(*room);
            }
        }
    }
}

/// One step.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum E2eeOp {
    /// The server sends the session this.
    Reply(ReplySpec),
    /// The application asks the session for this.
    Command(Command),
    /// A call on the bare layer.
    Layer(LayerOp),
    /// Both restart from their exported state (checked to round-trip).
    Restart,
}

impl ToArb for E2eeOp {
    fn write(&self, w: &mut ArbWriter) {
        match self {
            E2eeOp::Reply(r) => {
                w.variant(0, 4);
                r.write(w);
            }
            E2eeOp::Command(c) => {
                w.variant(1, 4);
                c.write(w);
            }
            E2eeOp::Layer(l) => {
                w.variant(2, 4);
                l.write(w);
            }
            E2eeOp::Restart => {
                w.variant(3, 4);
            }
        }
    }
}

/// The whole input.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct E2eeInput {
    /// The steps.
    pub ops: Vec<E2eeOp>,
}

impl ToArb for E2eeInput {
    fn write(&self, w: &mut ArbWriter) {
        self.ops.write(w);
    }
}

/// The client E2EE target: alice's session and bare layer fed a structured sequence.
pub fn e2ee_session(data: &[u8]) {
    let Some(input) = decode::<E2eeInput>(data) else {
        return;
    };
    let mut h = harness::Harness::new();
    for op in input.ops.iter().take(256) {
        h.apply(op);
    }
    h.finish();
}

#[cfg(test)]
mod tests;
