//! The S3 store against s3rver, a real S3-compatible server (its wire format,
//! its key checks, its errors), installed by `bash scripts/s3-fake.sh` and started
//! here on a free port for each test.
#![cfg(feature = "s3")]
// Test helpers may panic: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clara_core::{FileBlob, Secret, UserId};
use clara_files::{FileKey, FileStore, FilesError, FilesSettings, S3Config};
use std::io::{BufRead as _, BufReader, Read as _};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

// 2026-11-22T10:00:00Z
const NOW_MS: i64 = 1_795_341_600_000;
const BUCKET: &str = "clara-test";
/// The only keys s3rver accepts.
const KEY: &str = "S3RVER";

/// A running s3rver, killed when dropped (also when a test fails).
struct S3rver {
    child: Child,
    endpoint: String,
    _data: tempfile::TempDir,
}

impl S3rver {
    fn start() -> Self {
        let dir = std::env::var_os("CLARA_S3RVER_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let cache = std::env::var_os("XDG_CACHE_HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| {
                        PathBuf::from(std::env::var_os("HOME").expect("HOME is not set"))
                            .join(".cache")
                    });
                cache.join("clara").join("s3rver")
            });
        let entry = dir.join("node_modules/s3rver/bin/s3rver.js");
        assert!(
            entry.is_file(),
            "s3rver is not installed at {}: run `bash scripts/s3-fake.sh` first",
            entry.display()
        );
        let data = tempfile::tempdir().unwrap();
        let mut child = Command::new("node")
            .arg(&entry)
            .args(["--silent", "--address", "127.0.0.1", "--port", "0"])
            .arg("--directory")
            .arg(data.path())
            .args(["--configure-bucket", BUCKET])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("node could not be started for s3rver ({e}): install Node.js, then run `bash scripts/s3-fake.sh`")
            });
        // With --silent it prints only this line; the port is the one it chose.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(address) = line.trim().strip_prefix("S3rver listening on ") {
                    let _ = tx.send(address.to_owned());
                }
            }
        });
        let address = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(address) => address,
            Err(_) => {
                let _ = child.kill();
                let mut stderr = String::new();
                let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
                panic!("s3rver did not start: {stderr}");
            }
        };
        Self {
            child,
            endpoint: format!("http://{address}"),
            _data: data,
        }
    }

    fn config(&self, secret: &str, prefix: Option<&str>) -> S3Config {
        S3Config {
            bucket: BUCKET.to_owned(),
            region: "us-east-1".to_owned(),
            endpoint: Some(self.endpoint.clone()),
            access_key_id: KEY.to_owned(),
            secret_access_key: Secret::new(secret),
            path_style: true,
            prefix: prefix.map(str::to_owned),
        }
    }
}

impl Drop for S3rver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn files_round_trip_through_a_real_s3_server() {
    let server = S3rver::start();
    let store = FileStore::s3(server.config(KEY, Some("clara"))).unwrap();
    let user = UserId::new();

    let key = FileKey::upload(&user, "Отчёт [май].pdf", NOW_MS);
    let file = FileBlob::new("Отчёт [май].pdf", b"%PDF-1.7 report".to_vec());
    let stored = store.put(&key, &file).await.unwrap();
    assert_eq!(stored.name, "Отчёт (май).pdf");
    assert_eq!(stored.media_type, "application/pdf");

    let back = store.get(&key).await.unwrap();
    assert_eq!(back.name, "Отчёт (май).pdf");
    assert_eq!(back.data, file.data);
    assert_eq!(back.media_type, "application/pdf");

    // The type given is kept with the object, not guessed from the name.
    let data_key = FileKey::upload(&user, "export", NOW_MS);
    let mut table = FileBlob::new("export", b"a,b\n1,2\n".to_vec());
    table.media_type = "text/csv".to_owned();
    store.put(&data_key, &table).await.unwrap();
    assert_eq!(store.get(&data_key).await.unwrap().media_type, "text/csv");

    let other = FileKey::upload(&UserId::new(), "cat.jpg", NOW_MS);
    store
        .put(&other, &FileBlob::new("cat.jpg", vec![0xff, 0xd8, 0xff]))
        .await
        .unwrap();

    let mine = store.list(&FileKey::user_prefix(&user)).await.unwrap();
    let keys: Vec<&FileKey> = mine.iter().map(|f| &f.key).collect();
    let mut expected = vec![&key, &data_key];
    expected.sort();
    assert_eq!(keys, expected);
    let pdf = mine.iter().find(|f| f.key == key).unwrap();
    assert_eq!(pdf.size, 15);
    assert!(pdf.modified_ms.is_some());
    assert_eq!(store.list("").await.unwrap().len(), 3);

    // Everything is under the prefix in the bucket.
    let whole_bucket = FileStore::s3(server.config(KEY, None)).unwrap();
    let all = whole_bucket.list("").await.unwrap();
    assert_eq!(all.len(), 3);
    assert!(
        all.iter()
            .all(|f| f.key.as_str().starts_with("clara/uploads/"))
    );

    store.delete(&key).await.unwrap();
    let gone = store.get(&key).await.unwrap_err();
    assert!(matches!(gone, FilesError::NotFound { .. }), "{gone}");
    assert_eq!(
        store
            .list(&FileKey::user_prefix(&user))
            .await
            .unwrap()
            .len(),
        1
    );
    // Deleting what is not there is no error.
    store.delete(&key).await.unwrap();
}

#[tokio::test]
async fn wrong_credentials_are_a_clear_error_without_the_secret() {
    let server = S3rver::start();
    // s3rver checks the key id of a SigV4 request but not its signature (it
    // verifies only SigV2, which object_store does not use), so the refusal
    // comes from the key id; S3's SignatureDoesNotMatch is the same 403.
    let wrong = "wrong-secret-0f3a9c";
    let store = FileStore::s3(S3Config {
        access_key_id: "NOT-S3RVER".to_owned(),
        ..server.config(wrong, None)
    })
    .unwrap();
    let key = FileKey::upload(&UserId::new(), "a.txt", NOW_MS);

    let error = store
        .put(&key, &FileBlob::new("a.txt", b"hi".to_vec()))
        .await
        .unwrap_err();
    assert!(matches!(error, FilesError::Denied { .. }), "{error:?}");
    let sentence = error.to_string();
    assert_eq!(
        sentence,
        format!(
            "the S3 bucket {BUCKET} at {} refused Clara's credentials: check s3_access_key_id and s3_secret_access_key in [files].",
            server.endpoint
        )
    );
    assert!(!format!("{error:?}").contains(wrong));

    for error in [
        store.get(&key).await.unwrap_err(),
        store.list("").await.unwrap_err(),
    ] {
        assert!(matches!(error, FilesError::Denied { .. }), "{error:?}");
        assert!(!error.to_string().contains(wrong));
    }
}

#[tokio::test]
async fn an_unreachable_store_is_a_clear_error() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let secret = "s3cr3t-not-shown";
    let store = FileStore::s3(S3Config {
        bucket: BUCKET.to_owned(),
        region: "us-east-1".to_owned(),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        access_key_id: KEY.to_owned(),
        secret_access_key: Secret::new(secret),
        path_style: true,
        prefix: None,
    })
    .unwrap();
    let key = FileKey::parse("uploads/u/2026-11-22/a.txt").unwrap();
    let error = store
        .put(&key, &FileBlob::new("a.txt", b"hi".to_vec()))
        .await
        .unwrap_err();
    let sentence = error.to_string();
    assert!(matches!(error, FilesError::Store { .. }), "{error:?}");
    assert!(
        sentence.starts_with(&format!(
            "Could not keep {key} in the S3 bucket {BUCKET} at http://127.0.0.1:{port}: "
        )),
        "{sentence}"
    );
    assert!(sentence.to_lowercase().contains("connect"), "{sentence}");
    assert!(!sentence.contains(secret));
}

#[tokio::test]
async fn the_settings_make_an_s3_store() {
    let server = S3rver::start();
    let settings: FilesSettings = toml::from_str(&format!(
        r#"
        s3_bucket = "{BUCKET}"
        s3_endpoint = "{}"
        s3_access_key_id = "{KEY}"
        s3_secret_access_key = "{KEY}"
        s3_path_style = true
        max_file_mb = 1
        "#,
        server.endpoint
    ))
    .unwrap();
    let data_dir = tempfile::tempdir().unwrap();
    let store = FileStore::from_settings(&settings, data_dir.path()).unwrap();
    assert_eq!(
        store.place(),
        format!("the S3 bucket {BUCKET} at {}", server.endpoint)
    );
    // No local directory is made for an S3 store.
    assert!(!data_dir.path().join("files").exists());

    let key = FileKey::upload(&UserId::new(), "big.bin", NOW_MS);
    let big = FileBlob::new("big.bin", vec![0; 2 * 1024 * 1024]);
    assert_eq!(
        store.put(&key, &big).await.unwrap_err().to_string(),
        "big.bin is 2 MB; files up to 1 MB are kept."
    );
    let small = FileBlob::new("small.bin", vec![7; 1000]);
    store.put(&key, &small).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap().data, small.data);
}
