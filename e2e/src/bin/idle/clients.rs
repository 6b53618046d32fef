//! The client process: `n` raw HTTP/1.1 event-stream connections that count heartbeats.
//!
//! Each connection is a task reading into its thread's one buffer (an idle connection holds
//! no buffer of its own); it counts the comment blocks (`:\n\n`) it gets. On the command
//! `COUNT` the process prints `COUNT <heartbeats> <open connections>`.

use std::{
    cell::RefCell,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{net::TcpStream, sync::Semaphore};

use crate::sockets::{BlockSplitter, Dechunker, commands, connect_from, request_stream};

thread_local! {
    static READ_BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; 64 * 1024]);
}

#[derive(Default)]
struct Counts {
    heartbeats: AtomicU64,
    open: AtomicUsize,
    connected: AtomicUsize,
    failed: AtomicUsize,
    first_error: std::sync::Mutex<Option<String>>,
}

/// Runs the client process: connects `n` streams to `addr` (connection `i` from source
/// address `offset + i`), prints `CONNECTED`, then answers `COUNT` until stdin closes.
pub(crate) fn run(addr: SocketAddr, n: usize, offset: usize, sources: usize) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let counts = Arc::new(Counts::default());
        {
            let counts = Arc::clone(&counts);
            commands(move |line| {
                if line == "COUNT" {
                    println!(
                        "COUNT {} {}",
                        counts.heartbeats.load(Ordering::Relaxed),
                        counts.open.load(Ordering::Relaxed)
                    );
                }
            });
        }
        let gate = Arc::new(Semaphore::new(256));
        for i in 0..n {
            let permit = Arc::clone(&gate)
                .acquire_owned()
                .await
                .map_err(|e| e.to_string())?;
            let shared = Arc::clone(&counts);
            tokio::spawn(async move {
                let counts = shared;
                let outcome = async {
                    let mut stream = connect_from(addr, offset + i, sources)
                        .await
                        .map_err(|e| format!("connect: {e}"))?;
                    let rest = request_stream(&mut stream, "/events")
                        .await
                        .map_err(|e| e.to_string())?;
                    drop(permit);
                    counts.connected.fetch_add(1, Ordering::Relaxed);
                    counts.open.fetch_add(1, Ordering::Relaxed);
                    let outcome = read_beats(stream, &rest, &counts).await;
                    counts.open.fetch_sub(1, Ordering::Relaxed);
                    outcome
                }
                .await;
                if let Err(e) = outcome {
                    counts.failed.fetch_add(1, Ordering::Relaxed);
                    counts.first_error.lock().unwrap().get_or_insert(e);
                }
            });
            if counts.failed.load(Ordering::Relaxed) > 0 {
                break;
            }
        }
        let wait = tokio::time::Instant::now() + Duration::from_secs(300);
        while counts.connected.load(Ordering::Relaxed) < n {
            if tokio::time::Instant::now() > wait || counts.failed.load(Ordering::Relaxed) > 0 {
                let error = counts.first_error.lock().unwrap().clone();
                return Err(format!(
                    "{} of {n} connected; {}",
                    counts.connected.load(Ordering::Relaxed),
                    error.unwrap_or_else(|| "timed out".into())
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        println!("CONNECTED");
        // Serve `COUNT` until the parent closes stdin (which exits the process).
        std::future::pending::<()>().await;
        Ok(())
    })
}

async fn read_beats(stream: TcpStream, first: &[u8], counts: &Counts) -> Result<(), String> {
    let mut dechunker = Dechunker::default();
    let mut blocks = BlockSplitter::default();
    let mut feed = |bytes: &[u8]| -> Result<(), String> {
        let mut beats = 0;
        let mut result = Ok(());
        dechunker.feed(bytes, |payload| {
            if result.is_ok() {
                result = blocks.feed(payload, |block| {
                    if block.first() == Some(&b':') {
                        beats += 1;
                    }
                });
            }
        })?;
        counts.heartbeats.fetch_add(beats, Ordering::Relaxed);
        result
    };
    feed(first)?;
    loop {
        stream.readable().await.map_err(|e| e.to_string())?;
        READ_BUFFER.with_borrow_mut(|buffer| match stream.try_read(buffer) {
            Ok(0) => Err("the server closed the stream".to_owned()),
            Ok(read) => feed(&buffer[..read]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e.to_string()),
        })?;
    }
}
