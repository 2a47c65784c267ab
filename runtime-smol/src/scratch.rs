//! The read scratch buffer: one per executor thread, not one per connection.
//!
//! A connection waiting for input must not own a frame-sized buffer: at 64 KiB a frame,
//! 10,000 idle connections would hold 640 MiB for nothing. So each read goes into this
//! thread's scratch buffer inside a single `poll_read` call (a `Pending` read touches no
//! bytes, so nothing is lost), and only the bytes read are appended to the
//! connection's own input buffer, which is empty (and without capacity) while the peer
//! is between frames.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::AsyncRead;

/// Size of each thread's scratch buffer.
const SCRATCH: usize = 64 * 1024;

/// An input buffer that holds at most `cap` bytes is released above this capacity once
/// drained, so a burst of large frames does not pin memory on an idle connection.
const KEEP_CAPACITY: usize = 2048;

thread_local! {
    static BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; SCRATCH].into_boxed_slice());
}

/// Reads from `stream` and appends what arrived to `input`, never letting `input` grow
/// past `cap` bytes. `Ready(Ok(0))` means end of stream (or no room: the caller makes
/// sure there is room).
pub(crate) fn poll_read_append<S: AsyncRead + Unpin>(
    stream: &mut S,
    cx: &mut Context<'_>,
    input: &mut Vec<u8>,
    cap: usize,
) -> Poll<io::Result<usize>> {
    let room = cap.saturating_sub(input.len());
    if room == 0 {
        return Poll::Ready(Ok(0));
    }
    BUF.with(|b| {
        let mut b = b.borrow_mut();
        let n = room.min(b.len());
        match Pin::new(stream).poll_read(cx, &mut b[..n]) {
            Poll::Ready(Ok(got)) => {
                let got = got.min(n);
                input.extend_from_slice(&b[..got]);
                Poll::Ready(Ok(got))
            }
            other => other,
        }
    })
}

/// Drops the first `used` bytes of `input`, releasing its memory once it is empty.
pub(crate) fn consume(input: &mut Vec<u8>, used: usize) {
    if used >= input.len() {
        input.clear();
        if input.capacity() > KEEP_CAPACITY {
            *input = Vec::new();
        }
    } else if used > 0 {
        input.drain(..used);
    }
}
