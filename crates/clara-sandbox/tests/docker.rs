//! The Docker backend against a fake Docker Engine that speaks the Engine
//! API's wire format: versioned paths, `/_ping`, `/version`, image inspect
//! and pull (JSON-lines progress), container create/start/kill/remove,
//! `wait` (headers first, the status when the container stops), inspect
//! (`State.OOMKilled`, `ExitCode`) and `attach` as an HTTP upgrade to a raw
//! stream in the multiplexed format (8-byte frame headers). Each test
//! scripts what the "container" does: output over time, exit code, OOM,
//! hanging until killed, reading stdin, an attach stream that outlives it.
#![cfg(feature = "docker")]
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use clara_sandbox::docker::{Docker, DockerConfig};
use clara_sandbox::{Limits, Output, RunEnd, RunSpec, Sandbox, SandboxError, Stopped, Stream};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, mpsc, oneshot, watch};

// ---------------------------------------------------------------------------
// The fake engine
// ---------------------------------------------------------------------------

const IMAGE: &str = "python:3.12-slim";
/// Everything a test waits for gets this long before it fails.
const PATIENCE: Duration = Duration::from_secs(30);

/// One piece of output the "process" writes after a pause.
#[derive(Clone)]
struct Chunk {
    after: Duration,
    stream: u8,
    bytes: Vec<u8>,
}

fn out(bytes: &str) -> Chunk {
    Chunk {
        after: Duration::ZERO,
        stream: 1,
        bytes: bytes.as_bytes().to_vec(),
    }
}

fn err(bytes: &str) -> Chunk {
    Chunk {
        after: Duration::from_millis(20),
        stream: 2,
        bytes: bytes.as_bytes().to_vec(),
    }
}

/// What the next containers do once started.
#[derive(Clone, Default)]
struct Script {
    chunks: Vec<Chunk>,
    exit_code: i64,
    oom: bool,
    /// Runs until killed.
    hang: bool,
    /// Before exiting, waits for the test to release it.
    gate: Option<Arc<Notify>>,
    /// Reads stdin to its end first and writes it back on stdout.
    echo_stdin: bool,
    /// The attach connection stays open after the exit (bollard#251).
    keep_attach_open: bool,
    /// `start` fails with this message (HTTP 400, as runc errors are).
    fail_start: Option<String>,
}

type Frame = (u8, Vec<u8>, oneshot::Sender<()>);

struct Container {
    script: Script,
    host_config: Value,
    exit: watch::Sender<Option<i64>>,
    oom_killed: bool,
    running: bool,
    output_tx: Option<mpsc::UnboundedSender<Frame>>,
    output_rx: Option<mpsc::UnboundedReceiver<Frame>>,
    stdin: watch::Sender<Option<Vec<u8>>>,
}

#[derive(Default)]
struct Engine {
    images: HashSet<String>,
    pull_error: Option<String>,
    /// Answers every request with HTTP 500 and this message.
    refuse: Option<String>,
    /// The `ApiVersion` `/version` reports; `None` for 1.47 (Docker 27).
    api_version: Option<String>,
    script: Script,
    requests: Vec<String>,
    created: Vec<Value>,
    containers: HashMap<String, Container>,
    started: Vec<String>,
    killed: Vec<String>,
    removed: Vec<String>,
    pulls: Vec<HashMap<String, String>>,
}

type Shared = Arc<Mutex<Engine>>;

struct Fake {
    addr: SocketAddr,
    engine: Shared,
    started: Arc<Notify>,
}

impl Fake {
    async fn start(script: Script) -> Self {
        let engine = Engine {
            images: HashSet::from([IMAGE.to_owned()]),
            script,
            ..Engine::default()
        };
        Self::start_with(engine).await
    }

    async fn start_with(engine: Engine) -> Self {
        let engine = Arc::new(Mutex::new(engine));
        let started = Arc::new(Notify::new());
        let app = Router::new()
            .fallback(handle)
            .with_state((engine.clone(), started.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            addr,
            engine,
            started,
        }
    }

    fn docker(&self) -> Docker {
        Docker::connect(DockerConfig {
            host: format!("tcp://{}", self.addr),
            ..DockerConfig::default()
        })
        .unwrap()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Engine) -> T) -> T {
        f(&mut self.engine.lock().unwrap())
    }

    fn created(&self) -> Vec<Value> {
        self.with(|e| e.created.clone())
    }

    fn requests(&self) -> Vec<String> {
        self.with(|e| e.requests.clone())
    }

    fn removed(&self) -> Vec<String> {
        self.with(|e| e.removed.clone())
    }

    fn killed(&self) -> Vec<String> {
        self.with(|e| e.killed.clone())
    }

    /// The ids of started containers, in order.
    fn ids(&self) -> Vec<String> {
        self.with(|e| e.started.clone())
    }
}

fn json_response(status: StatusCode, body: Value) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn no_content() -> Response {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::empty())
        .unwrap()
}

fn message(status: StatusCode, text: &str) -> Response {
    json_response(status, json!({ "message": text }))
}

/// `a=1&b=x%3Ay` → map, percent-decoded.
fn query(req: &Request) -> HashMap<String, String> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 3;
                }
                b'+' => {
                    out.push(b' ');
                    i += 1;
                }
                b => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8(out).unwrap()
    }
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// An image reference as the engine stores it: a bare name means `:latest`.
fn normalized(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last.contains(':') {
        image.to_owned()
    } else {
        format!("{image}:latest")
    }
}

/// `/v1.47/containers/x/json` → `/containers/x/json` (the engine accepts
/// both; bollard sends the unversioned form).
fn unversioned(path: &str) -> &str {
    let Some(rest) = path.strip_prefix("/v") else {
        return path;
    };
    let end = rest.find('/').unwrap_or(rest.len());
    let version = &rest[..end];
    if version
        .split('.')
        .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    {
        &rest[end..]
    } else {
        path
    }
}

async fn handle(
    State((engine, started)): State<(Shared, Arc<Notify>)>,
    mut req: Request,
) -> Response {
    let method = req.method().clone();
    let full = req.uri().path().to_owned();
    let path = unversioned(&full).to_owned();
    let q = query(&req);
    let (refuse, api_version) = {
        let mut e = engine.lock().unwrap();
        e.requests.push(format!("{method} {full}"));
        (
            e.refuse.clone(),
            e.api_version.clone().unwrap_or_else(|| "1.47".to_owned()),
        )
    };
    if let Some(why) = refuse {
        return message(StatusCode::INTERNAL_SERVER_ERROR, &why);
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("GET" | "HEAD", ["_ping"]) => Response::builder()
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .header("Api-Version", "1.47")
            .header("Docker-Experimental", "false")
            .header("Ostype", "linux")
            .header("Server", "Docker/27.3.1 (linux)")
            .body(Body::from("OK"))
            .unwrap(),
        ("GET", ["version"]) => json_response(
            StatusCode::OK,
            json!({
                "Platform": {"Name": "Docker Engine - Community"},
                "Components": [{"Name": "Engine", "Version": "27.3.1"}],
                "Version": "27.3.1", "ApiVersion": api_version, "MinAPIVersion": "1.24",
                "GitCommit": "41ca978", "GoVersion": "go1.22.7", "Os": "linux",
                "Arch": "amd64", "KernelVersion": "6.1.0-18-amd64",
                "BuildTime": "2024-09-20T11:41:11.000000000+00:00"
            }),
        ),
        ("GET", ["images", .., "json"]) => {
            let name = parts[1..parts.len() - 1].join("/");
            if engine.lock().unwrap().images.contains(&normalized(&name)) {
                json_response(
                    StatusCode::OK,
                    json!({"Id": "sha256:6f1a", "RepoTags": [name], "Os": "linux", "Architecture": "amd64"}),
                )
            } else {
                message(StatusCode::NOT_FOUND, &format!("No such image: {name}"))
            }
        }
        ("POST", ["images", "create"]) => pull(&engine, q),
        ("POST", ["containers", "create"]) => {
            let bytes = axum::body::to_bytes(req.into_body(), 1 << 20)
                .await
                .unwrap();
            create(&engine, serde_json::from_slice(&bytes).unwrap())
        }
        ("POST", ["containers", id, "attach"]) => {
            let id = (*id).to_owned();
            let upgrade = hyper::upgrade::on(&mut req);
            attach(&engine, id, q, upgrade)
        }
        ("POST", ["containers", id, "start"]) => start(&engine, &started, id),
        ("POST", ["containers", id, "wait"]) => wait(&engine, id),
        ("GET", ["containers", id, "json"]) => inspect(&engine, id),
        ("POST", ["containers", id, "kill"]) => {
            let mut e = engine.lock().unwrap();
            let Some(c) = e.containers.get_mut(*id) else {
                return message(StatusCode::NOT_FOUND, &format!("No such container: {id}"));
            };
            if !c.running {
                return message(
                    StatusCode::CONFLICT,
                    &format!("Cannot kill container: {id}: Container {id} is not running"),
                );
            }
            c.running = false;
            c.exit.send_replace(Some(137));
            e.killed.push((*id).to_owned());
            no_content()
        }
        ("DELETE", ["containers", id]) => {
            let mut e = engine.lock().unwrap();
            let Some(c) = e.containers.remove(*id) else {
                return message(StatusCode::NOT_FOUND, &format!("No such container: {id}"));
            };
            if c.running && q.get("force").map(String::as_str) != Some("true") {
                e.containers.insert((*id).to_owned(), c);
                return message(
                    StatusCode::CONFLICT,
                    "cannot remove container: container is running: stop the container before removing or force remove",
                );
            }
            c.exit.send_if_modified(|code| {
                let was = code.is_none();
                code.get_or_insert(137);
                was
            });
            e.removed.push((*id).to_owned());
            no_content()
        }
        _ => message(StatusCode::NOT_FOUND, "page not found"),
    }
}

fn pull(engine: &Shared, q: HashMap<String, String>) -> Response {
    let mut e = engine.lock().unwrap();
    e.pulls.push(q.clone());
    let from = q.get("fromImage").cloned().unwrap_or_default();
    let name = match q.get("tag").filter(|t| !t.is_empty()) {
        Some(tag) => format!("{from}:{tag}"),
        None => from.clone(),
    };
    let mut lines = vec![
        json!({"status": format!("Pulling from library/{}", from.split(':').next().unwrap_or("")), "id": "3.12-slim"}),
        json!({"status": "Pulling fs layer", "progressDetail": {}, "id": "a1b2c3d4e5f6"}),
        json!({"status": "Downloading", "progressDetail": {"current": 1024, "total": 2048}, "progress": "[=====>     ]  1.024kB/2.048kB", "id": "a1b2c3d4e5f6"}),
    ];
    match e.pull_error.clone() {
        Some(error) => lines.push(json!({"errorDetail": {"message": error}, "error": error})),
        None => {
            lines.push(
                json!({"status": "Pull complete", "progressDetail": {}, "id": "a1b2c3d4e5f6"}),
            );
            lines.push(json!({"status": "Digest: sha256:0123abcd"}));
            lines.push(json!({"status": format!("Status: Downloaded newer image for {name}")}));
            e.images.insert(name);
        }
    }
    let body: String = lines.iter().map(|l| format!("{l}\r\n")).collect();
    // Progress arrives line by line, as the engine flushes it.
    let stream = futures::stream::iter(
        body.split_inclusive('\n')
            .map(|l| Ok::<_, std::io::Error>(Bytes::from(l.to_owned())))
            .collect::<Vec<_>>(),
    );
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap()
}

fn create(engine: &Shared, body: Value) -> Response {
    let mut e = engine.lock().unwrap();
    let image = body["Image"].as_str().unwrap_or("").to_owned();
    if !e.images.contains(&normalized(&image)) {
        return message(StatusCode::NOT_FOUND, &format!("No such image: {image}"));
    }
    let id = format!("{:064x}", e.created.len() + 0xc1a4a);
    let (output_tx, output_rx) = mpsc::unbounded_channel();
    let container = Container {
        script: e.script.clone(),
        host_config: body["HostConfig"].clone(),
        exit: watch::channel(None).0,
        oom_killed: false,
        running: false,
        output_tx: Some(output_tx),
        output_rx: Some(output_rx),
        stdin: watch::channel(None).0,
    };
    e.created.push(body);
    e.containers.insert(id.clone(), container);
    json_response(StatusCode::CREATED, json!({"Id": id, "Warnings": []}))
}

fn attach(
    engine: &Shared,
    id: String,
    q: HashMap<String, String>,
    upgrade: hyper::upgrade::OnUpgrade,
) -> Response {
    let mut e = engine.lock().unwrap();
    let Some(c) = e.containers.get_mut(&id) else {
        return message(StatusCode::NOT_FOUND, &format!("No such container: {id}"));
    };
    let Some(mut frames) = c.output_rx.take() else {
        return message(
            StatusCode::CONFLICT,
            "already attached (this fake allows one)",
        );
    };
    let stdin = c.stdin.clone();
    let keep_open = c.script.keep_attach_open;
    let wants_stdin = q.get("stdin").map(String::as_str) == Some("true");
    tokio::spawn(async move {
        let io = TokioIo::new(upgrade.await.unwrap());
        let (mut reader, mut writer) = tokio::io::split(io);
        if wants_stdin {
            tokio::spawn(async move {
                let mut bytes = Vec::new();
                let _ = reader.read_to_end(&mut bytes).await;
                stdin.send_replace(Some(bytes));
            });
        }
        while let Some((stream, bytes, written)) = frames.recv().await {
            // The multiplexed format: stream type, three zero bytes, the
            // payload length as a big-endian u32, then the payload.
            let mut frame = vec![stream, 0, 0, 0];
            frame.extend_from_slice(&u32::try_from(bytes.len()).unwrap().to_be_bytes());
            frame.extend_from_slice(&bytes);
            if writer.write_all(&frame).await.is_err() || writer.flush().await.is_err() {
                return;
            }
            let _ = written.send(());
        }
        if keep_open {
            std::future::pending::<()>().await;
        }
        let _ = writer.shutdown().await;
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(
            header::CONTENT_TYPE,
            "application/vnd.docker.multiplexed-stream",
        )
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "tcp")
        .body(Body::empty())
        .unwrap()
}

fn start(engine: &Shared, started: &Arc<Notify>, id: &str) -> Response {
    let mut e = engine.lock().unwrap();
    let Some(c) = e.containers.get_mut(id) else {
        return message(StatusCode::NOT_FOUND, &format!("No such container: {id}"));
    };
    if let Some(why) = c.script.fail_start.clone() {
        return message(StatusCode::BAD_REQUEST, &why);
    }
    c.running = true;
    let script = c.script.clone();
    let frames = c.output_tx.take().unwrap();
    let exit = c.exit.clone();
    let mut stdin = c.stdin.subscribe();
    let engine = engine.clone();
    let id = id.to_owned();
    e.started.push(id.clone());
    tokio::spawn(async move {
        let mut killed = exit.subscribe();
        let process = async {
            if script.echo_stdin {
                let bytes = stdin
                    .wait_for(Option::is_some)
                    .await
                    .unwrap()
                    .clone()
                    .unwrap();
                emit(&frames, 1, bytes).await;
            }
            for chunk in &script.chunks {
                tokio::time::sleep(chunk.after).await;
                emit(&frames, chunk.stream, chunk.bytes.clone()).await;
            }
            if let Some(gate) = &script.gate {
                gate.notified().await;
            }
            if script.hang {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = process => {
                let mut e = engine.lock().unwrap();
                if let Some(c) = e.containers.get_mut(&id) {
                    c.running = false;
                    c.oom_killed = script.oom;
                }
                exit.send_if_modified(|code| {
                    let was = code.is_none();
                    code.get_or_insert(script.exit_code);
                    was
                });
            }
            _ = killed.wait_for(Option::is_some) => {}
        }
        // The process is gone: its end of the output closes.
        drop(frames);
    });
    started.notify_one();
    no_content()
}

/// Sends one chunk and waits until the attach connection wrote it.
async fn emit(frames: &mpsc::UnboundedSender<Frame>, stream: u8, bytes: Vec<u8>) {
    let (written, done) = oneshot::channel();
    if frames.send((stream, bytes, written)).is_ok() {
        let _ = done.await;
    }
}

fn wait(engine: &Shared, id: &str) -> Response {
    let e = engine.lock().unwrap();
    let Some(c) = e.containers.get(id) else {
        return message(StatusCode::NOT_FOUND, &format!("No such container: {id}"));
    };
    let mut exit = c.exit.subscribe();
    // Headers go out at once; the status follows when the container stops.
    let body = futures::stream::once(async move {
        let code = exit
            .wait_for(Option::is_some)
            .await
            .map(|c| c.unwrap_or(0))
            .unwrap_or(137);
        Ok::<_, std::io::Error>(Bytes::from(format!(
            "{}\n",
            json!({"Error": null, "StatusCode": code})
        )))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(body))
        .unwrap()
}

fn inspect(engine: &Shared, id: &str) -> Response {
    let e = engine.lock().unwrap();
    let Some(c) = e.containers.get(id) else {
        return message(StatusCode::NOT_FOUND, &format!("No such container: {id}"));
    };
    let code = *c.exit.borrow();
    json_response(
        StatusCode::OK,
        json!({
            "Id": id,
            "Created": "2026-12-07T10:00:00.000000000Z",
            "Path": "python3",
            "Args": [],
            "State": {
                "Status": if c.running { "running" } else { "exited" },
                "Running": c.running, "Paused": false, "Restarting": false,
                "OOMKilled": c.oom_killed, "Dead": false, "Pid": 0,
                "ExitCode": code.unwrap_or(0), "Error": "",
                "StartedAt": "2026-12-07T10:00:00.100000000Z",
                "FinishedAt": "2026-12-07T10:00:01.000000000Z"
            },
            "Image": "sha256:6f1a",
            "Name": "/clara-sandbox",
            "HostConfig": c.host_config,
        }),
    )
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn spec(workspace: &Path, argv: &[&str]) -> RunSpec {
    RunSpec {
        argv: argv.iter().map(|s| (*s).to_owned()).collect(),
        stdin: None,
        workspace: workspace.to_path_buf(),
        env: Vec::new(),
        limits: Limits::default(),
        network: false,
    }
}

/// Runs `spec` and collects everything it printed.
async fn run(docker: &Docker, spec: RunSpec) -> (Result<RunEnd, SandboxError>, Vec<Output>) {
    let (tx, mut rx) = mpsc::channel(256);
    let end = tokio::time::timeout(PATIENCE, docker.run(spec, tx))
        .await
        .expect("the run did not end");
    let mut outputs = Vec::new();
    while let Ok(o) = rx.try_recv() {
        outputs.push(o);
    }
    (end, outputs)
}

fn text(outputs: &[Output], stream: Stream) -> String {
    outputs
        .iter()
        .filter(|o| o.stream == stream)
        .map(|o| String::from_utf8_lossy(&o.bytes).into_owned())
        .collect()
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[tokio::test]
async fn output_streams_live_and_the_exit_code_is_reported() {
    let gate = Arc::new(Notify::new());
    let fake = Fake::start(Script {
        chunks: vec![out("hello\n"), err("warning: x\n"), out("bye\n")],
        exit_code: 3,
        gate: Some(gate.clone()),
        ..Script::default()
    })
    .await;
    let docker = Arc::new(fake.docker());
    let dir = tempfile::tempdir().unwrap();
    let (tx, mut rx) = mpsc::channel(16);
    let running = tokio::spawn({
        let docker = docker.clone();
        let spec = spec(dir.path(), &["python3", "x.py"]);
        async move { docker.run(spec, tx).await }
    });

    // Output arrives while the run is still going.
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let o = tokio::time::timeout(PATIENCE, rx.recv())
            .await
            .unwrap()
            .unwrap();
        seen.push(o);
    }
    assert!(!running.is_finished());
    gate.notify_one();
    let end = tokio::time::timeout(PATIENCE, running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    assert_eq!(text(&seen, Stream::Stdout), "hello\nbye\n");
    assert_eq!(text(&seen, Stream::Stderr), "warning: x\n");
    assert_eq!(seen[1].stream, Stream::Stderr);
    assert_eq!(end.exit_code, Some(3));
    assert_eq!((end.signal, end.stopped), (None, None));
    assert!(!end.success());
    assert_eq!(fake.removed(), fake.ids());
}

#[tokio::test]
async fn a_clean_exit_is_a_success() {
    let fake = Fake::start(Script {
        chunks: vec![out("42\n")],
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (end, outputs) = run(
        &fake.docker(),
        spec(dir.path(), &["python3", "-c", "print(42)"]),
    )
    .await;
    let end = end.unwrap();
    assert!(end.success(), "{end:?}");
    assert_eq!(text(&outputs, Stream::Stdout), "42\n");
}

#[tokio::test]
async fn the_container_is_isolated_and_gets_no_clara_environment() {
    let fake = Fake::start(Script::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec(
        dir.path(),
        &["python3", "/workspace/.clara/runs/a.py", "--flag"],
    );
    spec.env = vec![("MPLBACKEND".to_owned(), "Agg".to_owned())];
    spec.limits = Limits {
        wall: Duration::from_secs(900),
        cpu: Duration::from_secs(120),
        memory_bytes: 256 << 20,
        processes: 32,
        file_bytes: 8 << 20,
    };
    let (end, _) = run(&fake.docker(), spec).await;
    end.unwrap();

    let body = &fake.created()[0];
    let host = &body["HostConfig"];
    assert_eq!(host["NetworkMode"], "none");
    assert_eq!(host["Memory"], 256 << 20);
    assert_eq!(host["MemorySwap"], 256 << 20);
    assert_eq!(host["NanoCpus"], 1_000_000_000);
    assert_eq!(host["PidsLimit"], 32);
    assert_eq!(host["CapDrop"], json!(["ALL"]));
    assert_eq!(host["SecurityOpt"], json!(["no-new-privileges"]));
    assert_eq!(host["ReadonlyRootfs"], true);
    assert_eq!(host["Privileged"], false);
    assert!(host["Tmpfs"]["/tmp"].as_str().unwrap().contains("size="));
    assert_eq!(host["LogConfig"]["Type"], "none");
    assert_eq!(
        host["Ulimits"],
        json!([{"Name": "cpu", "Soft": 120, "Hard": 121}, {"Name": "fsize", "Soft": 8 << 20, "Hard": 8 << 20}])
    );
    // The workspace is the one host directory, read-write at /workspace.
    assert_eq!(
        host["Mounts"],
        json!([{"Target": "/workspace", "Source": dir.path().to_str().unwrap(), "Type": "bind", "ReadOnly": false}])
    );
    assert!(host.get("Binds").is_none_or(Value::is_null));
    assert_eq!(body["Image"], IMAGE);
    assert_eq!(body["Entrypoint"], json!(["python3"]));
    assert_eq!(
        body["Cmd"],
        json!(["/workspace/.clara/runs/a.py", "--flag"])
    );
    assert_eq!(body["WorkingDir"], "/workspace");
    assert_eq!(body["Labels"], json!({"clara.sandbox": "1"}));
    assert_eq!(body["Tty"], false);
    assert_eq!(body["OpenStdin"], false);
    let meta = std::fs::metadata(dir.path()).unwrap();
    assert_eq!(body["User"], format!("{}:{}", meta.uid(), meta.gid()));

    let env: Vec<&str> = body["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        env,
        [
            "HOME=/workspace",
            "PYTHONUNBUFFERED=1",
            "LANG=C.UTF-8",
            "MPLBACKEND=Agg"
        ]
    );
    // Nothing of this process's environment gets in, except by coincidence
    // the defaults the backend sets itself.
    let own = ["HOME", "PYTHONUNBUFFERED", "LANG", "MPLBACKEND"];
    for (key, value) in std::env::vars().filter(|(k, _)| !own.contains(&k.as_str())) {
        let entry = format!("{key}={value}");
        assert!(
            !env.contains(&entry.as_str()),
            "Clara's {key} reached the sandbox"
        );
    }
}

#[tokio::test]
async fn allowing_the_network_changes_the_network_mode() {
    let fake = Fake::start(Script::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec(dir.path(), &["true"]);
    spec.network = true;
    run(&fake.docker(), spec).await.0.unwrap();
    assert_eq!(fake.created()[0]["HostConfig"]["NetworkMode"], "bridge");
}

#[tokio::test]
async fn a_run_past_its_wall_time_is_killed_and_removed() {
    let fake = Fake::start(Script {
        chunks: vec![out("working\n")],
        hang: true,
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec(dir.path(), &["python3", "-c", "while True: pass"]);
    spec.limits.wall = Duration::from_millis(300);
    let (end, outputs) = run(&fake.docker(), spec).await;
    let end = end.unwrap();

    assert_eq!(end.stopped, Some(Stopped::WallTime));
    assert_eq!((end.exit_code, end.signal), (Some(137), Some(9)));
    assert_eq!(text(&outputs, Stream::Stdout), "working\n");
    let ids = fake.ids();
    assert_eq!(fake.killed(), ids);
    assert_eq!(fake.removed(), ids);
    let kill = fake.requests().into_iter().find(|r| r.ends_with("/kill"));
    assert!(kill.is_some());
}

#[tokio::test]
async fn an_oom_kill_is_reported_as_memory() {
    let fake = Fake::start(Script {
        exit_code: 137,
        oom: true,
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (end, _) = run(&fake.docker(), spec(dir.path(), &["python3", "big.py"])).await;
    let end = end.unwrap();
    assert_eq!(end.stopped, Some(Stopped::Memory));
    assert_eq!(end.exit_code, Some(137));
    assert!(fake.killed().is_empty());
    assert_eq!(fake.removed(), fake.ids());
}

#[tokio::test]
async fn rlimit_exits_are_recognised() {
    let fake = Fake::start(Script {
        exit_code: 152,
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (end, _) = run(&fake.docker(), spec(dir.path(), &["python3", "spin.py"])).await;
    assert_eq!(end.unwrap().stopped, Some(Stopped::CpuTime));
}

#[tokio::test]
async fn the_container_is_removed_when_it_cannot_start() {
    let why = "failed to create task for container: exec: \"nope\": executable file not found in $PATH: unknown";
    let fake = Fake::start(Script {
        fail_start: Some(why.to_owned()),
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (end, _) = run(&fake.docker(), spec(dir.path(), &["nope"])).await;
    let Err(SandboxError::Failed(message)) = end else {
        panic!("expected a failure, got {end:?}");
    };
    assert!(message.contains("executable file not found"), "{message}");
    assert!(!message.contains('\n'));
    assert_eq!(fake.created().len(), 1);
    assert_eq!(fake.with(|e| e.removed.len()), 1);
    assert!(fake.with(|e| e.containers.is_empty()));
}

#[tokio::test]
async fn the_container_is_removed_when_the_caller_gives_up() {
    let fake = Fake::start(Script {
        hang: true,
        ..Script::default()
    })
    .await;
    let docker = Arc::new(fake.docker());
    let dir = tempfile::tempdir().unwrap();
    let (tx, _rx) = mpsc::channel(16);
    let started = fake.started.notified();
    let running = tokio::spawn({
        let docker = docker.clone();
        let spec = spec(dir.path(), &["sleep", "infinity"]);
        async move { docker.run(spec, tx).await }
    });
    tokio::time::timeout(PATIENCE, started).await.unwrap();
    running.abort();
    let _ = running.await;
    eventually("the abandoned container is removed", || {
        fake.with(|e| e.removed.len() == 1)
    })
    .await;
    assert!(fake.with(|e| e.containers.is_empty()));
}

#[tokio::test]
async fn stdin_reaches_the_run_and_is_closed() {
    let fake = Fake::start(Script {
        echo_stdin: true,
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec(dir.path(), &["cat"]);
    spec.stdin = Some(b"line one\nline two\n".to_vec());
    let (end, outputs) = run(&fake.docker(), spec).await;
    assert!(end.unwrap().success());
    assert_eq!(text(&outputs, Stream::Stdout), "line one\nline two\n");
    let body = &fake.created()[0];
    assert_eq!(
        (&body["OpenStdin"], &body["StdinOnce"], &body["AttachStdin"]),
        (&json!(true), &json!(true), &json!(true))
    );
}

#[tokio::test]
async fn an_attach_stream_that_outlives_the_container_does_not_hold_the_run() {
    let fake = Fake::start(Script {
        chunks: vec![out("done\n")],
        keep_attach_open: true,
        ..Script::default()
    })
    .await;
    let docker = Docker::connect(DockerConfig {
        host: format!("tcp://{}", fake.addr),
        output_grace: Duration::from_millis(500),
        ..DockerConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (end, outputs) = run(&docker, spec(dir.path(), &["python3", "x.py"])).await;
    assert!(end.unwrap().success());
    assert_eq!(text(&outputs, Stream::Stdout), "done\n");
    assert_eq!(fake.removed(), fake.ids());
}

#[tokio::test]
async fn a_full_output_channel_never_stalls_the_run() {
    let fake = Fake::start(Script {
        chunks: (0..50).map(|i| out(&format!("line {i}\n"))).collect(),
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = mpsc::channel(1);
    let end = tokio::time::timeout(PATIENCE, fake.docker().run(spec(dir.path(), &["yes"]), tx))
        .await
        .expect("a full channel stalled the run");
    assert!(end.unwrap().success());
    drop(rx);

    let (tx, rx) = mpsc::channel(4);
    drop(rx);
    let end = tokio::time::timeout(PATIENCE, fake.docker().run(spec(dir.path(), &["yes"]), tx))
        .await
        .expect("a closed channel stalled the run");
    assert!(end.unwrap().success());
}

#[tokio::test]
async fn a_missing_image_is_pulled_before_the_run() {
    let fake = Fake::start_with(Engine::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let (end, _) = run(&fake.docker(), spec(dir.path(), &["true"])).await;
    assert!(end.unwrap().success());
    let pulls = fake.with(|e| e.pulls.clone());
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0].get("fromImage").map(String::as_str), Some(IMAGE));
    assert_eq!(pulls[0].get("tag"), None);
    let creates = fake
        .requests()
        .iter()
        .filter(|r| r.ends_with("/containers/create"))
        .count();
    assert_eq!(creates, 2);
    assert_eq!(fake.removed().len(), 1);
}

#[tokio::test]
async fn a_bare_image_name_pulls_latest_only() {
    let fake = Fake::start_with(Engine::default()).await;
    let docker = Docker::connect(DockerConfig {
        host: format!("tcp://{}", fake.addr),
        image: "python".to_owned(),
        ..DockerConfig::default()
    })
    .unwrap();
    docker.self_test().await.unwrap();
    let pulls = fake.with(|e| e.pulls.clone());
    assert_eq!(pulls[0].get("tag").map(String::as_str), Some("latest"));
    assert_eq!(fake.created()[0]["Image"], "python");
}

#[tokio::test]
async fn self_test_passes_against_an_engine() {
    let fake = Fake::start(Script::default()).await;
    let docker = fake.docker();
    assert_eq!(docker.name(), "docker");
    tokio::time::timeout(PATIENCE, docker.self_test())
        .await
        .unwrap()
        .unwrap();
    let requests = fake.requests();
    let has = |what: &str| requests.iter().any(|r| r.contains(what));
    assert!(has("GET /_ping"));
    assert!(has("GET /version"));
    assert!(has(&format!("GET /images/{IMAGE}/json")));
    assert!(has("/start") && has("/wait") && has("DELETE /containers/"));
    let body = &fake.created()[0];
    assert_eq!(body["Entrypoint"], json!(["true"]));
    assert_eq!(body["HostConfig"]["NetworkMode"], "none");
    assert!(body["HostConfig"].get("Mounts").is_none_or(Value::is_null));
    assert_eq!(fake.removed().len(), 1);
    assert!(fake.with(|e| e.pulls.is_empty()));
}

#[tokio::test]
async fn self_test_pulls_a_missing_image() {
    let fake = Fake::start_with(Engine::default()).await;
    fake.docker().self_test().await.unwrap();
    assert_eq!(fake.with(|e| e.pulls.len()), 1);
    assert!(fake.with(|e| e.images.contains(IMAGE)));
}

#[tokio::test]
async fn self_test_says_when_the_pull_fails() {
    let fake = Fake::start_with(Engine {
        pull_error: Some("pull access denied for python, repository does not exist or may require 'docker login'".to_owned()),
        ..Engine::default()
    })
    .await;
    let Err(SandboxError::Unavailable(why)) = fake.docker().self_test().await else {
        panic!("expected the self-test to fail");
    };
    assert!(
        why.contains("pulling it failed: pull access denied"),
        "{why}"
    );
    assert!(why.contains("DOCKER_SANDBOX_IMAGE"), "{why}");
    assert!(fake.created().is_empty());
}

#[tokio::test]
async fn self_test_fails_in_one_sentence_where_nothing_listens() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let docker = Docker::connect(DockerConfig {
        host: format!("tcp://{addr}"),
        ..DockerConfig::default()
    })
    .unwrap();
    let result = tokio::time::timeout(PATIENCE, docker.self_test())
        .await
        .unwrap();
    let Err(SandboxError::Unavailable(why)) = result else {
        panic!("expected Unavailable, got {result:?}");
    };
    assert!(
        why.starts_with(&format!("no Docker engine answers at tcp://{addr} (")),
        "{why}"
    );
    assert!(!why.contains('\n'), "{why}");
}

#[tokio::test]
async fn self_test_reports_an_engine_too_old_for_clara() {
    let fake = Fake::start_with(Engine {
        api_version: Some("1.40".to_owned()),
        ..Engine::default()
    })
    .await;
    let Err(SandboxError::Unavailable(why)) = fake.docker().self_test().await else {
        panic!("expected the self-test to fail");
    };
    assert!(
        why.contains("speaks API 1.40; Clara needs 1.41 or newer"),
        "{why}"
    );
    assert!(fake.created().is_empty());
}

#[tokio::test]
async fn self_test_reports_an_engine_that_refuses() {
    let fake = Fake::start_with(Engine {
        refuse: Some("Cannot connect to the containerd daemon".to_owned()),
        ..Engine::default()
    })
    .await;
    let Err(SandboxError::Unavailable(why)) = fake.docker().self_test().await else {
        panic!("expected the self-test to fail");
    };
    assert!(
        why.contains("refused Clara's requests: Cannot connect to the containerd daemon"),
        "{why}"
    );
    assert!(!why.contains('\n'), "{why}");
}
