//! One run in one container: create it (pulling the image if the engine
//! lacks it), attach to its output, start it, wait for it under the wall
//! time, kill it past that, read why it ended, and always remove it — also
//! when anything fails and when the caller stops waiting (the removal then
//! happens in a spawned task).

use super::body::DETACH_KEYS;
use super::engine_error::{describe, status};
use super::image::{is_missing_image, pull, pull_failed};
use super::outcome::{Exit, classify};
use crate::run::{Output, RunEnd, Stream};
use bollard::Docker as Engine;
use bollard::container::{AttachContainerResults, LogOutput};
use bollard::errors::Error;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptions, KillContainerOptionsBuilder,
    RemoveContainerOptionsBuilder, WaitContainerOptions,
};
use futures::StreamExt;
use std::pin::Pin;
use std::time::{Duration, Instant};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

/// How long a killed container may take to be reported stopped.
const KILL_WAIT: Duration = Duration::from_secs(30);

/// What to run and how long to let it.
pub(crate) struct Plan<'a> {
    /// The image, pulled when creating the container finds it missing.
    pub image: &'a str,
    /// The container.
    pub body: ContainerCreateBody,
    /// Bytes for stdin, closed after them.
    pub stdin: Option<Vec<u8>>,
    /// Wall time from start to exit.
    pub wall: Duration,
    /// How long to keep reading output after the exit.
    pub output_grace: Duration,
}

/// Runs `plan` to its end. The error is a phrase (no final period).
pub(crate) async fn run_container(
    engine: &Engine,
    plan: Plan<'_>,
    output: mpsc::Sender<Output>,
) -> Result<RunEnd, String> {
    let id = create(engine, plan.image, plan.body).await?;
    let removal = Removal {
        engine: engine.clone(),
        id: Some(id.clone()),
    };
    let result = watch(
        engine,
        &id,
        plan.stdin,
        plan.wall,
        plan.output_grace,
        output,
    )
    .await;
    removal.now().await;
    result
}

async fn create(engine: &Engine, image: &str, body: ContainerCreateBody) -> Result<String, String> {
    let created = match engine
        .create_container(None::<CreateContainerOptions>, body.clone())
        .await
    {
        Err(err) if is_missing_image(&err) => {
            pull(engine, image)
                .await
                .map_err(|why| pull_failed(image, &why))?;
            engine
                .create_container(None::<CreateContainerOptions>, body)
                .await
        }
        other => other,
    };
    let created = created.map_err(|err| {
        format!(
            "the Docker engine could not create the run's container: {}",
            describe(&err)
        )
    })?;
    for warning in &created.warnings {
        // E.g. a kernel without swap accounting: a limit is then not applied.
        warn!(container = %created.id, "Docker: {warning}");
    }
    Ok(created.id)
}

async fn watch(
    engine: &Engine,
    id: &str,
    stdin: Option<Vec<u8>>,
    wall: Duration,
    output_grace: Duration,
    output: mpsc::Sender<Output>,
) -> Result<RunEnd, String> {
    // Attached before the start, so no early output is missed.
    let options = AttachContainerOptionsBuilder::new()
        .stream(true)
        .stdout(true)
        .stderr(true)
        .stdin(stdin.is_some())
        .detach_keys(DETACH_KEYS)
        .build();
    let AttachContainerResults {
        output: attached,
        input,
    } = engine
        .attach_container(id, Some(options))
        .await
        .map_err(|err| {
            format!(
                "the Docker engine would not attach to the run's container: {}",
                describe(&err)
            )
        })?;
    let pump = Task(tokio::spawn(pump(attached, output)));
    let _feeder = stdin.map(|bytes| Task(tokio::spawn(feed(input, bytes))));

    engine.start_container(id, None).await.map_err(|err| {
        format!(
            "the Docker engine could not start the run: {}",
            describe(&err)
        )
    })?;
    let started = Instant::now();
    let (code, killed_for_time) = match tokio::time::timeout(wall, wait_exit(engine, id)).await {
        Ok(code) => (code?, false),
        Err(_) => {
            let kill = KillContainerOptionsBuilder::new().signal("SIGKILL").build();
            // A refusal means it stopped by itself meanwhile (409, not
            // running): then it was not stopped for time.
            let killed = match engine.kill_container(id, Some(kill)).await {
                Ok(()) => true,
                Err(err) => {
                    debug!(container = id, "kill refused: {}", describe(&err));
                    false
                }
            };
            match tokio::time::timeout(KILL_WAIT, wait_exit(engine, id)).await {
                Ok(code) => (code?, killed),
                Err(_) => {
                    return Err(format!(
                        "the run's container did not stop within {} s of being killed",
                        KILL_WAIT.as_secs()
                    ));
                }
            }
        }
    };
    let duration = started.elapsed();
    let oom_killed = match engine.inspect_container(id, None).await {
        Ok(inspect) => inspect
            .state
            .and_then(|state| state.oom_killed)
            .unwrap_or(false),
        Err(err) => {
            warn!(
                container = id,
                "could not inspect the finished container: {}",
                describe(&err)
            );
            false
        }
    };
    pump.finish(output_grace).await;
    Ok(classify(
        Exit {
            code: Some(code),
            oom_killed,
            killed_for_time,
        },
        duration,
    ))
}

/// Waits for the container to stop and gives its exit code.
async fn wait_exit(engine: &Engine, id: &str) -> Result<i64, String> {
    let mut waited = engine.wait_container(id, None::<WaitContainerOptions>);
    match waited.next().await {
        Some(Ok(response)) => Ok(response.status_code),
        // bollard turns a non-zero exit into an error; it is an exit here.
        Some(Err(Error::DockerContainerWaitError { code, .. })) => Ok(code),
        Some(Err(err)) => Err(format!(
            "lost track of the run's container: {}",
            describe(&err)
        )),
        None => Err(
            "lost track of the run's container: the engine's wait ended without an exit code"
                .to_owned(),
        ),
    }
}

/// Forwards the attached output. A full or closed channel drops output but
/// the stream is still read, so the container never blocks on a full pipe.
async fn pump(
    mut attached: Pin<Box<dyn futures::Stream<Item = Result<LogOutput, Error>> + Send>>,
    output: mpsc::Sender<Output>,
) {
    let mut dropped = 0usize;
    while let Some(item) = attached.next().await {
        let (stream, bytes) = match item {
            Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                (Stream::Stdout, message)
            }
            Ok(LogOutput::StdErr { message }) => (Stream::Stderr, message),
            Ok(LogOutput::StdIn { .. }) => continue,
            Err(err) => {
                debug!("the output stream broke: {}", describe(&err));
                break;
            }
        };
        let chunk = Output {
            stream,
            bytes: bytes.to_vec(),
        };
        if output.try_send(chunk).is_err() {
            dropped += 1;
        }
    }
    if dropped > 0 {
        debug!(
            dropped,
            "output chunks dropped: the receiver was full or gone"
        );
    }
}

/// Writes stdin and closes it, so the run sees its end.
async fn feed(mut input: Pin<Box<dyn AsyncWrite + Send>>, bytes: Vec<u8>) {
    let written = match input.write_all(&bytes).await {
        Ok(()) => input.shutdown().await,
        Err(err) => Err(err),
    };
    if let Err(err) = written {
        // Usually the run exited without reading all of it.
        debug!("stdin not fully delivered: {err}");
    }
}

/// A spawned task that is aborted when dropped.
struct Task(JoinHandle<()>);

impl Task {
    /// Lets the task end by itself within `grace`; it is aborted otherwise.
    async fn finish(mut self, grace: Duration) {
        if tokio::time::timeout(grace, &mut self.0).await.is_err() {
            debug!("the output stream outlived the container (bollard#251); stopped reading it");
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Removes the container: awaited on the normal path, spawned when the run
/// is dropped half-way.
struct Removal {
    engine: Engine,
    id: Option<String>,
}

impl Removal {
    async fn now(mut self) {
        if let Some(id) = self.id.take() {
            remove(&self.engine, &id).await;
        }
    }
}

impl Drop for Removal {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let engine = self.engine.clone();
                runtime.spawn(async move { remove(&engine, &id).await });
            }
            Err(_) => {
                warn!(container = %id, "left a sandbox container behind: no runtime to remove it")
            }
        }
    }
}

async fn remove(engine: &Engine, id: &str) {
    let options = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    match engine.remove_container(id, Some(options)).await {
        Ok(()) => debug!(container = id, "removed"),
        Err(err) if status(&err) == Some(404) => {}
        Err(err) => warn!(
            container = id,
            "could not remove a sandbox container (label clara.sandbox=1): {}",
            describe(&err)
        ),
    }
}
