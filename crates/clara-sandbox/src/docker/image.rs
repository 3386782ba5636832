//! Making sure the engine has the sandbox image, pulling it if not.

use super::engine_error::{describe, status};
use bollard::Docker as Engine;
use bollard::errors::Error;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures::StreamExt;
use tracing::{debug, info};

/// The `tag` to send with a pull of `image`: the Engine API pulls *every*
/// tag of a bare name, so a reference without tag or digest gets `latest`
/// as `docker pull` does.
pub(crate) fn pull_tag(image: &str) -> Option<&'static str> {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last.contains(':') {
        None
    } else {
        Some("latest")
    }
}

/// Whether creating a container failed only because its image is absent.
pub(crate) fn is_missing_image(err: &Error) -> bool {
    status(err) == Some(404) && describe(err).to_ascii_lowercase().contains("no such image")
}

/// Pulls `image`; the error is a phrase saying why it failed.
pub(crate) async fn pull(engine: &Engine, image: &str) -> Result<(), String> {
    info!(image, "pulling the sandbox image");
    let mut options = CreateImageOptionsBuilder::new().from_image(image);
    if let Some(tag) = pull_tag(image) {
        options = options.tag(tag);
    }
    let mut progress = engine.create_image(Some(options.build()), None, None);
    while let Some(step) = progress.next().await {
        match step {
            Ok(step) => debug!(image, status = ?step.status, "pull"),
            Err(err) => return Err(describe(&err)),
        }
    }
    Ok(())
}

/// Makes sure the engine has `image`, pulling it when it does not. The
/// error is one sentence.
pub(crate) async fn ensure(engine: &Engine, image: &str) -> Result<(), String> {
    match engine.inspect_image(image).await {
        Ok(_) => Ok(()),
        Err(err) if status(&err) == Some(404) => pull(engine, image)
            .await
            .map_err(|why| pull_failed(image, &why)),
        Err(err) => Err(format!(
            "the Docker engine could not look up the sandbox image {image}: {}",
            describe(&err)
        )),
    }
}

/// The sentence for a failed pull.
pub(crate) fn pull_failed(image: &str, why: &str) -> String {
    format!(
        "the sandbox image {image} is not on the Docker engine and pulling it failed: {why} \
         (set DOCKER_SANDBOX_IMAGE to an image the engine has or can pull)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_names_pull_latest_only() {
        assert_eq!(pull_tag("python"), Some("latest"));
        assert_eq!(pull_tag("registry.local:5000/team/py"), Some("latest"));
        assert_eq!(pull_tag("python:3.12-slim"), None);
        assert_eq!(pull_tag("registry.local:5000/team/py:1"), None);
        assert_eq!(pull_tag("python@sha256:abcd"), None);
    }

    #[test]
    fn missing_image_is_recognised() {
        let err = Error::DockerResponseServerError {
            status_code: 404,
            message: "No such image: python:3.12-slim".to_owned(),
        };
        assert!(is_missing_image(&err));
        let other = Error::DockerResponseServerError {
            status_code: 404,
            message: "No such container: abc".to_owned(),
        };
        assert!(!is_missing_image(&other));
    }
}
