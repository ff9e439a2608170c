//! A TCP proxy in front of a real service (S3 emulator, broker) that can
//! be switched to fail the way networks and services fail: answering 503,
//! accepting and never answering, or refusing connections. Switching mode
//! drops the connections open in the old one.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Pass = 0,
    /// Every request gets `503 Service Unavailable` (HTTP services only).
    Http503 = 1,
    /// Connections are accepted and then nothing happens: time-outs.
    Hang = 2,
    /// Connections are closed at once: the service is gone.
    Refuse = 3,
}

pub struct Proxy {
    pub port: u16,
    mode: Arc<AtomicU8>,
    generation: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    /// Connections open now, by id: each is removed when it closes, so a
    /// long run through the proxy does not run out of file descriptors.
    open: Open,
}

type Open = Arc<Mutex<HashMap<u64, TcpStream>>>;

/// Keeps a handle on `s` under a fresh id (to cut it on a mode switch).
fn track(open: &Open, ids: &AtomicU64, s: &TcpStream) -> u64 {
    let id = ids.fetch_add(1, Ordering::Relaxed);
    if let Ok(c) = s.try_clone() {
        open.lock().unwrap().insert(id, c);
    }
    id
}

impl Proxy {
    /// Listens on a free port of 127.0.0.1, forwarding to `upstream`.
    pub fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = Proxy {
            port,
            mode: Arc::new(AtomicU8::new(Mode::Pass as u8)),
            generation: Arc::new(AtomicU64::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
            open: Arc::new(Mutex::new(HashMap::new())),
        };
        let (mode, stop, open) = (proxy.mode.clone(), proxy.stop.clone(), proxy.open.clone());
        std::thread::spawn(move || {
            let ids = AtomicU64::new(0);
            while !stop.load(Ordering::Relaxed) {
                let client = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                let _ = client.set_nonblocking(false);
                let _ = client.set_nodelay(true);
                match mode.load(Ordering::Relaxed) {
                    0 => {
                        let Ok(server) = TcpStream::connect(&upstream) else {
                            continue;
                        };
                        let _ = server.set_nodelay(true);
                        let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone())
                        else {
                            continue;
                        };
                        let a = track(&open, &ids, &client);
                        let b = track(&open, &ids, &server);
                        pipe(client2, server2, (open.clone(), a));
                        pipe(server, client, (open.clone(), b));
                    }
                    1 => {
                        std::thread::spawn(move || answer_503(client));
                    }
                    2 => {
                        track(&open, &ids, &client);
                    }
                    _ => drop(client),
                }
            }
        });
        proxy
    }

    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::Relaxed);
        for (_, c) in self.open.lock().unwrap().drain() {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.set(Mode::Refuse);
    }
}

/// Copies `from` to `to` until either closes; then forgets `from`'s entry
/// in `open`.
fn pipe(mut from: TcpStream, mut to: TcpStream, (open, id): (Open, u64)) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
        open.lock().unwrap().remove(&id);
    });
}

/// Reads one request head (and whatever body came with it) and answers 503.
fn answer_503(mut c: TcpStream) {
    let _ = c.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = vec![0u8; 64 << 10];
    let mut seen = Vec::new();
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    let body = "<Error><Code>ServiceUnavailable</Code></Error>";
    let _ = write!(
        c,
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = c.shutdown(Shutdown::Both);
}
