//! The cluster store: routes' history and keys in NATS JetStream, so that every node of a cluster reads and writes
//! the same data. Written for nats-server 2.9 (Debian's) and later: it needs JetStream's per-subject limits,
//! expected-last-subject-sequence publishes, last-by-subject message gets, filtered purges and ephemeral pull
//! consumers, and nothing newer.
//!
//! The store works on a thread of its own, with a single-threaded tokio runtime and its own NATS connection (the
//! cluster link's carries latency-sensitive fan-out, which a burst of history reads must not queue behind).
//! [`JetStream::submit`] hands a request over a channel and returns. Requests for the same group or key are served
//! one after another, in the order they came (a plugin that appends twice sees its two messages in that order);
//! others run side by side, at most [`CONCURRENCY`] at once. Every request is answered exactly once: within
//! [`ANSWER_WITHIN`] of its submission (then `Unavailable` if the broker did not answer), at once with `Unavailable`
//! when more than [`QUEUE`] are waiting, and with `Unavailable` when the store stops with it still waiting.

mod broker;
mod history;
mod kv;
mod names;
#[cfg(test)]
mod tests;

use crate::{Answer, Health, Namespace, Reply, Request, Store, StoreError};
use anyhow::{Context as _, Result};
use broker::{Broker, lock};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;
use wssgate_config::cluster::{ClusterConfig, Credentials};

/// Requests waiting for their answer, at most; more are refused at once.
pub const QUEUE: usize = 10_000;
/// Every request is answered within this time of its submission.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(5);
/// Requests served at once (each is a few round trips to the broker).
pub const CONCURRENCY: usize = 256;
/// The longest wait between two attempts to reach the broker again.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(2);

/// The JetStream store: a handle on its thread. Dropping it stops the thread, answering what still waits.
pub struct JetStream {
    work: mpsc::UnboundedSender<Work>,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// What the handle and the thread share.
struct Shared {
    health: Arc<Mutex<Health>>,
    /// What the routes hold, as of the watch's last look at the broker.
    usage: Arc<Mutex<Vec<(String, crate::Usage)>>>,
    /// Requests submitted and not yet answered.
    waiting: AtomicUsize,
}

/// What goes to the store's thread.
enum Work {
    Job(Job),
    /// A request refused in `submit`, answered on the thread (never inside `submit`).
    Refused(Pending, StoreError),
}

/// A request and where its answer goes.
struct Job {
    space: Arc<Namespace>,
    request: Request,
    pending: Pending,
    deadline: Instant,
}

/// A reply not yet given. Dropped unanswered — the store stopped, or its runtime dropped the task serving it — it
/// answers `Unavailable`, so every request gets exactly one answer whatever happens.
struct Pending {
    reply: Option<Reply>,
    /// The request's kind of answer, as a failure, to fill in with the error when it fails.
    failure: Answer,
    /// `Some` when counted in `Shared::waiting`.
    shared: Option<Arc<Shared>>,
}

impl Pending {
    fn answer(mut self, answer: Answer) {
        self.send(answer);
    }

    fn fail(mut self, error: StoreError) {
        let answer = with_error(&self.failure, error);
        self.send(answer);
    }

    fn send(&mut self, answer: Answer) {
        if let Some(reply) = self.reply.take() {
            if let Some(shared) = self.shared.take() {
                shared.waiting.fetch_sub(1, Ordering::AcqRel);
            }
            reply(answer);
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let answer = with_error(
            &self.failure,
            StoreError::Unavailable("the store stopped".into()),
        );
        self.send(answer);
    }
}

/// `template`'s kind of answer, failed with `error`.
fn with_error(template: &Answer, error: StoreError) -> Answer {
    match template {
        Answer::Appended(_) => Answer::Appended(Err(error)),
        Answer::History(_) => Answer::History(Err(error)),
        Answer::Value(_) => Answer::Value(Err(error)),
        Answer::Written(_) => Answer::Written(Err(error)),
    }
}

impl JetStream {
    /// Starts the store's thread, which connects to `config.servers` (retrying until the broker answers) and, once
    /// it does, sets up the streams of `spaces`. Returns at once; until the broker answers, requests wait for it
    /// (up to [`ANSWER_WITHIN`]) and the health is degraded.
    pub fn start(config: &ClusterConfig, spaces: &[Arc<Namespace>]) -> Result<JetStream> {
        let servers = config
            .servers
            .iter()
            .map(|s| s.parse::<async_nats::ServerAddr>())
            .collect::<Result<Vec<_>, _>>()
            .context("[cluster] servers")?;
        let mut options = async_nats::ConnectOptions::new()
            .name(format!("{}-store", config.node))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .reconnect_delay_callback(|attempts| {
                let shift = attempts.min(16) as u32;
                Duration::from_millis(50 << shift).min(MAX_RECONNECT_DELAY)
            });
        options = match &config.credentials {
            Credentials::None => options,
            Credentials::Token(token) => options.token(token.clone()),
            Credentials::UserPassword { user, password } => {
                options.user_and_password(user.clone(), password.clone())
            }
        };
        if let Some(ca) = &config.ca {
            options = options.add_root_certificates(ca.clone());
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("the JetStream store's runtime")?;
        let shared = Arc::new(Shared {
            health: Arc::new(Mutex::new(Health::Degraded(
                "connecting to the NATS broker".into(),
            ))),
            waiting: AtomicUsize::new(0),
            usage: Arc::default(),
        });
        let (work, inbox) = mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel();
        let thread = Thread {
            prefix: config.prefix.clone(),
            replicas: config.replicas,
            spaces: spaces.to_vec(),
            health: shared.health.clone(),
            usage: shared.usage.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("wssgate-jetstream".into())
            .spawn(move || {
                runtime.block_on(thread.run(options, servers, inbox, stopped));
                // Dropping the runtime drops the tasks still serving requests: their `Pending`s answer.
                drop(runtime);
            })
            .context("spawning the JetStream store's thread")?;
        Ok(JetStream {
            work,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Store for JetStream {
    fn submit(&self, space: &Arc<Namespace>, request: Request, reply: Reply) {
        let failure = request.failed(StoreError::Unavailable(String::new()));
        let counted = self
            .shared
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < QUEUE).then_some(n + 1)
            })
            .is_ok();
        let pending = Pending {
            reply: Some(reply),
            failure,
            shared: counted.then(|| self.shared.clone()),
        };
        let work = if counted {
            Work::Job(Job {
                space: space.clone(),
                request,
                pending,
                deadline: Instant::now() + ANSWER_WITHIN,
            })
        } else {
            Work::Refused(pending, StoreError::Unavailable("store queue full".into()))
        };
        if let Err(mpsc::error::SendError(work)) = self.work.send(work) {
            // The thread is gone (it panicked): the answer must still not come from inside this call.
            std::thread::spawn(move || drop(work));
        }
    }

    fn health(&self) -> Health {
        lock(&self.shared.health).clone()
    }

    fn usage(&self) -> Vec<(String, crate::Usage)> {
        lock(&self.shared.usage).clone()
    }

    fn kind(&self) -> &'static str {
        "jetstream"
    }
}

impl Drop for JetStream {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Waits for the answers to what was waiting — unless the last handle is dropped by an answer, on the
        // store's own thread, which then ends by itself.
        if let Some(thread) = self.thread.take()
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
}

/// The store's thread: what it needs to start.
struct Thread {
    prefix: String,
    replicas: usize,
    spaces: Vec<Arc<Namespace>>,
    health: Arc<Mutex<Health>>,
    usage: Arc<Mutex<Vec<(String, crate::Usage)>>>,
}

impl Thread {
    async fn run(
        self,
        options: async_nats::ConnectOptions,
        servers: Vec<async_nats::ServerAddr>,
        mut inbox: mpsc::UnboundedReceiver<Work>,
        mut stopped: oneshot::Receiver<()>,
    ) {
        // With `retry_on_initial_connect` this returns at once; it fails only on options it cannot use (a CA file
        // it cannot read), and then every request fails until the store stops.
        let broker = match options.connect(servers).await {
            Ok(client) => {
                let js = async_nats::jetstream::ContextBuilder::new()
                    .timeout(ANSWER_WITHIN)
                    .build(client.clone());
                Some(Arc::new(Broker::new(
                    client,
                    js,
                    (self.prefix.clone(), self.replicas),
                )))
            }
            Err(e) => {
                *lock(&self.health) = Health::Degraded(format!("cannot connect to NATS: {e}"));
                None
            }
        };
        if let Some(broker) = &broker {
            tokio::spawn(broker.clone().watch(
                self.health.clone(),
                self.usage.clone(),
                self.spaces.clone(),
            ));
        }
        let lanes = Arc::new(Lanes::new());
        // Bounded: it ends when the handle stops the store (or is gone).
        loop {
            let work = tokio::select! {
                biased;
                _ = &mut stopped => break,
                work = inbox.recv() => match work {
                    Some(work) => work,
                    None => break,
                },
            };
            match (work, &broker) {
                (Work::Refused(pending, error), _) => pending.fail(error),
                (Work::Job(job), Some(broker)) => lanes.clone().dispatch(job, broker),
                (Work::Job(job), None) => job.pending.fail(StoreError::Unavailable(
                    "the store could not connect to NATS".into(),
                )),
            }
        }
        // What is still queued is answered as it is dropped (`Pending`'s drop), and so are the requests being
        // served when the runtime drops their tasks.
        inbox.close();
        while inbox.try_recv().is_ok() {}
    }
}

/// Which requests must be served in order: those for one group's history, and those for one key.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Lane {
    Group(String, String),
    Key(String, String),
}

/// The queues of the lanes that have requests, each drained by a task of its own.
struct Lanes {
    queues: Mutex<HashMap<Lane, VecDeque<Job>>>,
    /// Requests served at once, across lanes.
    permits: Semaphore,
}

impl Lanes {
    fn new() -> Lanes {
        Lanes {
            queues: Mutex::default(),
            permits: Semaphore::new(CONCURRENCY),
        }
    }

    fn dispatch(self: Arc<Self>, job: Job, broker: &Arc<Broker>) {
        let lane = match &job.request {
            Request::Append { group, .. } | Request::Read { group, .. } => {
                Lane::Group(job.space.route.clone(), group.clone())
            }
            Request::Get { key } | Request::Set { key, .. } | Request::Remove { key, .. } => {
                Lane::Key(job.space.route.clone(), key.clone())
            }
        };
        let mut queues = lock(&self.queues);
        if let Some(queue) = queues.get_mut(&lane) {
            queue.push_back(job);
            return;
        }
        queues.insert(lane.clone(), VecDeque::from([job]));
        drop(queues);
        tokio::spawn(self.clone().drain(lane, broker.clone()));
    }

    /// Serves the lane's requests in order until its queue is empty, then removes it (under the same lock as
    /// `dispatch` adds to it, so no request is left behind).
    async fn drain(self: Arc<Self>, lane: Lane, broker: Arc<Broker>) {
        // Bounded: each turn takes one request off the queue, which holds fewer than QUEUE.
        loop {
            let job = {
                let mut queues = lock(&self.queues);
                match queues.get_mut(&lane).and_then(VecDeque::pop_front) {
                    Some(job) => job,
                    None => {
                        queues.remove(&lane);
                        return;
                    }
                }
            };
            let Job {
                space,
                request,
                pending,
                deadline,
            } = job;
            let served = tokio::time::timeout_at(deadline, async {
                let _permit = self.permits.acquire().await;
                serve(&broker, &space, request).await
            });
            match served.await {
                Ok(answer) => pending.answer(answer),
                Err(_) => pending.fail(StoreError::Unavailable(format!(
                    "no answer from the NATS broker within {} s",
                    ANSWER_WITHIN.as_secs()
                ))),
            }
        }
    }
}

/// One request, against the broker.
async fn serve(broker: &Broker, space: &Namespace, request: Request) -> Answer {
    let names = broker.names(space);
    let no_history = || StoreError::Unavailable("the route keeps no history".into());
    let no_storage = || StoreError::Unavailable("the route has no storage".into());
    match request {
        Request::Append { group, message } => Answer::Appended(match &space.history {
            Some(caps) => history::append(broker, &names, caps, &group, message).await,
            None => Err(no_history()),
        }),
        Request::Read {
            group,
            since,
            limit,
        } => Answer::History(match &space.history {
            Some(caps) => history::read(broker, &names, caps, &group, since, limit).await,
            None => Err(no_history()),
        }),
        Request::Get { key } => Answer::Value(match &space.storage {
            Some(caps) => kv::get(broker, &names, caps, &key).await,
            None => Err(no_storage()),
        }),
        Request::Set {
            key,
            value,
            ttl,
            if_revision,
        } => Answer::Written(match &space.storage {
            Some(caps) => kv::set(broker, &names, caps, &key, value, ttl, if_revision).await,
            None => Err(no_storage()),
        }),
        Request::Remove { key, if_revision } => Answer::Written(match &space.storage {
            Some(caps) => kv::remove(broker, &names, caps, &key, if_revision).await,
            None => Err(no_storage()),
        }),
    }
}
