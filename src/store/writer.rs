//! The one writer of a process that runs many syncs at once (the daemon).
//!
//! A thread owns one connection and runs, one after the other, the store
//! work the syncs hand it (claiming a link, importing a document, recording
//! a failure, committing refreshed tokens). Work that arrives while a
//! transaction is open joins it, each job in a savepoint of its own, and one
//! COMMIT ends them all (group commit):
//!
//! - a job is all or nothing: one that fails is rolled back to its
//!   savepoint and the others go on;
//! - a job's answer is handed back only once its transaction committed; if
//!   the commit fails, every job of the batch gets the error and nothing of
//!   any of them is stored;
//! - a job whose caller is gone (a sync abandoned at shutdown) before it
//!   started is dropped unrun;
//! - a job sent with `run_alone` gets a transaction of its own.
//!
//! WAL checkpoints run on a thread of their own (see `checkpoint_elsewhere`),
//! and the writer checkpoints between batches only when that thread cannot
//! keep up, so the WAL stays bounded.
//!
//! One connection keeps its page cache warm (a commit on another connection
//! empties it) and never waits for the write lock behind a sibling; the
//! syncs fetch, parse and normalize in parallel on their own threads.
//! Other processes (an operator's `rxsync import`) still get the lock
//! between batches, which are bounded in jobs and in time.

use super::{Store, StoreError};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// At most this many jobs share one transaction.
const MAX_BATCH_JOBS: usize = 256;
/// A batch takes no new jobs once it has held the write lock this long.
const MAX_BATCH_TIME: Duration = Duration::from_millis(25);

/// A handle on the writer thread; cheap to clone. The thread ends on
/// `close`, or when the last handle is dropped and the jobs sent before
/// have run.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::UnboundedSender<Message>,
}

/// One batch, as told to the observer (`Writer::start_observed`).
#[derive(Debug, Clone, Copy)]
pub struct Batch {
    /// Jobs run in it.
    pub jobs: usize,
    /// From BEGIN to the end of COMMIT (or ROLLBACK): how long the batch
    /// held the write lock.
    pub held: Duration,
    pub committed: bool,
}

/// Told of every batch, on the writer's thread: keep it quick.
pub type Observer = Box<dyn Fn(&Batch) + Send>;

enum Message {
    Job(Box<dyn Job>),
    /// Stop after the batch in progress; answered once the connections are closed.
    Close(oneshot::Sender<()>),
}

/// What ends a batch.
#[derive(Clone, Copy)]
struct Limits {
    jobs: usize,
    time: Duration,
    /// WAL pages that call for a checkpoint.
    checkpoint_pages: i64,
}

const LIMITS: Limits = Limits {
    jobs: MAX_BATCH_JOBS,
    time: MAX_BATCH_TIME,
    checkpoint_pages: super::WAL_AUTOCHECKPOINT_PAGES,
};

/// A job and the caller waiting for its answer.
trait Job: Send {
    /// The caller stopped waiting.
    fn abandoned(&self) -> bool;
    /// The job must not share its transaction (`Writer::run_alone`).
    fn alone(&self) -> bool;
    /// Runs the job; says whether it succeeded, and how to answer once the
    /// batch's commit is known.
    fn run(self: Box<Self>, store: &mut Store) -> (bool, Reply);
    /// Answers with an error without running the job.
    fn refuse(self: Box<Self>, error: &str);
}

type Reply = Box<dyn FnOnce(Option<&str>) + Send>;

struct Typed<T, F> {
    work: F,
    answer: oneshot::Sender<Result<T, StoreError>>,
    alone: bool,
}

impl<T, F> Job for Typed<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut Store) -> Result<T, StoreError> + Send,
{
    fn abandoned(&self) -> bool {
        self.answer.is_closed()
    }

    fn alone(&self) -> bool {
        self.alone
    }

    fn run(self: Box<Self>, store: &mut Store) -> (bool, Reply) {
        let Typed { work, answer, .. } = *self;
        let out = std::panic::catch_unwind(AssertUnwindSafe(|| work(store)))
            .unwrap_or_else(|_| Err(StoreError::Writer("a store job panicked".into())));
        let ok = out.is_ok();
        let reply: Reply = Box::new(move |commit_error| {
            let out = match commit_error {
                Some(e) => Err(StoreError::Writer(format!(
                    "the transaction could not commit, nothing was stored: {e}"
                ))),
                None => out,
            };
            let _ = answer.send(out);
        });
        (ok, reply)
    }

    fn refuse(self: Box<Self>, error: &str) {
        let _ = self.answer.send(Err(StoreError::Writer(format!(
            "the store could not begin the write, nothing was stored: {error}"
        ))));
    }
}

impl Writer {
    /// Starts the writer thread on `store`.
    pub fn start(store: Store) -> Result<Writer, StoreError> {
        Writer::start_with(store, LIMITS, Box::new(|_| {}))
    }

    /// Starts the writer thread on `store`; `observer` hears of every batch.
    pub fn start_observed(store: Store, observer: Observer) -> Result<Writer, StoreError> {
        Writer::start_with(store, LIMITS, observer)
    }

    fn start_with(
        mut store: Store,
        limits: Limits,
        observer: Observer,
    ) -> Result<Writer, StoreError> {
        let wal_pages = Arc::new(AtomicI64::new(0));
        let checkpoints = Arc::new(Mutex::new(()));
        let checkpointer = checkpoint_elsewhere(
            &mut store,
            limits.checkpoint_pages,
            Arc::clone(&wal_pages),
            Arc::clone(&checkpoints),
        )?;
        // Each job's savepoint journals the pages it changes to a
        // sub-journal: in memory, not a temporary file written page by page.
        if let Some(lite) = store.conn.lite() {
            lite.pragma_update(None, "temp_store", "MEMORY")?;
        }
        let (jobs, queue) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("rxsync-writer".into())
            .spawn(move || {
                serve(
                    store,
                    queue,
                    limits,
                    Threads {
                        checkpointer,
                        wal_pages,
                        checkpoints,
                        observer,
                    },
                )
            })
            .map_err(|e| StoreError::Writer(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { jobs })
    }

    /// Runs `work` on the writer's connection, in a transaction (or a
    /// savepoint of the batch's), and returns its answer once committed.
    /// An `Err` from `work` rolls back what it wrote.
    pub async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(work, false)
            .await
            .map_err(|_| StoreError::Writer("the writer thread has stopped".into()))?
    }

    /// Like `run`, but in a transaction of its own: the batch open when it
    /// comes commits first. For work that must not fail because another
    /// job's cannot commit (a refreshed token pair the provider has already
    /// rotated).
    pub async fn run_alone<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(work, true)
            .await
            .map_err(|_| StoreError::Writer("the writer thread has stopped".into()))?
    }

    /// Queues `work`; the receiver gets its answer (dropping it abandons
    /// the job if it has not started).
    fn submit<T, F>(&self, work: F, alone: bool) -> oneshot::Receiver<Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        // A send fails only when the thread is gone: the receiver then
        // reports it (its sender was dropped with the job).
        let _ = self.jobs.send(Message::Job(Box::new(Typed {
            work,
            answer,
            alone,
        })));
        answered
    }

    /// Whether the writer has stopped (closed, or its thread is gone).
    pub fn is_closed(&self) -> bool {
        self.jobs.is_closed()
    }

    /// Stops the writer for every handle: the batch in progress commits,
    /// jobs queued after this call fail, and the database's connections
    /// (the writer's and the checkpointer's, which checkpoints what is
    /// left) are closed when this returns.
    pub async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.jobs.send(Message::Close(done)).is_ok() {
            let _ = closed.await;
        }
    }
}

/// Moves the WAL checkpoints off the writer's thread. SQLite's automatic
/// checkpoint runs inside the COMMIT that crosses the threshold, on the
/// committing thread: on the writer, every sync would wait for it. Here
/// the writer's connection only notes that the WAL has grown past the
/// threshold, and a thread of its own checkpoints (PASSIVE: it never
/// blocks the writer) from its own connection. It ends with the writer's
/// connection, whose close checkpoints what is left.
///
/// The hook also keeps the WAL's size in `wal_pages`: a PASSIVE checkpoint
/// copies only up to the snapshot of the batch in progress, and SQLite
/// starts the WAL over only when a transaction begins with every frame
/// copied, so under load with no pause between batches the WAL would grow
/// without end. `serve` then checkpoints itself, between two batches.
fn checkpoint_elsewhere(
    store: &mut Store,
    threshold: i64,
    wal_pages: Arc<AtomicI64>,
    checkpoints: Arc<Mutex<()>>,
) -> Result<Option<std::thread::JoinHandle<()>>, StoreError> {
    // PostgreSQL has no WAL of the store's to checkpoint.
    let Some(path) = store.path() else {
        return Ok(None);
    };
    let checkpointer = Store::open(path)?;
    let Some(lite) = store.conn.lite_mut() else {
        return Ok(None);
    };
    let (grown, wait) = std::sync::mpsc::sync_channel::<()>(1);
    lite.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages: i32| {
        wal_pages.store(i64::from(pages), Ordering::Relaxed);
        if i64::from(pages) >= threshold {
            // One pending request is enough: a checkpoint takes all there is.
            let _ = grown.try_send(());
        }
        Ok(())
    }))?;
    let thread = std::thread::Builder::new()
        .name("rxsync-checkpoint".into())
        .spawn(move || {
            while wait.recv().is_ok() {
                let _turn = checkpoints.lock().unwrap_or_else(|p| p.into_inner());
                let done = checkpointer
                    .conn
                    .query_row("PRAGMA wal_checkpoint(PASSIVE)", (), |r| {
                        r.get::<_, i64>(0)
                    });
                // A reader holding an old snapshot can keep a PASSIVE
                // checkpoint from catching up; the next request tries again.
                if let Err(e) = done {
                    tracing::warn!(error = %super::SqliteCause(e), "WAL checkpoint failed; the next one retries");
                }
            }
        })
        .map_err(|e| StoreError::Writer(format!("cannot start the checkpoint thread: {e}")))?;
    Ok(Some(thread))
}

/// What the writer's thread shares with the rest: the checkpointer, the
/// WAL's size as its hook last saw it, the observer.
struct Threads {
    checkpointer: Option<std::thread::JoinHandle<()>>,
    wal_pages: Arc<AtomicI64>,
    /// Taken by whoever checkpoints: one at a time.
    checkpoints: Arc<Mutex<()>>,
    observer: Observer,
}

fn serve(
    mut store: Store,
    mut queue: mpsc::UnboundedReceiver<Message>,
    limits: Limits,
    threads: Threads,
) {
    let Threads {
        checkpointer,
        wal_pages,
        checkpoints,
        observer,
    } = threads;
    let mut closing = None;
    // A job that must run alone, taken off the queue while a batch was open.
    let mut carried: Option<Box<dyn Job>> = None;
    while closing.is_none() {
        let first = match carried.take() {
            Some(job) => job,
            None => match queue.blocking_recv() {
                Some(Message::Job(job)) => job,
                Some(Message::Close(done)) => {
                    closing = Some(done);
                    break;
                }
                None => break,
            },
        };
        if first.abandoned() {
            continue;
        }
        if let Err(e) = store.conn.begin() {
            first.refuse(&super::SqliteCause(e).to_string());
            continue;
        }
        let started = Instant::now();
        let mut replies: Vec<Reply> = Vec::new();
        // A savepoint that cannot be ended leaves the batch in doubt: it is
        // rolled back whole.
        let mut doubt: Option<String> = None;
        let mut next = Some(first);
        while let Some(job) = next.take() {
            let alone = job.alone();
            if job.abandoned() {
            } else if alone && !replies.is_empty() {
                // Its own transaction, after this one.
                carried = Some(job);
                break;
            } else if let Some(e) = &doubt {
                job.refuse(e);
            } else {
                match run_in_savepoint(&mut store, job) {
                    Ok(reply) => replies.push(reply),
                    Err((reply, e)) => {
                        replies.push(reply);
                        doubt = Some(e);
                    }
                }
            }
            if alone || replies.len() >= limits.jobs || started.elapsed() >= limits.time {
                break;
            }
            next = match queue.try_recv() {
                Ok(Message::Job(job)) => Some(job),
                Ok(Message::Close(done)) => {
                    closing = Some(done);
                    None
                }
                Err(_) => None,
            };
        }
        let error = match doubt {
            Some(e) => {
                let _ = store.conn.rollback();
                Some(e)
            }
            None => store.conn.commit().err().map(|e| {
                // A failed COMMIT may leave the transaction open.
                if !store.conn.is_autocommit() {
                    let _ = store.conn.rollback();
                }
                super::SqliteCause(e).to_string()
            }),
        };
        observer(&Batch {
            jobs: replies.len(),
            held: started.elapsed(),
            committed: error.is_none(),
        });
        for reply in replies {
            reply(error.as_deref());
        }
        // Far past the threshold: the checkpointer cannot catch up while
        // batches follow each other (see `checkpoint_elsewhere`).
        if wal_pages.load(Ordering::Relaxed) >= 4 * limits.checkpoint_pages {
            // After the checkpointer's own, if one is under way (SQLite lets
            // one checkpoint run at a time and a PASSIVE one does not wait).
            let _turn = checkpoints.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = store
                .conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", (), |_| Ok(()))
            {
                tracing::warn!(error = %super::SqliteCause(e), "WAL checkpoint failed; the next one retries");
            }
            wal_pages.store(0, Ordering::Relaxed);
        }
    }
    // Jobs still queued fail ("the writer thread has stopped"). Dropping
    // the WAL hook ends the checkpointer; its connection closes first, so
    // the writer's is the last one, which checkpoints and removes the WAL
    // (two connections closing at once may each leave it to the other).
    drop(queue);
    if let Some(lite) = store.conn.lite_mut() {
        let _ = lite.wal_hook(None::<fn(&mut rusqlite::hooks::Wal, i32) -> rusqlite::Result<()>>);
    }
    if let Some(checkpointer) = checkpointer {
        let _ = checkpointer.join();
    }
    drop(store);
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

/// Runs one job of an open batch in its own savepoint. Err: the savepoint
/// could not be ended, so the batch must roll back.
fn run_in_savepoint(store: &mut Store, job: Box<dyn Job>) -> Result<Reply, (Reply, String)> {
    if let Err(e) = store.conn.cached_execute("SAVEPOINT rxsync_job", ()) {
        // Nothing of this job was written; the batch goes on without it.
        job.refuse(&super::SqliteCause(e).to_string());
        return Ok(Box::new(|_| {}));
    }
    let (ok, reply) = job.run(store);
    let end = if ok {
        store.conn.cached_execute("RELEASE rxsync_job", ())
    } else {
        store
            .conn
            .cached_execute("ROLLBACK TO rxsync_job", ())
            .and_then(|_| store.conn.cached_execute("RELEASE rxsync_job", ()))
    };
    match end {
        Ok(_) => Ok(reply),
        Err(e) => Err((reply, super::SqliteCause(e).to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose batches close only when the queue is empty, on a
    /// database with a scratch table (`parent`/`child`: a deferred foreign
    /// key, checked only at COMMIT).
    fn writer(dir: &tempfile::TempDir) -> (Writer, std::path::PathBuf) {
        let limits = Limits {
            jobs: 1_000,
            time: Duration::from_secs(3600),
            checkpoint_pages: LIMITS.checkpoint_pages,
        };
        writer_on(
            dir,
            "CREATE TABLE parent (id INTEGER PRIMARY KEY);
             CREATE TABLE child (id INTEGER PRIMARY KEY,
               parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);",
            limits,
            Box::new(|_| {}),
        )
    }

    /// A writer on a new database `w.db` in `dir` with scratch tables.
    fn writer_on(
        dir: &tempfile::TempDir,
        schema: &str,
        limits: Limits,
        observer: Observer,
    ) -> (Writer, std::path::PathBuf) {
        let path = dir.path().join("w.db");
        let store = Store::open(&path).expect("opens");
        store.conn.execute_batch(schema).expect("scratch tables");
        let w = Writer::start_with(store, limits, observer).expect("starts");
        (w, path)
    }

    /// A writer that asks for a checkpoint at 20 WAL pages, over `blob`.
    fn blob_writer(dir: &tempfile::TempDir) -> (Writer, std::path::PathBuf) {
        let limits = Limits {
            checkpoint_pages: 20,
            ..LIMITS
        };
        let schema = "CREATE TABLE blob (id INTEGER PRIMARY KEY, b BLOB)";
        writer_on(dir, schema, limits, Box::new(|_| {}))
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    fn rows(path: &std::path::Path, table: &str) -> Vec<i64> {
        let store = Store::open(path).expect("opens");
        let mut st = store
            .conn
            .prepare(&format!("SELECT id FROM {table} ORDER BY id"))
            .expect("prepares");
        st.query_map((), |r| r.get(0))
            .expect("queries")
            .collect::<Result<_, _>>()
            .expect("reads")
    }

    fn insert(table: &'static str, id: i64) -> impl FnOnce(&mut Store) -> Result<(), StoreError> {
        move |s| {
            s.conn
                .execute(&format!("INSERT INTO {table} (id) VALUES (?1)"), [id])?;
            Ok(())
        }
    }

    type Work<T> = Box<dyn FnOnce(&mut Store) -> Result<T, StoreError> + Send>;

    /// Queues `first`, which waits until the others (those at `alone`
    /// through `run_alone`) are queued behind it, so that they come to the
    /// writer while its batch is open; returns every answer.
    fn one_batch_with<T: Send + 'static>(
        w: &Writer,
        first: impl FnOnce(&mut Store) -> Result<(), StoreError> + Send + 'static,
        others: Vec<Work<T>>,
        alone: &[usize],
    ) -> (Result<(), StoreError>, Vec<Result<T, StoreError>>) {
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let first = w.submit(
            move |s| {
                let _ = wait.recv();
                first(s)
            },
            false,
        );
        let others: Vec<_> = others
            .into_iter()
            .enumerate()
            .map(|(i, o)| w.submit(o, alone.contains(&i)))
            .collect();
        go.send(()).expect("the first job waits");
        block_on(async {
            let first = first.await.expect("answered");
            let mut out = Vec::new();
            for r in others {
                out.push(r.await.expect("answered"));
            }
            (first, out)
        })
    }

    fn one_batch<T: Send + 'static>(
        w: &Writer,
        first: impl FnOnce(&mut Store) -> Result<(), StoreError> + Send + 'static,
        others: Vec<Work<T>>,
    ) -> (Result<(), StoreError>, Vec<Result<T, StoreError>>) {
        one_batch_with(w, first, others, &[])
    }

    /// A child row of no parent: only COMMIT checks the deferred key.
    fn orphan(s: &mut Store) -> Result<(), StoreError> {
        s.conn
            .execute("INSERT INTO child (id, parent) VALUES (1, 99)", ())?;
        Ok(())
    }

    #[test]
    fn a_failed_job_is_rolled_back_alone_and_the_batch_commits_the_rest() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (w, path) = writer(&dir);
        let (first, rest) = one_batch(
            &w,
            insert("parent", 1),
            vec![
                Box::new(insert("parent", 2)),
                // Writes a row, then fails: the row must not stay.
                Box::new(|s: &mut Store| {
                    s.conn.execute("INSERT INTO parent (id) VALUES (3)", ())?;
                    s.conn.execute("INSERT INTO parent (id) VALUES (1)", ())?;
                    Ok(())
                }),
                Box::new(|_: &mut Store| -> Result<(), StoreError> { panic!("a bug in a job") }),
                Box::new(insert("parent", 4)),
            ],
        );
        assert!(first.is_ok());
        assert!(rest[0].is_ok());
        assert!(
            rest[1]
                .as_ref()
                .is_err_and(|e| e.to_string().contains("UNIQUE")),
            "{:?}",
            rest[1]
        );
        assert!(
            rest[2]
                .as_ref()
                .is_err_and(|e| e.to_string().contains("panicked"))
        );
        assert!(rest[3].is_ok());
        assert_eq!(rows(&path, "parent"), [1, 2, 4]);
    }

    #[test]
    fn when_the_commit_fails_every_job_of_the_batch_is_told_and_nothing_is_stored() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (w, path) = writer(&dir);
        let (first, rest) = one_batch(
            &w,
            insert("parent", 1),
            vec![Box::new(insert("parent", 2)), Box::new(orphan)],
        );
        // Every answer waits for the commit, the first job's too.
        let err = first.expect_err("the first job shares the failed commit");
        assert!(err.to_string().contains("could not commit"), "{err}");
        assert!(err.to_string().contains("FOREIGN KEY"), "{err}");
        assert!(rest.iter().all(|r| r.is_err()), "{rest:?}");
        assert_eq!(rows(&path, "parent"), Vec::<i64>::new());
        assert_eq!(rows(&path, "child"), Vec::<i64>::new());
        // The writer goes on.
        block_on(w.run(insert("parent", 5))).expect("next batch commits");
        assert_eq!(rows(&path, "parent"), [5]);
    }

    #[test]
    fn a_job_whose_caller_is_gone_before_it_starts_is_not_run() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (w, path) = writer(&dir);
        let queue = w.clone();
        let (first, _) = one_batch::<()>(
            &w,
            move |s| {
                // Queued, then abandoned while this job still runs.
                drop(queue.submit(insert("parent", 7), false));
                insert("parent", 6)(s)
            },
            Vec::new(),
        );
        first.expect("commits");
        assert_eq!(rows(&path, "parent"), [6]);
    }

    #[test]
    fn the_wal_is_checkpointed_while_the_writer_keeps_its_connection_open() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (w, path) = blob_writer(&dir);
        let before = std::fs::metadata(&path).expect("db file").len();
        // 2 MB in 64 commits: only a checkpoint moves them from the WAL
        // into the database file.
        for i in 0..64 {
            block_on(w.run(move |s| {
                s.conn
                    .execute("INSERT INTO blob (id, b) VALUES (?1, zeroblob(32768))", [i])?;
                Ok(())
            }))
            .expect("commits");
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let now = std::fs::metadata(&path).expect("db file").len();
            if now >= before + 1_000_000 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the database file stayed at {now} bytes (from {before}): no checkpoint ran"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(w);
    }

    #[test]
    fn close_commits_what_ran_closes_the_database_and_fails_later_jobs() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (w, path) = writer(&dir);
        block_on(w.run(insert("parent", 1))).expect("commits");
        let other = w.clone();
        assert!(!other.is_closed());
        block_on(w.close());
        assert!(other.is_closed());
        // The last connection to close checkpoints and removes the WAL.
        let wal = dir.path().join("w.db-wal");
        assert!(!wal.exists(), "{} is still there", wal.display());
        let err = block_on(other.run(insert("parent", 2))).expect_err("the writer has stopped");
        assert!(err.to_string().contains("stopped"), "{err}");
        assert_eq!(rows(&path, "parent"), [1]);
    }

    #[test]
    fn the_observer_hears_of_each_batch_its_jobs_and_whether_it_committed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let told = std::sync::Arc::clone(&heard);
        let limits = Limits {
            time: Duration::from_secs(3600),
            ..LIMITS
        };
        let observer: Observer = Box::new(move |b: &Batch| {
            told.lock().expect("lock").push((b.jobs, b.committed));
        });
        let (w, _) = writer_on(
            &dir,
            "CREATE TABLE parent (id INTEGER PRIMARY KEY)",
            limits,
            observer,
        );
        let (first, rest) = one_batch(
            &w,
            insert("parent", 1),
            vec![Box::new(insert("parent", 2)), Box::new(insert("parent", 1))],
        );
        first.expect("commits");
        assert!(rest[0].is_ok() && rest[1].is_err());
        block_on(w.close());
        // One batch of three jobs (the failed one included), committed.
        assert_eq!(*heard.lock().expect("lock"), [(3, true)]);
    }

    #[test]
    fn a_job_run_alone_commits_even_when_the_batch_it_came_during_cannot() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (w, path) = writer(&dir);
        // Queued while the first job's batch is open: the orphan dooms that
        // batch; the job run alone (a rotated token pair, say) must not share it.
        let (first, rest) = one_batch_with(
            &w,
            insert("parent", 1),
            vec![
                Box::new(orphan),
                Box::new(insert("parent", 3)),
                Box::new(insert("parent", 4)),
            ],
            &[1],
        );
        assert!(first.is_err() && rest[0].is_err(), "{first:?} {rest:?}");
        assert!(rest[1].is_ok(), "{:?}", rest[1]);
        assert!(rest[2].is_ok(), "{:?}", rest[2]);
        assert_eq!(rows(&path, "parent"), [3, 4]);
    }

    #[test]
    fn the_wal_stays_bounded_when_batches_follow_each_other_without_a_pause() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (w, _) = blob_writer(&dir);
        // 3,000 jobs of 3 KB (9 MB in all), every one queued before the
        // first runs: the writer never waits between batches.
        let jobs = 3_000;
        let (first, rest) = one_batch(
            &w,
            |_| Ok(()),
            (0..jobs)
                .map(|i| -> Work<()> {
                    Box::new(move |s: &mut Store| {
                        s.conn
                            .execute("INSERT INTO blob (id, b) VALUES (?1, zeroblob(3000))", [i])?;
                        Ok(())
                    })
                })
                .collect(),
        );
        first.expect("commits");
        assert!(rest.iter().all(|r| r.is_ok()));
        // The WAL file keeps its largest size: it never held more than a
        // few batches' worth.
        let wal = std::fs::metadata(dir.path().join("w.db-wal"))
            .expect("the WAL")
            .len();
        assert!(wal < 4_000_000, "the WAL grew to {wal} bytes");
        drop(w);
    }
}
