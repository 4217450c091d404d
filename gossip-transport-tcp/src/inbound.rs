//! Inbound side: the accept loop, capped by a semaphore, and one reader task
//! per connection, feeding the channel `recv` reads.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::codec::{Decoder, LengthDelimitedCodec, LengthDelimitedCodecError};

use crate::stats::inc;
use crate::Shared;

/// After an accept error (out of file descriptors, ...) the loop pauses this
/// long instead of spinning.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Bytes read from a socket at a time (more when a frame needs it).
const READ_CHUNK: usize = 8 * 1024;

/// A received frame and the remote socket address it came from.
pub(crate) type Received = (String, Bytes);

/// Accepts connections until the transport closes; the listener is closed
/// when this returns.
pub(crate) async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    tx: mpsc::Sender<Received>,
) {
    let permits = Arc::new(Semaphore::new(shared.config.max_inbound));
    let cancel = shared.tasks.cancel.clone();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, remote)) => match permits.clone().try_acquire_owned() {
                Ok(permit) => {
                    inc(&shared.stats.inbound_accepted);
                    tracing::debug!(%remote, "tcp: inbound connection accepted");
                    let reader = Reader::new(shared.clone(), stream, remote, tx.clone(), permit);
                    if !shared.tasks.spawn(reader.run()) {
                        break;
                    }
                }
                Err(_) => {
                    inc(&shared.stats.inbound_refused);
                    tracing::debug!(
                        %remote,
                        max_inbound = shared.config.max_inbound,
                        "tcp: inbound connection refused, too many open"
                    );
                    drop(stream);
                }
            },
            Err(e) => {
                inc(&shared.stats.accept_errors);
                tracing::debug!(error = %e, "tcp: accept failed");
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => {}
                }
            }
        }
    }
    tracing::debug!("tcp: accept loop ended, listener closed");
}

/// Reads frames from one inbound connection.
struct Reader {
    shared: Arc<Shared>,
    stream: TcpStream,
    remote: String,
    tx: mpsc::Sender<Received>,
    codec: LengthDelimitedCodec,
    buf: BytesMut,
    /// Bytes of an unfinished frame have been received (the codec may have
    /// consumed its length prefix already, so `buf` can be empty).
    pending: bool,
    _permit: OwnedSemaphorePermit,
}

/// Why a connection ended.
enum End {
    /// Clean end of stream between frames, or the transport closed.
    Done,
    /// End of stream in the middle of a frame.
    Truncated,
    Idle,
    Oversized,
    ReadError(io::Error),
}

impl Reader {
    fn new(
        shared: Arc<Shared>,
        stream: TcpStream,
        remote: SocketAddr,
        tx: mpsc::Sender<Received>,
        permit: OwnedSemaphorePermit,
    ) -> Self {
        let codec = LengthDelimitedCodec::builder()
            .big_endian()
            .length_field_length(4)
            .max_frame_length(shared.config.max_frame_bytes)
            .new_codec();
        Reader {
            shared,
            stream,
            remote: remote.to_string(),
            tx,
            codec,
            buf: BytesMut::with_capacity(READ_CHUNK),
            pending: false,
            _permit: permit,
        }
    }

    async fn run(mut self) {
        let end = self.read_frames().await;
        let stats = &self.shared.stats;
        let partial = self.pending;
        let why = match end {
            End::Done => "closed",
            End::Truncated => "closed in the middle of a frame",
            End::Idle => {
                inc(&stats.inbound_idle_timeout);
                "no complete frame within idle_timeout"
            }
            End::Oversized => {
                inc(&stats.dropped_oversized_frame);
                "length prefix exceeds max_frame_bytes"
            }
            End::ReadError(ref e) => {
                inc(&stats.inbound_read_errors);
                tracing::debug!(remote = %self.remote, error = %e, "tcp: read failed");
                "read failed"
            }
        };
        // An oversized frame is counted above; any other unfinished frame
        // (end of stream, idle, error) is a truncated one.
        if partial && !matches!(end, End::Oversized | End::Done) {
            inc(&stats.dropped_truncated_frame);
        }
        inc(&stats.inbound_closed);
        tracing::debug!(remote = %self.remote, why, "tcp: inbound connection closed");
    }

    async fn read_frames(&mut self) -> End {
        let idle = self.shared.config.idle_timeout;
        let mut deadline = Instant::now() + idle;
        loop {
            match self.codec.decode(&mut self.buf) {
                Ok(Some(frame)) => {
                    self.pending = !self.buf.is_empty();
                    if !self.deliver(frame.freeze()).await {
                        return End::Done;
                    }
                    // From the delivery, not the arrival: time spent waiting
                    // for `recv` to make room is not the peer's idleness.
                    deadline = Instant::now() + idle;
                    continue;
                }
                Ok(None) => {}
                Err(e) if is_oversized(&e) => return End::Oversized,
                Err(e) => return End::ReadError(e),
            }
            if self.buf.capacity() - self.buf.len() < READ_CHUNK / 2 {
                self.buf.reserve(READ_CHUNK);
            }
            let read = tokio::select! {
                biased;
                _ = self.shared.tasks.cancel.cancelled() => return End::Done,
                r = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)) => r,
            };
            match read {
                Err(_elapsed) => return End::Idle,
                Ok(Ok(0)) if self.pending => return End::Truncated,
                Ok(Ok(0)) => return End::Done,
                Ok(Ok(_)) => self.pending = true,
                Ok(Err(e)) => return End::ReadError(e),
            }
        }
    }

    /// Hands a frame to `recv`, waiting for room (which slows this sender
    /// down). Returns false if the transport closed.
    async fn deliver(&mut self, frame: Bytes) -> bool {
        let send = self.tx.send((self.remote.clone(), frame));
        tokio::select! {
            biased;
            _ = self.shared.tasks.cancel.cancelled() => false,
            r = send => r.is_ok(),
        }
    }
}

/// Whether a decode error is the codec's "frame too large".
fn is_oversized(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<LengthDelimitedCodecError>())
}
