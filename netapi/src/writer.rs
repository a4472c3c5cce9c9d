//! SQLite's one writer, on a thread of its own.
//!
//! SQLite lets one transaction write at a time, and sqlx runs every SQLite connection on a
//! worker thread: each statement is a hand-off to that thread and back. When the two
//! threads sit on different CPUs, each hand-off wakes an idle CPU; on a VM that costs about
//! 50 µs per statement against about 13 µs on one CPU (measured on the 2-vCPU lab VM), and a
//! write transaction of a dozen statements is what every other writer waits for.
//!
//! So, on SQLite, write requests run on this thread: a single-threaded tokio runtime pinned
//! to one CPU (the last one the process may use, when it may use more than one), which also
//! opened the dedicated writer connection, so that connection's sqlx worker thread inherited
//! the same CPU. Readers keep using the pool from the main runtime.

use std::future::Future;
use std::io;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// A pinned thread running a current-thread tokio runtime; stopped on drop.
#[derive(Debug)]
pub struct WriterThread {
    handle: Handle,
    cpu: Option<usize>,
    stop: Option<oneshot::Sender<()>>,
}

impl WriterThread {
    /// Starts the thread.
    pub fn start() -> io::Result<WriterThread> {
        let cpu = core_affinity::get_core_ids().filter(|ids| ids.len() > 1).and_then(|ids| ids.last().copied());
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new().name("netapi-writer".into()).spawn(move || {
            let pinned = cpu.map(core_affinity::set_for_current).unwrap_or(false);
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = handle_tx.send(Err(e));
                    return;
                }
            };
            let _ = handle_tx.send(Ok(rt.handle().clone()));
            tracing::debug!(cpu = ?cpu.map(|c| c.id), pinned, "writer thread started");
            rt.block_on(async {
                let _ = stopped.await;
            });
        })?;
        let handle = handle_rx.recv().map_err(|_| io::Error::other("the writer thread died while starting"))??;
        Ok(WriterThread { handle, cpu: cpu.map(|c| c.id), stop: Some(stop) })
    }

    /// The runtime's handle.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The CPU the thread is pinned to, if any.
    pub fn cpu(&self) -> Option<usize> {
        self.cpu
    }

    /// Runs `fut` on the writer thread and waits for it; `None` if it panicked or the thread stopped.
    pub async fn run<F>(&self, fut: F) -> Option<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self.handle.spawn(fut).await {
            Ok(out) => Some(out),
            Err(e) => {
                tracing::error!(error = %e, "task on the writer thread failed");
                None
            }
        }
    }
}

impl Drop for WriterThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
