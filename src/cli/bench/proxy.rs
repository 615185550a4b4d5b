//! A TCP proxy on loopback that adds a round-trip time to every connection.
//!
//! Each direction of each connection is delayed by half the round trip:
//! a reader thread stamps every chunk it receives with `arrival + rtt / 2`
//! and queues it; a writer thread sends the chunks in order, each once its
//! time has come. A burst of chunks is therefore delayed once, not once per
//! chunk, as on a real network link (latency, not bandwidth).
//!
//! Plain threads with blocking sockets and `std::thread::sleep` are used on
//! purpose: Tokio's timer has a resolution of one millisecond, too coarse to
//! add half of a 1 ms round trip. The threads sleep while they wait, so the
//! proxy costs little CPU.
//!
//! Self-contained (std only) so that tests can include this file directly.

use std::{
    io::{self, Read, Write},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

/// Largest chunk read at once.
const CHUNK: usize = 64 * 1024;

/// A running delaying proxy; dropping it stops accepting connections
/// (connections already open run until either side closes them).
#[derive(Debug)]
pub struct DelayProxy {
    local: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl DelayProxy {
    /// Listen on an ephemeral loopback port and forward every connection to
    /// `upstream`, adding `rtt` to each round trip (half each way).
    pub fn start(upstream: SocketAddr, rtt: Duration) -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let local = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let one_way = rtt / 2;
        thread::Builder::new()
            .name("delay-proxy".into())
            .spawn(move || accept_loop(&listener, upstream, one_way, &stopped))?;
        Ok(Self { local, stop })
    }

    /// The loopback address to connect to instead of the upstream.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        drop(TcpStream::connect(self.local));
    }
}

fn accept_loop(listener: &TcpListener, upstream: SocketAddr, one_way: Duration, stop: &AtomicBool) {
    for client in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        // A connection that cannot be set up is closed; the client sees it.
        drop(connect(client, upstream, one_way));
    }
}

/// Open the upstream connection and start both directions.
fn connect(client: TcpStream, upstream: SocketAddr, one_way: Duration) -> io::Result<()> {
    let server = TcpStream::connect(upstream)?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    pipe(client.try_clone()?, server.try_clone()?, one_way)?;
    pipe(server, client, one_way)
}

/// Forward `from` to `to`, each chunk `delay` after it arrived.
fn pipe(mut from: TcpStream, mut to: TcpStream, delay: Duration) -> io::Result<()> {
    let (queue, chunks) = mpsc::channel::<(Instant, Vec<u8>)>();
    thread::Builder::new()
        .name("delay-proxy-read".into())
        .spawn(move || {
            let mut buffer = vec![0; CHUNK];
            loop {
                match from.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let due = Instant::now() + delay;
                        if queue.send((due, buffer[..n].to_vec())).is_err() {
                            break;
                        }
                    }
                }
            }
            // Dropping the sender lets the writer drain the queue and close.
        })?;
    thread::Builder::new()
        .name("delay-proxy-write".into())
        .spawn(move || {
            for (due, chunk) in chunks {
                let now = Instant::now();
                if due > now {
                    thread::sleep(due - now);
                }
                if to.write_all(&chunk).is_err() {
                    break;
                }
            }
            drop(to.shutdown(Shutdown::Write));
        })?;
    Ok(())
}
