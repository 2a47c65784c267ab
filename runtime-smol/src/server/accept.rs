//! The accept loop: takes connections and spawns their tasks until the shutdown.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncWrite, Stream, StreamExt};
use smol::{Async, Timer};
use tracing::{error, info, warn};

use super::conn_task::serve_connection;
use super::shutdown::graceful_shutdown;
use super::{Server, ServerError, lock};

impl Server {
    /// Accepts connections on the listener of [`Server::bind`] until
    /// [`ServerHandle::shutdown`](super::ServerHandle::shutdown), then shuts down gracefully. A server made with
    /// [`Server::new`] just waits for the shutdown (serving what
    /// [`ServerHandle::serve`](super::ServerHandle::serve) is given) and then shuts down gracefully. Returns an
    /// error if accepting or the store failed (after shutting down).
    pub async fn run(mut self) -> Result<(), ServerError> {
        match self.listener.take() {
            Some(listener) => {
                let incoming = futures_lite::stream::unfold(listener, |l| async move {
                    let next = l.accept().await.map(|(s, peer)| {
                        let _ = s.get_ref().set_nodelay(true);
                        (TcpConn(s), Some(peer))
                    });
                    Some((next, l))
                });
                self.run_with(incoming).await
            }
            None => {
                self.run_with(futures_lite::stream::pending::<io::Result<(TcpConn, _)>>())
                    .await
            }
        }
    }

    /// Like [`Server::run`], but takes connections from `incoming`: any stream of
    /// accepted connections with the `futures-io` traits (an async-std or tokio-compat
    /// listener, a TLS acceptor, an in-memory pipe). Each is served on a task of the
    /// server's [`Spawn`](crate::Spawn). The end of `incoming` starts the shutdown too.
    pub async fn run_with<St, S>(self, incoming: St) -> Result<(), ServerError>
    where
        St: Stream<Item = io::Result<(S, Option<SocketAddr>)>>,
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let shared = self.handle.shared.clone();
        if let Some(addr) = self.handle.local_addr {
            info!(%addr, "listening");
        }
        // Boxed, so dropping it closes a listener it owns before the shutdown.
        let mut incoming = Box::pin(incoming);
        let mut result = Ok(());
        loop {
            let stop = shared.stop.listen();
            if shared.shutting_down.load(Ordering::SeqCst) {
                break;
            }
            let next = futures_lite::future::or(async { Some(incoming.next().await) }, async {
                stop.await;
                None
            })
            .await;
            match next {
                None => break,
                Some(None) => {
                    info!("no more connections to accept");
                    break;
                }
                Some(Some(Ok((stream, peer)))) => {
                    if shared.shutting_down.load(Ordering::SeqCst) {
                        break;
                    }
                    shared
                        .spawner
                        .spawn(Box::pin(serve_connection(shared.clone(), stream, peer)));
                }
                Some(Some(Err(e))) if is_transient_accept_error(&e) => {
                    // Out of descriptors or the peer gave up: back off briefly, go on.
                    warn!(error = %e, "accept failed");
                    Timer::after(Duration::from_millis(50)).await;
                }
                Some(Some(Err(e))) => {
                    error!(error = %e, "accept failed; stopping");
                    result = Err(ServerError::Io(e));
                    break;
                }
            }
        }
        self.handle.shutdown();
        // New connections are refused from here on.
        drop(incoming);
        drop(self.listener);
        graceful_shutdown(&shared).await;
        if let Some(failure) = lock(&shared.state).store_failure.take() {
            return Err(ServerError::Store(failure));
        }
        result
    }
}

fn is_transient_accept_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    ) || matches!(e.raw_os_error(), Some(23 | 24)) // ENFILE, EMFILE
}

/// An accepted TCP connection whose `close` sends a FIN. (`Async<TcpStream>`'s `close`
/// only flushes, so the peer would see the end only when the socket is dropped.)
struct TcpConn(Async<TcpStream>);

impl AsyncRead for TcpConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TcpConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.0).poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                Poll::Ready(self.0.get_ref().shutdown(std::net::Shutdown::Write))
            }
            other => other,
        }
    }
}
