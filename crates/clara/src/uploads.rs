//! Where the files people send go: the file store (`[files]`: a local
//! directory, or S3) keeps the original, and the person's sandbox workspace
//! gets a copy in `uploads/`, where the code and file tools find it. The
//! engine calls this for every attachment and tells the model the path.

use async_trait::async_trait;
use clara_core::{FileBlob, UserId};
use clara_files::{FileKey, FileStore};
use clara_runtime::Uploads;

/// The binary's [`Uploads`]: the store, then the workspace.
pub struct KeptUploads {
    store: FileStore,
    #[cfg(feature = "sandbox")]
    workspaces: Option<clara_sandbox::Workspaces>,
}

impl KeptUploads {
    /// Keeps files in `store`, and copies them into the person's workspace
    /// when there are `workspaces` (the sandbox is built in).
    pub fn new(
        store: FileStore,
        #[cfg(feature = "sandbox")] workspaces: Option<clara_sandbox::Workspaces>,
    ) -> Self {
        Self {
            store,
            #[cfg(feature = "sandbox")]
            workspaces,
        }
    }
}

#[async_trait]
impl Uploads for KeptUploads {
    async fn keep(&self, user: UserId, file: &FileBlob) -> Result<String, String> {
        let key = FileKey::upload(&user, &file.name, chrono::Utc::now().timestamp_millis());
        let stored = self
            .store
            .put(&key, file)
            .await
            .map_err(|e| e.to_string())?;
        #[cfg(feature = "sandbox")]
        if let Some(workspaces) = &self.workspaces {
            let workspaces = workspaces.clone();
            let file = file.clone();
            // Blocking file system work, off the conversation's task.
            return tokio::task::spawn_blocking(move || workspaces.put_upload(&user, &file))
                .await
                .map_err(|_| "The workspace could not be written.".to_owned())?
                .map_err(|e| e.to_string());
        }
        Ok(format!("kept as {}", stored.key.as_str()))
    }
}
