//! One connection's threads: the reader loop and the writer loop.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use cove_core::handshake::{ACK_MAX_LEN, SYN_LEN};
use cove_core::hub::ConnId;
use cove_core::server::{ServerConnection, ServerEvent};
use cove_core::wire::{ErrorCode, HEADER_LEN, MAX_TEXT_LEN};
use tracing::{debug, info, warn};

use super::outq::OutQueue;
use super::pipeline::{feed, gone, wrote};
use super::{Shared, lock};
use crate::{now, to_std, until};

/// The reader side of one connection; starts the writer and joins it at the end.
pub(super) fn run_connection(
    shared: &Arc<Shared>,
    id: ConnId,
    peer: SocketAddr,
    stream: Arc<TcpStream>,
    conn: Arc<Mutex<ServerConnection>>,
    queue: Arc<OutQueue>,
    cut: Arc<AtomicBool>,
) {
    let (done_tx, done_rx) = std::sync::mpsc::sync_channel::<()>(1);
    let spawned = {
        let conn = conn.clone();
        let ws = stream.clone();
        let (shared, queue) = (shared.clone(), queue.clone());
        thread::Builder::new()
            .name(format!("cove-write-{}", id.0))
            .stack_size(shared.thread_stack())
            .spawn(move || run_writer(&shared, id, ws, conn, &queue, done_rx))
    };
    let writer = match spawned {
        Ok(w) => w,
        Err(e) => {
            warn!(conn = id.0, error = %e, "could not start the writer");
            let mut c = lock(&conn);
            c.close(now(), ErrorCode::ServerError);
            let events: Vec<ServerEvent> = std::iter::from_fn(|| c.poll_event()).collect();
            drop(c);
            feed(shared, id, events);
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
    };

    // Sized to the handshake's frames until the handshake is done, then to a whole frame.
    let mut buf = vec![0u8; read_buffer_len(&lock(&conn))];
    let mut filled = 0usize;
    let mut events = Vec::new();
    loop {
        // Arm the core's next timer as the read timeout.
        let deadline = lock(&conn).poll_timeout();
        let wait = deadline.map(until);
        let read = match wait {
            Some(d) if d.is_zero() => None,
            _ => {
                let _ = stream.set_read_timeout(wait.map(|d| d.max(Duration::from_millis(1))));
                Some((&*stream).read(&mut buf[filled..]))
            }
        };
        let now = now();
        let (has_output, closed) = {
            let mut c = lock(&conn);
            match read {
                None => c.handle_timeout(now),
                Some(Ok(0)) => eof(&mut c, &cut, now),
                Some(Ok(n)) => {
                    filled += n;
                    loop {
                        let used = c.handle_input(now, &mut buf[..filled]);
                        events.extend(std::iter::from_fn(|| c.poll_event()));
                        if used == 0 {
                            break;
                        }
                        buf.copy_within(used..filled, 0);
                        filled -= used;
                    }
                    let want = read_buffer_len(&c);
                    if buf.len() < want {
                        buf.resize(want, 0);
                    }
                    if filled == buf.len() && !c.is_closed() {
                        // A frame larger than the buffer: before the handshake is done,
                        // one larger than any handshake frame (a conforming core refuses
                        // every larger frame itself once the buffer is frame-sized).
                        c.close(now, ErrorCode::FrameTooLarge);
                    }
                }
                Some(Err(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    c.handle_timeout(now)
                }
                Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Some(Err(e)) => {
                    debug!(conn = id.0, error = %e, "read failed");
                    eof(&mut c, &cut, now)
                }
            }
            events.extend(std::iter::from_fn(|| c.poll_event()));
            (!c.pending_transmit().is_empty(), c.is_closed())
        };
        if !events.is_empty() {
            log_events(id, peer, &events);
            feed(shared, id, std::mem::take(&mut events));
        }
        if has_output || closed {
            queue.wake();
        }
        if closed {
            break;
        }
    }
    queue.close();
    drain(&stream);
    let _ = done_tx.try_send(());
    let _ = writer.join();
}

/// The largest frame a client sends before the handshake is done: its SYN, its ACK (with
/// the longest name) or a cleartext alert (with the longest text), header included.
pub(super) const MAX_HANDSHAKE_FRAME: usize =
    HEADER_LEN + max(SYN_LEN, max(ACK_MAX_LEN, 3 + MAX_TEXT_LEN));

const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}

/// How much input the server buffers for `c`: before the handshake is done no more than
/// its largest frame, so a socket that never authenticates cannot make the server hold a
/// whole frame's worth; once it is done, a whole frame.
pub(super) fn read_buffer_len(c: &ServerConnection) -> usize {
    if c.is_established() {
        c.min_read_buffer()
    } else {
        MAX_HANDSHAKE_FRAME.min(c.min_read_buffer())
    }
}

/// The peer went away, or the dispatcher cut the connection off (and shut its read side
/// to wake us): close with the right code.
pub(super) fn eof(c: &mut ServerConnection, cut: &AtomicBool, now: cove_core::Instant) {
    if cut.load(Ordering::SeqCst) {
        c.close(now, ErrorCode::SendQueueExceeded);
    } else {
        c.handle_eof(now);
    }
}

pub(super) fn log_events(id: ConnId, peer: SocketAddr, events: &[ServerEvent]) {
    for ev in events {
        match ev {
            ServerEvent::Authenticate { name, mode, .. } => {
                info!(conn = id.0, %peer, %name, ?mode, "handshake complete")
            }
            ServerEvent::Request(r) => debug!(conn = id.0, request = r.kind(), "request"),
            ServerEvent::Closed { code, by_peer } => {
                info!(conn = id.0, %peer, %code, by_peer, "connection closed")
            }
        }
    }
}

/// The writer side of one connection: seal everything queued, write it in one go. The
/// queue counts what is queued or sealed and not yet written: a reply's estimate leaves
/// it only once the reply's sealed bytes are counted instead. A write that makes no
/// progress for `write_timeout` fails, which cuts the client off.
pub(super) fn run_writer(
    shared: &Shared,
    id: ConnId,
    stream: Arc<TcpStream>,
    conn: Arc<Mutex<ServerConnection>>,
    queue: &OutQueue,
    reader_done: Receiver<()>,
) {
    let _ = stream.set_write_timeout(Some(to_std(shared.options.write_timeout)));
    let mut out: Vec<u8> = Vec::new();
    let mut replies = Vec::new();
    let mut write_failed = false;
    loop {
        let taken = queue.wait(&mut replies);
        out.clear();
        let closed = {
            let mut c = lock(&conn);
            let now = now();
            for r in replies.drain(..) {
                c.handle_outgoing(now, &r);
            }
            if taken.shutdown && !c.is_closed() {
                c.close(now, ErrorCode::ShuttingDown);
            }
            if taken.closed && !c.is_closed() {
                // The reader finished without closing.
                c.handle_eof(now);
            }
            out.extend_from_slice(c.pending_transmit());
            c.advance_transmit(out.len());
            c.is_closed()
        };
        // Sealed bytes replace the estimates of what was taken.
        queue.set_held(out.len());
        let written = if out.is_empty() {
            Ok(())
        } else {
            (&*stream).write_all(&out)
        };
        queue.set_held(0);
        if replies.capacity() > 64 {
            replies = Vec::new();
        }
        if let Err(e) = written {
            debug!(conn = id.0, error = %e, "write failed; closing");
            write_failed = true;
            break;
        }
        wrote(shared, id, queue);
        if closed || taken.closed {
            break;
        }
    }
    if write_failed {
        // Nothing more reaches this client: stop routing to it, and let the senders
        // waiting for it go on (its reader closes it once the socket is shut below).
        queue.close();
        let mut st = lock(&shared.state);
        st.routes.remove(&id);
        gone(&mut st, id);
    } else {
        // A lingering close: send FIN after the goodbye and let the reader drain what
        // the peer still sends, so closing never turns into a reset that could destroy
        // the goodbye before the peer reads it.
        let _ = stream.shutdown(Shutdown::Write);
        let _ = reader_done.recv_timeout(LINGER);
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// How long a closing connection waits for the peer to read the goodbye and close.
pub(super) const LINGER: Duration = Duration::from_secs(2);

/// Reads and discards what the peer still sends after the close, until it closes too
/// (or the writer gives up waiting and shuts the socket).
pub(super) fn drain(stream: &TcpStream) {
    let deadline = std::time::Instant::now() + LINGER;
    let mut sink = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match (&*stream).read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::time::Duration;

    use cove_core::crypto::Identity;
    use cove_core::store::MemoryStore;
    use cove_core::wire::{Alert, ErrorCode, FrameType, HEADER_LEN, decode_frame, encode_header};

    use super::MAX_HANDSHAKE_FRAME;
    use crate::server::{Server, ServerOptions};

    /// Sends a SYN header announcing `len` payload bytes, then `sent` bytes of it, and
    /// returns the code of the alert the server closes with.
    fn alert_for_syn(addr: SocketAddr, len: usize, sent: usize) -> Option<ErrorCode> {
        let mut s = TcpStream::connect(addr).unwrap();
        let mut frame = encode_header(FrameType::Syn, u32::try_from(len).unwrap()).to_vec();
        frame.resize(HEADER_LEN + sent, 0);
        s.write_all(&frame).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut got = Vec::new();
        // The server closes (an error such as a reset ends the read too).
        let _ = s.read_to_end(&mut got);
        let (frame, _) = decode_frame(&got, u32::MAX).ok()??;
        assert_eq!(frame.typ, FrameType::Alert);
        Alert::decode(frame.payload).ok().map(|a| a.code)
    }

    #[test]
    fn before_the_handshake_only_a_handshake_frame_is_buffered() {
        let id = Identity::generate(&mut crate::os_rng());
        let mut options = ServerOptions::default();
        // A slow frame must be refused for its size, not by the handshake deadline.
        options.connection.handshake_timeout = cove_core::Duration::from_secs(120);
        let server = Server::bind("127.0.0.1:0", id, MemoryStore::new(), options).unwrap();
        let (addr, handle) = (server.local_addr(), server.handle());
        let thread = server.spawn().unwrap();
        let max = MAX_HANDSHAKE_FRAME - HEADER_LEN;
        // As large as a handshake frame gets: read whole, and refused for its content
        // (version 0).
        let code = alert_for_syn(addr, max, max);
        assert_eq!(code, Some(ErrorCode::UnsupportedVersion));
        // One byte larger (and a frame under the frame limit but far over any handshake
        // frame): refused once the handshake's worth of it has arrived.
        assert_eq!(
            alert_for_syn(addr, max + 1, max + 1),
            Some(ErrorCode::FrameTooLarge)
        );
        assert_eq!(
            alert_for_syn(addr, 60_000, max + 1),
            Some(ErrorCode::FrameTooLarge)
        );
        handle.shutdown();
        thread.join().unwrap().unwrap();
    }
}
