//! `StateFeed`: the desired state for the controller, as a consistent snapshot followed by
//! every committed change in revision order, live (data flow 1).
//!
//! Why nothing is lost or repeated: a write transaction takes its revision first and the
//! next writer cannot take one before it ends, so revisions commit in increasing order
//! (see [`Store::begin_write`]). The snapshot is read in one transaction together with
//! the revision it is consistent at, `R`; afterwards the stream sends exactly the changes
//! with revision > the last one sent, whole revisions at a time. Commits made while the
//! snapshot is being sent are simply read afterwards. The stream wakes on every commit
//! of this process ([`Store::subscribe`]) and also polls, for writes made by other
//! replicas sharing a PostgreSQL database.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::pb::{self, state_feed_server::StateFeed, watch_event::Event};
use super::{authorize, store_status};
use crate::store::{RawChange, Store, StoreError};

/// Objects per `SnapshotObjects` message.
const SNAPSHOT_CHUNK: usize = 256;
/// Change rows read per query.
const CHANGE_BATCH: i64 = 1024;
/// How often a stream polls when nothing woke it.
const POLL: Duration = Duration::from_millis(500);
/// Messages buffered per stream before the reader must catch up.
const STREAM_BUFFER: usize = 32;

/// The `StateFeed` service.
#[derive(Clone, Debug)]
pub struct Feed {
    store: Store,
    stop: watch::Receiver<bool>,
}

impl Feed {
    /// A feed reading `store`; its streams end when `stop` turns true.
    pub fn new(store: Store, stop: watch::Receiver<bool>) -> Feed {
        Feed { store, stop }
    }
}

#[tonic::async_trait]
impl StateFeed for Feed {
    type WatchStateStream = ReceiverStream<Result<pb::WatchEvent, Status>>;

    async fn watch_state(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStateStream>, Status> {
        let caller = authorize(&self.store, request.metadata()).await?;
        let from = request.into_inner().from_revision;
        if from < 0 {
            return Err(Status::invalid_argument("from_revision must not be negative"));
        }
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let (store, stop) = (self.store.clone(), self.stop.clone());
        tracing::info!(user = %caller.user_name, from, "state feed opened");
        tokio::spawn(async move {
            let user = caller.user_name;
            match stream(&store, from, &tx, stop).await {
                Ok(last) => tracing::info!(%user, last, "state feed closed"),
                Err(FeedEnd::Store(e)) => {
                    tracing::error!(%user, error = %e, "state feed failed");
                    let _ = tx.send(Err(store_status(e))).await;
                }
                Err(FeedEnd::Gone) => tracing::info!(%user, "state feed client gone"),
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// Why a stream ended early.
enum FeedEnd {
    /// The client went away.
    Gone,
    /// The database failed.
    Store(StoreError),
}

impl From<StoreError> for FeedEnd {
    fn from(e: StoreError) -> FeedEnd {
        FeedEnd::Store(e)
    }
}

type Sink = mpsc::Sender<Result<pb::WatchEvent, Status>>;

async fn send(tx: &Sink, event: Event) -> Result<(), FeedEnd> {
    tx.send(Ok(pb::WatchEvent { event: Some(event) })).await.map_err(|_| FeedEnd::Gone)
}

/// Sends a snapshot; returns the revision it is consistent at.
async fn send_snapshot(store: &Store, tx: &Sink) -> Result<i64, FeedEnd> {
    let snap = store.snapshot().await?;
    send(tx, Event::SnapshotBegin(pb::SnapshotBegin { revision: snap.revision })).await?;
    let count = snap.objects.len() as u64;
    let mut objects = snap.objects.into_iter().peekable();
    while objects.peek().is_some() {
        let chunk = objects
            .by_ref()
            .take(SNAPSHOT_CHUNK)
            .map(|o| pb::StateObject { kind: o.kind, id: o.id, project_id: o.project_id, json: o.body })
            .collect();
        send(tx, Event::SnapshotObjects(pb::SnapshotObjects { objects: chunk })).await?;
    }
    send(tx, Event::SnapshotEnd(pb::SnapshotEnd { revision: snap.revision, count })).await?;
    tracing::debug!(revision = snap.revision, count, "snapshot sent");
    Ok(snap.revision)
}

/// Sends `changes` (whole revisions, in order) one message per revision; returns the last revision.
async fn send_changes(tx: &Sink, changes: Vec<RawChange>, mut last: i64) -> Result<i64, FeedEnd> {
    let mut current: Option<pb::RevisionChanges> = None;
    for c in changes {
        if current.as_ref().is_some_and(|r| r.revision != c.revision) {
            if let Some(done) = current.take() {
                send(tx, Event::Changes(done)).await?;
            }
        }
        let rev = current.get_or_insert_with(|| pb::RevisionChanges { revision: c.revision, changes: Vec::new() });
        last = c.revision;
        rev.changes.push(pb::Change {
            revision: c.revision,
            seq: c.seq,
            kind: c.kind,
            op: c.op,
            id: c.id,
            project_id: c.project_id,
            json: c.body,
        });
    }
    if let Some(done) = current {
        send(tx, Event::Changes(done)).await?;
    }
    Ok(last)
}

/// Runs one stream until the client goes, the server stops or the database fails;
/// returns the last revision sent.
async fn stream(store: &Store, from: i64, tx: &Sink, mut stop: watch::Receiver<bool>) -> Result<i64, FeedEnd> {
    let mut commits = store.subscribe();
    let current = store.revision().await?;
    let floor = store.log_floor().await?;
    let mut last = if from == 0 || from > current || from < floor { send_snapshot(store, tx).await? } else { from };
    loop {
        if *stop.borrow() {
            return Ok(last);
        }
        // Marked seen before reading: a commit after this point wakes the wait below.
        commits.borrow_and_update();
        let changes = store.changes_after(last, CHANGE_BATCH).await?;
        // Read after the changes: if the log was pruned past `last`, some may be missing.
        if store.log_floor().await? > last {
            tracing::info!(last, "change log pruned past the stream's revision: sending a new snapshot");
            last = send_snapshot(store, tx).await?;
            continue;
        }
        if !changes.is_empty() {
            last = send_changes(tx, changes, last).await?;
            continue;
        }
        tokio::select! {
            r = commits.changed() => {
                if r.is_err() {
                    tokio::time::sleep(POLL).await;
                }
            }
            _ = tokio::time::sleep(POLL) => {}
            _ = tx.closed() => return Err(FeedEnd::Gone),
            r = stop.changed() => {
                if r.is_err() {
                    return Ok(last);
                }
            }
        }
    }
}
