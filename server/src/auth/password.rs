//! Password hashing: argon2id at OWASP's minimum (19 MiB, 2 passes, 1 lane),
//! run on blocking threads, never on the async workers, with a bound on how
//! many run at once (each holds 19 MiB) and on how many may wait for a thread
//! (past it, [`PasswordError::Busy`]: a flood of logins is refused at once
//! rather than pushing every login behind it past the request time limit).
//! Unknown users are checked against a dummy hash so that a login takes the
//! same time whether or not the user exists.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::secret::Secret;

/// OWASP's minimum for argon2id: m = 19 MiB, t = 2, p = 1.
const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;

/// The shortest password accepted for a new account.
pub const MIN_LENGTH: usize = 8;
/// The longest password accepted (hashing cost is bounded, not the input).
pub const MAX_LENGTH: usize = 256;

/// Why a password could not be set or checked.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Too short or too long.
    #[error("The password must be {MIN_LENGTH} to {MAX_LENGTH} characters long.")]
    Length,
    /// The hasher failed or its thread was lost.
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// As many hashes as may wait for a thread are waiting already.
    #[error("The server is busy checking other passwords; please try again in a moment.")]
    Busy,
}

fn params() -> Params {
    // The constants are valid parameters (and argon2's default is the same OWASP minimum).
    Params::new(MEMORY_KIB, PASSES, LANES, None).unwrap_or_default()
}

/// The most memory a stored hash may ask for (a hash made with stronger
/// parameters than today's still verifies, up to this).
const MAX_MEMORY_KIB: u32 = 256 * 1024;

/// Bytes of random salt per hash.
const SALT_LEN: usize = 16;

/// Argon2's working memory, kept for reuse. Each hash needs 19 MiB; freed
/// and allocated again for every hash, those 19 MiB were never handed back
/// nor reused by the allocator (a 64-byte-aligned block of that size), and a
/// server grew by 19 MiB per login. One buffer per hashing thread, reused,
/// keeps the memory flat.
#[derive(Default)]
pub struct Workspace(Vec<Block>);

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Workspace({} blocks)", self.0.len())
    }
}

impl Workspace {
    fn blocks(&mut self, params: &Params) -> &mut [Block] {
        let n = params.block_count();
        if self.0.len() < n {
            self.0 = vec![Block::default(); n];
        }
        &mut self.0[..n]
    }
}

fn hashing_error(e: impl std::fmt::Display) -> PasswordError {
    PasswordError::Hashing(e.to_string())
}

thread_local! {
    /// The working memory of threads that hash outside a [`Hasher`] (commands, seeding).
    static WORKSPACE: std::cell::RefCell<Workspace> = std::cell::RefCell::default();
}

/// Hashes a password into a PHC string (blocking: call from a blocking
/// thread), in the thread's own working memory.
pub fn hash_blocking(password: &Secret) -> Result<String, PasswordError> {
    WORKSPACE.with(|ws| match ws.try_borrow_mut() {
        Ok(mut ws) => hash_in(password, &mut ws),
        Err(_) => hash_in(password, &mut Workspace::default()),
    })
}

/// Hashes a password into a PHC string in `ws`.
pub fn hash_in(password: &Secret, ws: &mut Workspace) -> Result<String, PasswordError> {
    let len = std::str::from_utf8(password.expose())
        .map(|s| s.chars().count())
        .unwrap_or(0);
    if !(MIN_LENGTH..=MAX_LENGTH).contains(&len) {
        return Err(PasswordError::Length);
    }
    let params = params();
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt).map_err(hashing_error)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password.expose(), &salt, &mut out, ws.blocks(&params))
        .map_err(hashing_error)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(hashing_error)?,
        salt: Some(Salt::new(&salt).map_err(hashing_error)?),
        hash: Some(Output::new(&out).map_err(hashing_error)?),
    };
    Ok(phc.to_string())
}

/// Checks a password against a PHC string made by [`hash_in`] (or with
/// stronger argon2id parameters), in `ws`.
fn verify_in(password: &Secret, hash: &str, ws: &mut Workspace) -> bool {
    if password.expose().len() > MAX_LENGTH * 4 {
        return false;
    }
    let Ok(phc) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&phc.salt, &phc.hash) else {
        return false;
    };
    let Ok(params) = Params::try_from(&phc) else {
        return false;
    };
    let version = phc.version.map_or(Ok(Version::V0x13), Version::try_from);
    if phc.algorithm != Algorithm::Argon2id.ident() || params.m_cost() > MAX_MEMORY_KIB {
        return false;
    }
    let Ok(version) = version else {
        return false;
    };
    let salt: &[u8] = salt.as_ref();
    let mut out = vec![0u8; expected.len()];
    let ok = Argon2::new(Algorithm::Argon2id, version, params.clone())
        .hash_password_into_with_memory(password.expose(), salt, &mut out, ws.blocks(&params))
        .is_ok();
    // Output compares in constant time.
    ok && Output::new(&out).is_ok_and(|o| o == *expected)
}

/// A job for a hashing thread.
type Job = Box<dyn FnOnce(&mut Workspace) + Send>;

/// What the hasher has done, for the metrics.
#[derive(Debug, Default)]
struct Counts {
    /// Jobs sent and not finished: running on a thread or waiting for one.
    pending: AtomicUsize,
    /// Hashes computed (logins checked, passwords set).
    hashes: AtomicU64,
    /// Hashes refused because the queue was full.
    refused: AtomicU64,
}

/// Hashes and verifies passwords off the async threads, on a fixed set of
/// threads of their own (so at most that many run at once), with at most
/// `queue` hashes waiting for a thread beside those running.
///
/// Each thread keeps its argon2 working memory ([`Workspace`]) for the next
/// hash, so the server's memory stays flat however many log in.
#[derive(Clone, Debug)]
pub struct Hasher {
    jobs: std::sync::mpsc::Sender<Job>,
    dummy: Arc<String>,
    threads: usize,
    queue: usize,
    counts: Arc<Counts>,
}

/// Every hashing thread held busy, until this is dropped (see [`Hasher::hold`]).
#[derive(Debug)]
#[must_use = "the threads are released when this is dropped"]
pub struct Hold {
    gate: Arc<(Mutex<bool>, Condvar)>,
}

impl Drop for Hold {
    fn drop(&mut self) {
        let (open, opened) = &*self.gate;
        if let Ok(mut open) = open.lock() {
            *open = true;
        }
        opened.notify_all();
    }
}

impl Hasher {
    /// A hasher with `threads` threads and at most `queue` hashes waiting.
    pub fn new(threads: usize, queue: usize) -> Result<Hasher, PasswordError> {
        let threads = threads.max(1);
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        for n in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("sqm-hash-{n}"))
                .spawn(move || {
                    let mut ws = Workspace::default();
                    loop {
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(&mut ws),
                            // Every hasher is gone.
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|e| PasswordError::Hashing(e.to_string()))?;
        }
        // The dummy hash is made on a hashing thread, in its working memory.
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let dummy = Secret::from("dummy password for timing".to_owned());
        tx.send(Box::new(move |ws: &mut Workspace| {
            let _ = done_tx.send(hash_in(&dummy, ws));
        }))
        .map_err(hashing_error)?;
        let dummy = done_rx.recv().map_err(hashing_error)??;
        Ok(Hasher {
            jobs: tx,
            dummy: Arc::new(dummy),
            threads,
            queue,
            counts: Arc::default(),
        })
    }

    /// Runs `work` on a hashing thread, or refuses at once when `queue`
    /// hashes are waiting already.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Workspace) -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let counts = &self.counts;
        let most = self.threads + self.queue;
        if counts
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < most).then_some(n + 1)
            })
            .is_err()
        {
            counts.refused.fetch_add(1, Ordering::Relaxed);
            return Err(PasswordError::Busy);
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let taken = self.counts.clone();
        let sent = self.jobs.send(Box::new(move |ws: &mut Workspace| {
            let out = work(ws);
            taken.hashes.fetch_add(1, Ordering::Relaxed);
            taken.pending.fetch_sub(1, Ordering::AcqRel);
            let _ = tx.send(out);
        }));
        if let Err(e) = sent {
            counts.pending.fetch_sub(1, Ordering::AcqRel);
            return Err(PasswordError::Hashing(e.to_string()));
        }
        rx.await.map_err(|e| PasswordError::Hashing(e.to_string()))
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: Secret) -> Result<String, PasswordError> {
        self.run(move |ws| hash_in(&password, ws)).await?
    }

    /// Checks a password against a stored hash, or against the dummy hash when
    /// there is none (the answer is then always false, after the same work).
    /// [`PasswordError::Busy`] when the queue is full: nothing was checked.
    pub async fn verify(
        &self,
        password: Secret,
        hash: Option<String>,
    ) -> Result<bool, PasswordError> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy.as_str().to_owned());
        let ok = self.run(move |ws| verify_in(&password, &hash, ws)).await?;
        Ok(ok && known)
    }

    /// Hashes waiting for a thread now (those asked for beyond the threads'
    /// number; a thread takes the next as soon as it is free).
    pub fn waiting(&self) -> usize {
        self.counts
            .pending
            .load(Ordering::Acquire)
            .saturating_sub(self.threads)
    }

    /// Hashes computed since the server started.
    pub fn hashes(&self) -> u64 {
        self.counts.hashes.load(Ordering::Relaxed)
    }

    /// Hashes refused because the queue was full.
    pub fn refused(&self) -> u64 {
        self.counts.refused.load(Ordering::Relaxed)
    }

    /// Occupies every hashing thread until the returned [`Hold`] is dropped;
    /// hashes asked for meanwhile wait in the queue (or are refused when it is
    /// full). For tests: they fill the queue this way without racing the hashes.
    pub async fn hold(&self) -> Result<Hold, PasswordError> {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let mut started = Vec::with_capacity(self.threads);
        for _ in 0..self.threads {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let gate = gate.clone();
            let counts = self.counts.clone();
            // Counted as pending like a hash, so the queue's bound holds.
            counts.pending.fetch_add(1, Ordering::AcqRel);
            self.jobs
                .send(Box::new(move |_: &mut Workspace| {
                    let _ = tx.send(());
                    let (open, opened) = &*gate;
                    if let Ok(mut open) = open.lock() {
                        while !*open {
                            open = match opened.wait(open) {
                                Ok(o) => o,
                                Err(_) => break,
                            };
                        }
                    }
                    counts.pending.fetch_sub(1, Ordering::AcqRel);
                }))
                .map_err(hashing_error)?;
            started.push(rx);
        }
        let hold = Hold { gate };
        for rx in started {
            rx.await.map_err(hashing_error)?;
        }
        Ok(hold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> Secret {
        Secret::from(s.to_owned())
    }

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters_and_verify() -> Result<(), PasswordError> {
        let mut ws = Workspace::default();
        let hash = hash_in(&secret("correct horse"), &mut ws)?;
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_in(&secret("correct horse"), &hash, &mut ws));
        assert!(!verify_in(&secret("correct hors"), &hash, &mut ws));
        // Two hashes of one password differ (a fresh salt each).
        assert_ne!(hash, hash_in(&secret("correct horse"), &mut ws)?);
        Ok(())
    }

    #[test]
    fn hashes_made_by_the_argon2_crate_itself_still_verify() {
        use argon2::password_hash::PasswordHasher;
        // How stored hashes were made before the reusable working memory.
        let stored = Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
            .hash_password(b"correct horse")
            .map(|h| h.to_string())
            .unwrap_or_default();
        let mut ws = Workspace::default();
        assert!(verify_in(&secret("correct horse"), &stored, &mut ws));
        assert!(!verify_in(&secret("wrong horse"), &stored, &mut ws));
        // Stronger parameters verify too.
        let stronger = Params::new(2 * MEMORY_KIB, 3, 1, None).unwrap_or_default();
        let strong = Argon2::new(Algorithm::Argon2id, Version::V0x13, stronger)
            .hash_password(b"correct horse")
            .map(|h| h.to_string())
            .unwrap_or_default();
        assert!(strong.contains("m=38912,t=3"), "{strong}");
        assert!(verify_in(&secret("correct horse"), &strong, &mut ws));
    }

    #[test]
    fn other_algorithms_oversized_memory_and_garbage_never_verify() {
        use argon2::password_hash::PasswordHasher;
        let mut ws = Workspace::default();
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, params())
            .hash_password(b"correct horse")
            .map(|h| h.to_string())
            .unwrap_or_default();
        assert!(argon2i.starts_with("$argon2i$"), "{argon2i}");
        assert!(!verify_in(&secret("correct horse"), &argon2i, &mut ws));
        let huge = format!(
            "$argon2id$v=19$m={},t=2,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            MAX_MEMORY_KIB + 1
        );
        assert!(!verify_in(&secret("correct horse"), &huge, &mut ws));
        assert!(ws.0.is_empty(), "no memory was taken for a refused hash");
        for bad in [
            "",
            "plain text",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            "$argon2id$",
        ] {
            assert!(!verify_in(&secret("correct horse"), bad, &mut ws), "{bad}");
        }
    }

    #[test]
    fn one_working_memory_serves_every_hash() -> Result<(), PasswordError> {
        let mut ws = Workspace::default();
        let first = hash_in(&secret("correct horse"), &mut ws)?;
        let at = ws.0.as_ptr();
        for _ in 0..3 {
            assert!(verify_in(&secret("correct horse"), &first, &mut ws));
        }
        assert_eq!(ws.0.as_ptr(), at, "the blocks were not allocated again");
        assert_eq!(ws.0.len(), params().block_count());
        Ok(())
    }

    #[test]
    fn lengths_are_bounded_at_both_ends() {
        let len = |n: usize| hash_blocking(&Secret::from("x".repeat(n)));
        assert!(matches!(len(MIN_LENGTH - 1), Err(PasswordError::Length)));
        assert!(len(MIN_LENGTH).is_ok());
        assert!(len(MAX_LENGTH).is_ok());
        assert!(matches!(len(MAX_LENGTH + 1), Err(PasswordError::Length)));
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() -> Result<(), PasswordError> {
        let hasher = Hasher::new(2, 4)?;
        assert!(
            !hasher
                .verify(Secret::from("dummy password for timing".to_owned()), None)
                .await?
        );
        assert_eq!(hasher.hashes(), 1);
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn past_the_queue_bound_a_hash_is_refused_at_once() -> Result<(), PasswordError> {
        let hasher = Hasher::new(1, 2)?;
        let hold = hasher.hold().await?;
        let waiting: Vec<_> = (0..2)
            .map(|_| {
                let h = hasher.clone();
                tokio::spawn(async move { h.verify(secret("correct horse"), None).await })
            })
            .collect();
        while hasher.waiting() < 2 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            hasher.verify(secret("correct horse"), None).await,
            Err(PasswordError::Busy)
        ));
        assert_eq!(hasher.refused(), 1);
        drop(hold);
        for w in waiting {
            assert!(
                matches!(w.await, Ok(Ok(false))),
                "the two waiting were checked"
            );
        }
        assert_eq!(hasher.hashes(), 2, "the refused one was never hashed");
        assert_eq!(hasher.waiting(), 0);
        Ok(())
    }
}
