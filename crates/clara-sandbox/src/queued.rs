//! Runs wait their turn: a backend wrapped so that at most N runs go at once
//! (one per core by default). Everyone talking to Clara may run code without
//! asking, so without a bound a busy group could take every core and all the
//! memory of the host; the person whose run waits sees it start a little later.

use crate::run::{Output, RunEnd, RunSpec, Sandbox, SandboxError};
use async_trait::async_trait;
use std::sync::Arc;
use tokio::sync::{Semaphore, mpsc};

/// A backend whose runs take one of `slots` turns each.
pub struct Queued {
    inner: Arc<dyn Sandbox>,
    slots: Semaphore,
}

impl Queued {
    /// `inner`, at most `slots` runs at once (at least one).
    pub fn new(inner: Arc<dyn Sandbox>, slots: usize) -> Self {
        Self {
            inner,
            slots: Semaphore::new(slots.max(1)),
        }
    }

    /// One run per core of this machine.
    pub fn per_core(inner: Arc<dyn Sandbox>) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Self::new(inner, cores)
    }
}

#[async_trait]
impl Sandbox for Queued {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn self_test(&self) -> Result<(), SandboxError> {
        self.inner.self_test().await
    }

    async fn run(
        &self,
        spec: RunSpec,
        output: mpsc::Sender<Output>,
    ) -> Result<RunEnd, SandboxError> {
        // The semaphore is never closed, so acquiring only waits.
        let _turn = self
            .slots
            .acquire()
            .await
            .map_err(|_| SandboxError::Failed("The sandbox is shutting down.".to_owned()))?;
        self.inner.run(spec, output).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::Limits;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Counts how many runs are inside at once.
    #[derive(Default)]
    struct Counting {
        now: AtomicUsize,
        most: AtomicUsize,
    }

    #[async_trait]
    impl Sandbox for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }
        async fn self_test(&self) -> Result<(), SandboxError> {
            Ok(())
        }
        async fn run(&self, _: RunSpec, _: mpsc::Sender<Output>) -> Result<RunEnd, SandboxError> {
            let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.now.fetch_sub(1, Ordering::SeqCst);
            Ok(RunEnd {
                exit_code: Some(0),
                signal: None,
                stopped: None,
                duration: Duration::ZERO,
            })
        }
    }

    #[tokio::test]
    async fn no_more_than_the_slots_run_at_once() {
        let inner = Arc::new(Counting::default());
        let queued = Arc::new(Queued::new(inner.clone(), 2));
        let spec = RunSpec {
            argv: vec!["true".into()],
            stdin: None,
            workspace: std::env::temp_dir(),
            env: Vec::new(),
            limits: Limits::default(),
            network: false,
        };
        let runs: Vec<_> = (0..6)
            .map(|_| {
                let queued = Arc::clone(&queued);
                let spec = spec.clone();
                tokio::spawn(async move {
                    let (tx, _rx) = mpsc::channel(1);
                    queued.run(spec, tx).await
                })
            })
            .collect();
        for run in futures_join(runs.into_iter()).await {
            assert!(run.unwrap().unwrap().success());
        }
        assert_eq!(inner.most.load(Ordering::SeqCst), 2);
    }

    async fn futures_join<T>(
        handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
    ) -> Vec<Result<T, tokio::task::JoinError>> {
        let mut out = Vec::new();
        for handle in handles {
            out.push(handle.await);
        }
        out
    }
}
