//! A TCP forwarder in front of a replica, so a test can take the replica
//! away from one handle (cut every connection, refuse new ones) and give it
//! back, without stopping the server other tests share.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, Ordering},
};
use tokio::{
    net::{TcpListener, TcpStream},
    task::AbortHandle,
};

/// Forwards `127.0.0.1:<port>` to a server while up.
pub struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<AbortHandle>>>,
    accepting: AbortHandle,
}

impl Proxy {
    /// Start forwarding to `target` (`host:port`).
    pub async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let links = Arc::new(Mutex::new(Vec::new()));
        let accepting = tokio::spawn(accept(listener, target, up.clone(), links.clone()));
        Proxy {
            port,
            up,
            links,
            accepting: accepting.abort_handle(),
        }
    }

    /// `url` with its `host:port` replaced by the proxy's.
    pub fn url(&self, url: &str, target: &str) -> String {
        url.replace(target, &format!("127.0.0.1:{}", self.port))
    }

    /// Cut every forwarded connection and drop new ones at once.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    /// Forward again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accepting.abort();
    }
}

async fn accept(
    listener: TcpListener,
    target: String,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<AbortHandle>>>,
) {
    while let Ok((client, _)) = listener.accept().await {
        if !up.load(Ordering::SeqCst) {
            drop(client);
            continue;
        }
        let target = target.clone();
        let link = tokio::spawn(async move { forward(client, &target).await });
        links.lock().unwrap().push(link.abort_handle());
    }
}

async fn forward(mut client: TcpStream, target: &str) {
    let Ok(mut server) = TcpStream::connect(target).await else {
        return;
    };
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}
