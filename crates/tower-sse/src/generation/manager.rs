//! [`Generations`]: start, open and cancel generations over a [`Hub`] and a [`ClaimStore`].

use std::{
    cmp::Ordering as CmpOrdering,
    collections::HashMap,
    fmt,
    future::Future,
    pin::pin,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures_util::future::{Either, select};
use tokio::sync::watch;
use tower_sse_core::{ClaimStore, Event, EventLog, MemoryClaimStore, MemoryLog, ReplayOutcome};

use super::{
    CancelOutcome, CancelReason, GenerationConfig, GenerationError, GenerationStream, Opened,
    Resume, Started, TokenSink,
    record::{Record, Terminal, is_id, json_string, new_id},
    sink::with_sequence_number,
};
use crate::Hub;

/// Resumable generations (LLM answers) over a [`Hub`] and a [`ClaimStore`]; cheap to clone.
///
/// See the [module docs](super) for the model. Every server that shares the hub's log and the
/// store (Redis: `RedisLog` and `RedisClaimStore` on one server) answers alike for every
/// generation, whichever server runs its producer.
pub struct Generations<L: EventLog = MemoryLog, S: ClaimStore = MemoryClaimStore> {
    inner: Arc<Inner<L, S>>,
}

struct Inner<L: EventLog, S: ClaimStore> {
    hub: Hub<L>,
    store: S,
    config: GenerationConfig,
    /// Producers of this process, by generation id: a local cancel reaches them at once.
    local: Mutex<HashMap<String, watch::Sender<Option<CancelReason>>>>,
    running: AtomicUsize,
}

impl<L: EventLog, S: ClaimStore> Clone for Generations<L, S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<L: EventLog, S: ClaimStore> fmt::Debug for Generations<L, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generations")
            .field("config", &self.inner.config)
            .field("running", &self.inner.running.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Generations {
    /// Generations in this process only: a new in-memory hub and store.
    #[must_use]
    pub fn in_memory() -> Self {
        Self::new(
            Hub::new(),
            MemoryClaimStore::new(),
            GenerationConfig::default(),
        )
    }
}

/// Counts a producer from its start to its end.
struct RunningGuard<'a>(&'a AtomicUsize);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<L: EventLog, S: ClaimStore> Generations<L, S> {
    /// Generations whose events go through `hub` (its log holds them) and whose state lives
    /// in `store`. For several servers, use a hub made by
    /// [`Hub::with_live_log`](crate::Hub::with_live_log) over a shared log and a shared
    /// store. The log must retain a whole generation for [`GenerationConfig::retention`]
    /// (count and age).
    #[must_use]
    pub fn new(hub: Hub<L>, store: S, config: GenerationConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                hub,
                store,
                config,
                local: Mutex::default(),
                running: AtomicUsize::new(0),
            }),
        }
    }

    /// The hub the events go through.
    pub fn hub(&self) -> &Hub<L> {
        &self.inner.hub
    }

    /// The store of the generations' state.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// The configuration.
    pub fn config(&self) -> &GenerationConfig {
        &self.inner.config
    }

    /// Producers running in this process.
    pub fn running(&self) -> usize {
        self.inner.running.load(Ordering::Relaxed)
    }

    /// The log topic of generation `id`.
    pub fn topic(&self, id: &str) -> String {
        format!("{}{id}", self.inner.config.namespace)
    }

    fn key(&self, kind: &str, name: &str) -> String {
        format!("{}{kind}/{name}", self.inner.config.namespace)
    }

    /// Starts a generation whose events `producer` writes, on a task of its own, or returns
    /// the generation already started with the same `idempotency_key` (by any server sharing
    /// the store) without running `producer`.
    ///
    /// The returned id names the generation for [`open`](Self::open) and
    /// [`cancel`](Self::cancel). The producer ends the generation by returning: `Ok` appends
    /// `done`, `Err(message)` appends `error` (a panic too).
    ///
    /// # Errors
    ///
    /// [`GenerationError::KeyTooLong`], [`GenerationError::TooManyRunning`], or the store's
    /// or the log's error (nothing was started then).
    pub async fn start<F, Fut>(
        &self,
        idempotency_key: Option<&str>,
        producer: F,
    ) -> Result<Started, GenerationError>
    where
        F: FnOnce(TokenSink<L>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let config = &self.inner.config;
        let idem = match idempotency_key {
            Some(key) if key.len() > config.max_key_len => {
                return Err(GenerationError::KeyTooLong {
                    max: config.max_key_len,
                });
            }
            Some(key) => Some(self.key("key", key)),
            None => None,
        };
        let store = &self.inner.store;
        if let Some(idem) = &idem {
            if let Some(id) = store.get(idem).await.map_err(GenerationError::store)? {
                return Ok(Started { id, created: false });
            }
        }
        let running = self.inner.running.fetch_add(1, Ordering::Relaxed);
        let guard = RunningGuard(&self.inner.running);
        if running >= config.max_running {
            return Err(GenerationError::TooManyRunning {
                limit: config.max_running,
            });
        }
        let id = new_id();
        let topic = self.topic(&id);
        // The marker before any token: a fresh reader resumes after it. It has no data, so a
        // client would not even dispatch it.
        let marker = self
            .inner
            .hub
            .publish(&topic, &Event::new().comment("generation"))
            .await
            .map_err(GenerationError::log)?;
        let record = Record {
            start: marker.id().to_owned(),
            terminal: None,
        };
        let record_key = self.key("record", &id);
        store
            .put(&record_key, &record.encode(), config.retention)
            .await
            .map_err(GenerationError::store)?;
        if let Some(idem) = &idem {
            match store.claim(idem, &id, config.retention).await {
                Ok(None) => {}
                Ok(Some(winner)) => {
                    // Another start won the key meanwhile: this one never existed.
                    let _ = store.remove(&record_key).await;
                    return Ok(Started {
                        id: winner,
                        created: false,
                    });
                }
                Err(e) => {
                    let _ = store.remove(&record_key).await;
                    return Err(GenerationError::store(e));
                }
            }
        }
        let (cancel_tx, cancel_rx) = watch::channel(None);
        lock(&self.inner.local).insert(id.clone(), cancel_tx);
        std::mem::forget(guard); // the driver releases the count
        let this = self.clone();
        let driver_id = id.clone();
        tokio::spawn(async move {
            let _guard = RunningGuard(&this.inner.running);
            this.drive(driver_id, topic, record, idem, cancel_rx, producer)
                .await;
        });
        Ok(Started { id, created: true })
    }

    /// Runs the producer, watches for cancellation and idleness, and writes the terminal
    /// event and record.
    async fn drive<F, Fut>(
        &self,
        id: String,
        topic: String,
        mut record: Record,
        idem: Option<String>,
        mut cancel_rx: watch::Receiver<Option<CancelReason>>,
        producer: F,
    ) where
        F: FnOnce(TokenSink<L>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let config = &self.inner.config;
        let store = &self.inner.store;
        let next = Arc::new(AtomicU64::new(0));
        let sink = TokenSink {
            hub: self.inner.hub.clone(),
            id: id.as_str().into(),
            topic: topic.as_str().into(),
            next: Arc::clone(&next),
            max_events: config.max_events,
        };
        let record_key = self.key("record", &id);
        let cancel_key = self.key("cancel", &id);
        let seen_key = self.key("seen", &id);
        if let Some(idle) = config.idle_cancel {
            // The asker counts as a reader for the first period.
            let _ = store.put(&seen_key, "1", idle).await;
        }
        let mut task = tokio::spawn(producer(sink));
        let refresh_every = config.retention / 3;
        let mut last_refresh = tokio::time::Instant::now();
        let ending = loop {
            let woke = {
                let tick = pin!(tokio::time::sleep(config.watch_interval));
                let changed = pin!(cancel_rx.changed());
                match select(&mut task, select(changed, tick)).await {
                    Either::Left((result, _)) => Either::Left(result),
                    Either::Right((Either::Left(_), _)) => Either::Right(true),
                    Either::Right((Either::Right(_), _)) => Either::Right(false),
                }
            };
            match woke {
                Either::Left(result) => {
                    break match result {
                        Ok(Ok(())) => Ending::Done,
                        Ok(Err(message)) => Ending::Error(message),
                        Err(_) => Ending::Error("the producer panicked".to_owned()),
                    };
                }
                Either::Right(true) => {
                    let reason = cancel_rx.borrow().unwrap_or(CancelReason::Request);
                    break Ending::Cancelled(reason);
                }
                Either::Right(false) => {
                    if matches!(store.get(&cancel_key).await, Ok(Some(_))) {
                        break Ending::Cancelled(CancelReason::Request);
                    }
                    if config.idle_cancel.is_some()
                        && matches!(store.get(&seen_key).await, Ok(None))
                    {
                        break Ending::Cancelled(CancelReason::Idle);
                    }
                    if last_refresh.elapsed() >= refresh_every {
                        last_refresh = tokio::time::Instant::now();
                        let _ = store
                            .put(&record_key, &record.encode(), config.retention)
                            .await;
                        if let Some(idem) = &idem {
                            let _ = store.put(idem, &id, config.retention).await;
                        }
                    }
                }
            }
        };
        if matches!(ending, Ending::Cancelled(_)) {
            task.abort();
            // An append cut short may still land: wait for the task so that nothing follows
            // the terminal event.
            let _ = (&mut task).await;
        }
        let n = next.fetch_add(1, Ordering::Relaxed);
        let (kind, fields) = match &ending {
            Ending::Done => ("done", "\"status\":\"done\"".to_owned()),
            Ending::Error(message) => (
                "error",
                format!("\"status\":\"error\",\"message\":{}", json_string(message)),
            ),
            Ending::Cancelled(reason) => (
                "cancelled",
                format!(
                    "\"status\":\"cancelled\",\"reason\":\"{}\"",
                    reason.as_str()
                ),
            ),
        };
        let event = Event::new()
            .event(kind)
            .expect("no line break")
            .data(with_sequence_number(n, &fields));
        // The terminal event is what ends every reader's stream: retry a failing log a while.
        let mut logged = None;
        for attempt in 0..20u32 {
            match self.inner.hub.publish(&topic, &event).await {
                Ok(event) => {
                    logged = Some(event);
                    break;
                }
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50) * (attempt + 1)).await;
                }
            }
        }
        lock(&self.inner.local).remove(&id);
        let Some(logged) = logged else { return };
        record.terminal = Some(Terminal {
            kind: kind.to_owned(),
            id: logged.id().to_owned(),
            sequence_number: n,
        });
        for _ in 0..20 {
            if store
                .put(&record_key, &record.encode(), config.retention)
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if let Some(idem) = &idem {
            let _ = store.put(idem, &id, config.retention).await;
        }
        let _ = store.remove(&cancel_key).await;
    }

    async fn record(&self, id: &str) -> Result<Record, GenerationError> {
        if !is_id(id) {
            return Err(GenerationError::NotFound);
        }
        let text = self
            .inner
            .store
            .get(&self.key("record", id))
            .await
            .map_err(GenerationError::store)?
            .ok_or(GenerationError::NotFound)?;
        Record::decode(&text).ok_or(GenerationError::NotFound)
    }

    /// Opens generation `id` for a reader at `resume`: the stream of its events after that
    /// position, ending after the terminal event, or [`Opened::Finished`] when the position
    /// is at or after the terminal event (answer `204 No Content`, which tells an
    /// `EventSource` to stop).
    ///
    /// # Errors
    ///
    /// [`GenerationError::NotFound`] for an id that is unknown (never issued, or past its
    /// retention); [`GenerationError::InvalidCursor`] for a `Last-Event-ID` that is not a
    /// position of this generation; the store's or log's error.
    pub async fn open(&self, id: &str, resume: Resume<'_>) -> Result<Opened, GenerationError> {
        let record = self.record(id).await?;
        let topic = self.topic(id);
        let log = self.inner.hub.log();
        let (cursor, skip_through) = match resume {
            Resume::Start => (record.start.clone(), None),
            Resume::AfterSequence(n) => {
                if record
                    .terminal
                    .as_ref()
                    .is_some_and(|t| n >= t.sequence_number)
                {
                    return Ok(Opened::Finished);
                }
                (record.start.clone(), Some(n))
            }
            Resume::AfterId(cursor) if cursor == record.start => (record.start.clone(), None),
            Resume::AfterId(cursor) => {
                if !matches!(
                    log.compare_ids(cursor, &record.start),
                    Some(CmpOrdering::Greater)
                ) {
                    return Err(GenerationError::InvalidCursor);
                }
                if let Some(terminal) = &record.terminal {
                    if matches!(
                        log.compare_ids(cursor, &terminal.id),
                        Some(CmpOrdering::Greater | CmpOrdering::Equal)
                    ) {
                        return Ok(Opened::Finished);
                    }
                }
                let probe = log
                    .read_after(&topic, Some(cursor), 1)
                    .await
                    .map_err(GenerationError::log)?;
                if probe.outcome != ReplayOutcome::Resumed {
                    return Err(GenerationError::InvalidCursor);
                }
                (cursor.to_owned(), None)
            }
        };
        let subscription = self
            .inner
            .hub
            .subscribe(&topic, Some(&cursor))
            .await
            .map_err(GenerationError::log)?;
        let config = &self.inner.config;
        let presence = config
            .idle_cancel
            .filter(|_| record.terminal.is_none())
            .map(|idle| {
                let store = self.clone();
                let key = self.key("seen", id);
                let touch: super::stream::Touch = Arc::new(move || {
                    let store = store.clone();
                    let key = key.clone();
                    tokio::spawn(async move {
                        let _ = store.inner.store.put(&key, "1", idle).await;
                    });
                });
                ((idle / 3).max(Duration::from_millis(1)), touch)
            });
        Ok(Opened::Stream(GenerationStream::new(
            subscription,
            skip_through,
            config.max_batch_bytes,
            config.batch_window,
            config.padding.clone(),
            presence,
        )))
    }

    /// Cancels generation `id`: its producer is stopped (at once on this server; within
    /// [`GenerationConfig::watch_interval`] on another) and the generation ends with a
    /// `cancelled` event. Waits a little for that event to be written.
    ///
    /// # Errors
    ///
    /// [`GenerationError::NotFound`] for an unknown id; the store's error.
    pub async fn cancel(&self, id: &str) -> Result<CancelOutcome, GenerationError> {
        let record = self.record(id).await?;
        if record.terminal.is_some() {
            return Ok(CancelOutcome::AlreadyFinished);
        }
        let config = &self.inner.config;
        self.inner
            .store
            .put(&self.key("cancel", id), "request", config.retention)
            .await
            .map_err(GenerationError::store)?;
        if let Some(sender) = lock(&self.inner.local).get(id) {
            let _ = sender.send(Some(CancelReason::Request));
        }
        let deadline =
            tokio::time::Instant::now() + config.watch_interval * 4 + Duration::from_secs(1);
        while tokio::time::Instant::now() < deadline {
            if let Some(terminal) = self.record(id).await?.terminal {
                return Ok(if terminal.kind == "cancelled" {
                    CancelOutcome::Cancelled
                } else {
                    CancelOutcome::AlreadyFinished
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(CancelOutcome::Requested)
    }
}

enum Ending {
    Done,
    Error(String),
    Cancelled(CancelReason),
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
