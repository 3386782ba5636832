//! The local directory store, on a real directory: what is put comes back,
//! is listed, and is gone after a delete; hostile names stay inside.
// Test helpers may panic: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clara_core::component::Component;
use clara_core::{FileBlob, UserId};
use clara_files::{FileKey, FileStore, Files, FilesError, FilesSettings};

// 2026-11-22T10:00:00Z
const NOW_MS: i64 = 1_795_341_600_000;

fn store(dir: &std::path::Path) -> FileStore {
    FileStore::local(dir.join("files")).unwrap()
}

#[tokio::test]
async fn a_file_put_comes_back_is_listed_and_is_gone_after_delete() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(tmp.path());
    let user = UserId::new();
    let key = FileKey::upload(&user, "report.pdf", NOW_MS);
    let file = FileBlob::new("report.pdf", b"%PDF-1.7 hello".to_vec());

    let stored = store.put(&key, &file).await.unwrap();
    assert_eq!(stored.key, key);
    assert_eq!(stored.name, "report.pdf");
    assert_eq!(stored.media_type, "application/pdf");
    assert_eq!(stored.size, 14);

    // On disk where the key says.
    let on_disk = tmp.path().join("files").join(key.as_str());
    assert_eq!(std::fs::read(&on_disk).unwrap(), b"%PDF-1.7 hello");

    let back = store.get(&key).await.unwrap();
    assert_eq!(back, file);

    let other_user = UserId::new();
    let other = FileKey::upload(&other_user, "photo.jpg", NOW_MS);
    store
        .put(&other, &FileBlob::new("photo.jpg", vec![0xff, 0xd8]))
        .await
        .unwrap();

    let mine = store.list(&FileKey::user_prefix(&user)).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].key, key);
    assert_eq!(mine[0].size, 14);
    assert_eq!(mine[0].media_type, "application/pdf");
    assert!(mine[0].modified_ms.is_some());
    let today = store
        .list(&FileKey::day_prefix(&user, NOW_MS))
        .await
        .unwrap();
    assert_eq!(today.len(), 1);
    assert_eq!(store.list("").await.unwrap().len(), 2);
    assert!(store.list("uploads/nobody").await.unwrap().is_empty());

    store.delete(&key).await.unwrap();
    assert!(
        store
            .list(&FileKey::user_prefix(&user))
            .await
            .unwrap()
            .is_empty()
    );
    let gone = store.get(&key).await.unwrap_err();
    assert!(matches!(gone, FilesError::NotFound { .. }), "{gone}");
    assert_eq!(gone.to_string(), format!("No file is kept at {key}."));
    // Deleting again is no error, and the root directory stays.
    store.delete(&key).await.unwrap();
    assert!(tmp.path().join("files").is_dir());
    assert!(
        !tmp.path()
            .join("files")
            .join(FileKey::user_prefix(&user))
            .exists()
    );
}

#[tokio::test]
async fn hostile_names_are_kept_inside_the_directory_under_a_clean_name() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(tmp.path());
    let user = UserId::new();
    for (name, clean) in [
        ("../../etc/passwd", "passwd"),
        (".bashrc", "bashrc"),
        ("Отчёт за май.pdf", "Отчёт за май.pdf"),
        ("写真 🐈.jpg", "写真 🐈.jpg"),
    ] {
        let key = FileKey::upload(&user, name, NOW_MS);
        let stored = store
            .put(&key, &FileBlob::new(name, b"x".to_vec()))
            .await
            .unwrap();
        assert_eq!(stored.name, clean);
        assert_eq!(store.get(&key).await.unwrap().name, clean);
    }
    let long = format!("{}.txt", "n".repeat(1000));
    let key = FileKey::upload(&user, &long, NOW_MS);
    store
        .put(&key, &FileBlob::new(long.as_str(), b"x".to_vec()))
        .await
        .unwrap();
    assert!(key.file_name().ends_with(".txt"));
    assert!(key.file_name().len() <= clara_files::MAX_NAME_BYTES);

    // Nothing escaped: every file is below the files directory.
    assert!(!tmp.path().join("etc").exists());
    assert_eq!(
        store
            .list(&FileKey::user_prefix(&user))
            .await
            .unwrap()
            .len(),
        5
    );
}

#[tokio::test]
async fn a_file_over_the_limit_is_refused_with_one_sentence() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(tmp.path()).with_max_file_bytes(1024 * 1024);
    let user = UserId::new();
    let key = FileKey::upload(&user, "big.bin", NOW_MS);
    let big = FileBlob::new("big.bin", vec![0; 1024 * 1024 + 300 * 1024]);
    let error = store.put(&key, &big).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "big.bin is 1.3 MB; files up to 1 MB are kept."
    );
    assert!(store.list("").await.unwrap().is_empty());
    // Exactly at the limit is kept; adapters can ask before downloading.
    let fits = FileBlob::new("fits.bin", vec![0; 1024 * 1024]);
    store.put(&key, &fits).await.unwrap();
    assert!(store.check_size("huge.mov", 5 * 1024 * 1024).is_err());
}

#[tokio::test]
async fn a_type_not_given_comes_from_the_name() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(tmp.path());
    let key = FileKey::upload(&UserId::new(), "voice.ogg", NOW_MS);
    let mut file = FileBlob::new("voice.ogg", vec![1, 2, 3]);
    file.media_type = String::new();
    assert_eq!(
        store.put(&key, &file).await.unwrap().media_type,
        "audio/ogg"
    );
    assert_eq!(store.get(&key).await.unwrap().media_type, "audio/ogg");
}

#[tokio::test]
async fn the_memory_store_keeps_the_given_type() {
    let store = FileStore::in_memory();
    let key = FileKey::upload(&UserId::new(), "data", NOW_MS);
    let mut file = FileBlob::new("data", vec![1]);
    file.media_type = "text/csv".into();
    store.put(&key, &file).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap().media_type, "text/csv");
}

#[test]
fn the_settings_make_a_local_store_with_their_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let settings: FilesSettings = toml::from_str("max_file_mb = 3").unwrap();
    let store = FileStore::from_settings(&settings, tmp.path()).unwrap();
    assert_eq!(store.max_file_bytes(), 3 * 1024 * 1024);
    let dir = tmp.path().join("files");
    assert!(dir.is_dir());
    assert_eq!(
        store.place(),
        format!("the files directory {}", dir.display())
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
    assert_eq!(Files::NAME, "files");
    assert_eq!(Files::ENV[0].0, "S3_BUCKET");
}

#[test]
fn a_directory_that_cannot_be_made_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let blocker = tmp.path().join("a-file");
    std::fs::write(&blocker, b"").unwrap();
    let settings: FilesSettings =
        toml::from_str(&format!("dir = {:?}", blocker.join("files"))).unwrap();
    let error = FileStore::from_settings(&settings, tmp.path()).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "[files] dir: The files directory {} could not be created: Not a directory (os error 20).",
            blocker.join("files").display()
        )
    );
}

#[tokio::test]
async fn a_bad_folder_to_list_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let error = store(tmp.path()).list("../up").await.unwrap_err();
    assert!(matches!(error, FilesError::BadKey { .. }), "{error}");
}
