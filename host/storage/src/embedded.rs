//! The single-node store: one redb file, `wssgate.redb` under `data_dir`, served by one thread of its own.
//!
//! Plugins' requests queue to that thread, which takes everything waiting (up to [`BATCH`]) and serves it in one
//! write transaction with one commit — one fsync for the whole batch — and only then answers: an answer to a write
//! means the write is on disk. While a commit is running, new requests gather for the next batch, so the fsyncs per
//! second stay bounded however many plugins write ("group commit"). A batch of reads alone uses a read transaction
//! and never touches the disk's write path.
//!
//! The queue needs no bound of its own: every request comes from a plugin instance, and each instance may have at
//! most `max_storage_requests_per_instance` requests waiting for their answers.
//!
//! Once a second the thread also removes what expired (history entries past their `ttl_secs`, keys past their time
//! to live), a bounded amount per pass, so that expired data does not hold disk and quota forever.

mod history;
mod keys;
mod records;

use crate::{Answer, Health, Namespace, Reply, Request, Store, StoreError, now_ms};
use anyhow::{Context, Result};
use records::{GROUPS, USAGE, Usage, decode, encode};
use redb::{Database, ReadableDatabase, ReadableTable};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The file under `data_dir`.
pub const FILE_NAME: &str = "wssgate.redb";
/// The most requests one transaction serves.
const BATCH: usize = 1024;
/// How often expired data is removed, and how much at most per pass (groups looked at, keys removed).
const SWEEP_EVERY: Duration = Duration::from_secs(1);
const SWEEP_GROUPS: usize = 256;
const SWEEP_ENTRIES: usize = 10_000;
const SWEEP_KEYS: usize = 4096;

/// Requests queued for the thread at most; past it a request is answered `unavailable` (with the per-instance caps
/// this is only reached by very many instances at once, or a disk that stopped keeping up).
const MAX_QUEUED: usize = 65_536;

/// One request, with the route it is for and where its answer goes. A job dropped unanswered (a refused one, or one
/// whose batch panicked) answers `unavailable`, so every request gets exactly one answer.
struct Job {
    space: Arc<Namespace>,
    request: Request,
    reply: Option<Reply>,
}

impl Job {
    fn answer(mut self, answer: Answer) {
        if let Some(reply) = self.reply.take() {
            reply(answer);
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        if let Some(reply) = self.reply.take() {
            reply(self.request.failed(StoreError::Unavailable(
                "the store could not take the request".into(),
            )));
        }
    }
}

/// The single-node store; dropping it serves what is queued, then closes the file.
pub struct Embedded {
    /// The file, shared with the thread: the admin API reads what routes hold in read transactions of its own.
    db: Arc<Database>,
    jobs: Mutex<Option<Sender<Job>>>,
    /// Requests queued and not yet taken by the thread.
    queued: Arc<std::sync::atomic::AtomicUsize>,
    /// Where refused requests go to be answered, by a thread of their own: never inside `submit`.
    refused: Sender<Job>,
    thread: Option<JoinHandle<()>>,
    health: Arc<Mutex<Health>>,
}

impl Embedded {
    /// Opens (or creates) `dir/wssgate.redb`, creating `dir` readable by this user only. Fails, naming the file, when
    /// it cannot be opened — another gateway has it open, or it is not a store's file.
    pub fn open(dir: &Path) -> Result<Embedded> {
        create_private_dir(dir)?;
        let path = dir.join(FILE_NAME);
        let db = Database::create(&path).with_context(|| {
            format!(
                "{}: cannot open the data file (is another gateway using this data_dir?)",
                path.display()
            )
        })?;
        // The gateway user's own, whatever the umask or a folder made by someone else allowed.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).with_context(
                || format!("{}: cannot make the data file private", path.display()),
            )?;
            let folder = std::fs::metadata(dir).map(|m| m.permissions().mode() & 0o077);
            if folder.is_ok_and(|others| others != 0) {
                tracing::warn!(
                    folder = %dir.display(),
                    "the data_dir can be read or entered by other users; the data file itself is private (0600)"
                );
            }
        }
        let health = Arc::new(Mutex::new(Health::Ok));
        let (jobs, queue) = channel();
        let queued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (refused, refusals) = channel::<Job>();
        std::thread::Builder::new()
            .name("wssgate-storage-refusals".into())
            .spawn(move || refusals.into_iter().for_each(drop))
            .context("starting the storage refusals thread")?;
        let db = Arc::new(db);
        let worker = Worker {
            db: db.clone(),
            path,
            health: health.clone(),
            spaces: HashMap::new(),
            sweep_after: None,
            queued: queued.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("wssgate-storage".into())
            .spawn(move || worker.run(queue))
            .context("starting the storage thread")?;
        Ok(Embedded {
            db,
            queued,
            refused,
            jobs: Mutex::new(Some(jobs)),
            thread: Some(thread),
            health,
        })
    }
}

/// Creates `dir` (and its parents) with mode 0700 when missing; an existing folder is left as it is.
fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("{}: cannot create the data_dir", dir.display()))
}

impl Store for Embedded {
    fn submit(&self, space: &Arc<Namespace>, request: Request, reply: Reply) {
        use std::sync::atomic::Ordering;
        let job = Job {
            space: space.clone(),
            request,
            reply: Some(reply),
        };
        let refused = if self.queued.fetch_add(1, Ordering::Relaxed) >= MAX_QUEUED {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            Some(job)
        } else {
            let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
            match jobs.as_ref() {
                Some(jobs) => jobs.send(job).err().map(|e| e.0),
                None => Some(job),
            }
        };
        // A full queue, or a thread that is gone (only while the gateway stops): the job is answered `unavailable`
        // when dropped, on the refusals thread, never inside submit. (If even that thread is gone, it is answered
        // here, the only way left to answer it.)
        if let Some(job) = refused
            && let Err(unsent) = self.refused.send(job)
        {
            drop(unsent.0);
        }
    }

    fn health(&self) -> Health {
        self.health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn usage(&self) -> Vec<(String, crate::Usage)> {
        match read_usage(&self.db) {
            Ok(usage) => usage,
            Err(e) => {
                tracing::warn!(error = %e, "reading what the routes hold from the data file");
                Vec::new()
            }
        }
    }

    fn kind(&self) -> &'static str {
        "file"
    }
}

/// Every route's usage record, as the last commit left it.
fn read_usage(db: &Database) -> Result<Vec<(String, crate::Usage)>, redb::Error> {
    let txn = db.begin_read()?;
    let table = match txn.open_table(USAGE) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    table
        .iter()?
        .map(|item| {
            let (route, record) = item?;
            let usage: Usage = decode(record.value())?;
            Ok((
                route.value().to_owned(),
                crate::Usage {
                    history_groups: usage.groups,
                    history_bytes: usage.history_bytes,
                    keys: usage.keys,
                    key_bytes: usage.key_bytes,
                },
            ))
        })
        .collect()
}

impl Drop for Embedded {
    fn drop(&mut self) {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The storage thread's state.
struct Worker {
    db: Arc<Database>,
    path: PathBuf,
    health: Arc<Mutex<Health>>,
    /// Each route's latest namespace (its caps), as its requests brought them: the sweep needs each route's ttl.
    spaces: HashMap<String, Arc<Namespace>>,
    /// Where the history sweep goes on from: the last group it looked at.
    sweep_after: Option<(String, String)>,
    /// The queue's length, shared with `submit`'s bound.
    queued: Arc<std::sync::atomic::AtomicUsize>,
}

impl Worker {
    fn run(mut self, queue: Receiver<Job>) {
        let mut next_sweep = Instant::now() + SWEEP_EVERY;
        loop {
            let wait = next_sweep.saturating_duration_since(Instant::now());
            let first = match queue.recv_timeout(wait) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => {
                    self.sweep();
                    next_sweep = Instant::now() + SWEEP_EVERY;
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            self.queued
                .fetch_sub(batch.len(), std::sync::atomic::Ordering::Relaxed);
            for job in &batch {
                self.spaces
                    .insert(job.space.route.clone(), job.space.clone());
            }
            // A panic while serving (a bug, or redb's) fails this batch, not the thread: its jobs, dropped
            // unanswered, answer `unavailable`, and the store says it is degraded until a batch succeeds.
            let served =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.serve(&batch)));
            match served {
                Ok(answers) => {
                    for (job, answer) in batch.into_iter().zip(answers) {
                        job.answer(answer);
                    }
                }
                Err(_) => {
                    tracing::error!(file = %self.path.display(), "serving a batch of history and storage requests panicked; they are answered unavailable");
                    self.set_health(Health::Degraded(format!(
                        "{}: serving a batch failed",
                        self.path.display()
                    )));
                }
            }
            // Under steady load the queue is never empty: sweep between batches when it is due.
            if Instant::now() >= next_sweep {
                self.sweep();
                next_sweep = Instant::now() + SWEEP_EVERY;
            }
        }
    }

    /// Serves a batch; a failure of the file answers every request `Unavailable`.
    fn serve(&self, batch: &[Job]) -> Vec<Answer> {
        let writes = batch.iter().any(|j| {
            matches!(
                j.request,
                Request::Append { .. } | Request::Set { .. } | Request::Remove { .. }
            )
        });
        let now = now_ms();
        let served = if writes {
            self.serve_writing(batch, now)
        } else {
            self.serve_reading(batch, now)
        };
        match served {
            Ok(answers) => {
                self.set_health(Health::Ok);
                answers
            }
            Err(e) => {
                let reason = format!("{}: {e}", self.path.display());
                tracing::error!(error = %reason, "the data file failed; requests answered unavailable");
                self.set_health(Health::Degraded(reason.clone()));
                batch
                    .iter()
                    .map(|j| j.request.failed(StoreError::Unavailable(reason.clone())))
                    .collect()
            }
        }
    }

    fn set_health(&self, health: Health) {
        *self.health.lock().unwrap_or_else(|p| p.into_inner()) = health;
    }

    fn serve_writing(&self, batch: &[Job], now: u64) -> Result<Vec<Answer>, redb::Error> {
        let txn = self.db.begin_write()?;
        let answers = {
            let (mut groups, mut entries) = history::open(&txn)?;
            let (mut keys, mut expiry) = keys::open(&txn)?;
            let mut usage_table = txn.open_table(USAGE)?;
            let mut usages: HashMap<&str, Usage> = HashMap::new();
            let mut answers = Vec::with_capacity(batch.len());
            for job in batch {
                let route = job.space.route.as_str();
                if !usages.contains_key(route) {
                    let usage = match usage_table.get(route)? {
                        Some(v) => decode(v.value())?,
                        None => Usage::default(),
                    };
                    usages.insert(route, usage);
                }
                let usage = usages.get_mut(route).expect("inserted above");
                let answer = match (&job.request, &job.space.history, &job.space.storage) {
                    (Request::Append { group, message }, Some(config), _) => {
                        Answer::Appended(history::append(
                            (&mut groups, &mut entries),
                            config,
                            (route, group),
                            usage,
                            message,
                            now,
                        )?)
                    }
                    (
                        Request::Read {
                            group,
                            since,
                            limit,
                        },
                        Some(config),
                        _,
                    ) => Answer::History(Ok(history::read(
                        &groups,
                        &entries,
                        config,
                        (route, group),
                        (since.as_ref(), *limit),
                        now,
                    )?)),
                    (Request::Get { key }, _, Some(_)) => {
                        Answer::Value(Ok(keys::get(&keys, (route, key), now)?))
                    }
                    (
                        Request::Set {
                            key,
                            value,
                            ttl,
                            if_revision,
                        },
                        _,
                        Some(config),
                    ) => Answer::Written(keys::write(
                        (&mut keys, &mut expiry),
                        config,
                        (route, key),
                        usage,
                        (keys::Write::Set { value, ttl: *ttl }, *if_revision),
                        now,
                    )?),
                    (Request::Remove { key, if_revision }, _, Some(config)) => {
                        Answer::Written(keys::write(
                            (&mut keys, &mut expiry),
                            config,
                            (route, key),
                            usage,
                            (keys::Write::Remove, *if_revision),
                            now,
                        )?)
                    }
                    (request, _, _) => not_configured(request),
                };
                answers.push(answer);
            }
            for (route, usage) in usages {
                usage_table.insert(route, encode(&usage).as_slice())?;
            }
            answers
        };
        txn.commit()?;
        Ok(answers)
    }

    fn serve_reading(&self, batch: &[Job], now: u64) -> Result<Vec<Answer>, redb::Error> {
        let txn = self.db.begin_read()?;
        // A file no write has touched yet has no tables: every read finds nothing.
        let tables = match (
            txn.open_table(GROUPS),
            txn.open_table(records::ENTRIES),
            txn.open_table(records::KEYS),
        ) {
            (Ok(g), Ok(e), Ok(k)) => Some((g, e, k)),
            (Err(redb::TableError::TableDoesNotExist(_)), _, _)
            | (_, Err(redb::TableError::TableDoesNotExist(_)), _)
            | (_, _, Err(redb::TableError::TableDoesNotExist(_))) => None,
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return Err(e.into()),
        };
        let mut answers = Vec::with_capacity(batch.len());
        for job in batch {
            let route = job.space.route.as_str();
            let answer = match (
                &job.request,
                &job.space.history,
                &job.space.storage,
                &tables,
            ) {
                (Request::Read { since, .. }, Some(_), _, None) => {
                    Answer::History(Ok(crate::Page {
                        epoch: String::new(),
                        entries: Vec::new(),
                        complete: since.is_none(),
                    }))
                }
                (
                    Request::Read {
                        group,
                        since,
                        limit,
                    },
                    Some(config),
                    _,
                    Some((g, e, _)),
                ) => Answer::History(Ok(history::read(
                    g,
                    e,
                    config,
                    (route, group),
                    (since.as_ref(), *limit),
                    now,
                )?)),
                (Request::Get { .. }, _, Some(_), None) => Answer::Value(Ok(None)),
                (Request::Get { key }, _, Some(_), Some((_, _, k))) => {
                    Answer::Value(Ok(keys::get(k, (route, key), now)?))
                }
                (request, _, _, _) => not_configured(request),
            };
            answers.push(answer);
        }
        Ok(answers)
    }

    /// Removes a bounded amount of expired history and keys.
    fn sweep(&mut self) {
        if self.spaces.is_empty() {
            return;
        }
        let swept =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.sweep_once(now_ms())));
        match swept {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(file = %self.path.display(), error = %e, "removing expired history and keys failed")
            }
            Err(_) => {
                tracing::error!(file = %self.path.display(), "removing expired history and keys panicked")
            }
        }
    }

    fn sweep_once(&mut self, now: u64) -> Result<(), redb::Error> {
        let txn = self.db.begin_write()?;
        {
            let (mut groups, mut entries) = history::open(&txn)?;
            let (mut keys, mut expiry) = keys::open(&txn)?;
            let mut usage_table = txn.open_table(USAGE)?;
            let mut usages: HashMap<String, Usage> = HashMap::new();
            let load =
                |route: &str, usages: &mut HashMap<String, Usage>| -> Result<(), redb::Error> {
                    if !usages.contains_key(route) {
                        let usage = match usage_table.get(route)? {
                            Some(v) => decode(v.value())?,
                            None => Usage::default(),
                        };
                        usages.insert(route.to_owned(), usage);
                    }
                    Ok(())
                };
            for (route, bytes) in keys::sweep((&mut keys, &mut expiry), now, SWEEP_KEYS)? {
                load(&route, &mut usages)?;
                let usage = usages.get_mut(&route).expect("loaded");
                usage.keys = usage.keys.saturating_sub(1);
                usage.key_bytes = usage.key_bytes.saturating_sub(bytes);
            }
            // The next groups after where the last pass stopped, wrapping around at the end.
            let names: Vec<(String, String)> = {
                let after = self.sweep_after.clone();
                let range = match &after {
                    Some((r, g)) => groups.range((r.as_str(), g.as_str())..)?,
                    None => groups.iter()?,
                };
                range
                    .skip(usize::from(after.is_some()))
                    .take(SWEEP_GROUPS)
                    .map(|item| {
                        item.map(|(k, _)| {
                            let (r, g) = k.value();
                            (r.to_owned(), g.to_owned())
                        })
                    })
                    .collect::<Result<_, _>>()?
            };
            self.sweep_after = (names.len() == SWEEP_GROUPS)
                .then(|| names.last().cloned())
                .flatten();
            // Bounded by entries too: a pass never holds the thread (and every route's requests) for long.
            let mut budget = SWEEP_ENTRIES;
            for (route, group) in &names {
                let Some(config) = self.spaces.get(route).and_then(|s| s.history.clone()) else {
                    continue;
                };
                load(route, &mut usages)?;
                let usage = usages.get_mut(route).expect("loaded");
                history::trim(
                    (&mut groups, &mut entries),
                    &config,
                    (route, group),
                    (usage, &mut budget),
                    now,
                )?;
                if budget == 0 {
                    break;
                }
            }
            for (route, usage) in &usages {
                usage_table.insert(route.as_str(), encode(usage).as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }
}

/// The answer to a request for a part of memory the route does not configure. The runtime refuses those before they
/// reach the store; a reload between the two can still send one.
fn not_configured(request: &Request) -> Answer {
    request.failed(StoreError::Unavailable(
        "the route's history or storage is not configured".into(),
    ))
}

#[cfg(test)]
mod tests;
