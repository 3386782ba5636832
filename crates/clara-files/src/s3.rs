//! The S3 client for an [`S3Config`]: object_store's, told exactly what to
//! use (it reads no environment variable and asks no metadata service).

use crate::error::FilesError;
use crate::reason::{clause, root_cause};
use crate::settings::S3Config;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::{BackoffConfig, ClientOptions, RetryConfig};
use std::time::Duration;

/// The client for `config`. Makes no request.
pub(crate) fn client(config: &S3Config) -> Result<AmazonS3, FilesError> {
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&config.bucket)
        .with_region(&config.region)
        .with_access_key_id(&config.access_key_id)
        .with_secret_access_key(config.secret_access_key.expose())
        .with_virtual_hosted_style_request(!config.path_style)
        // The default (10 tries over 3 minutes) would keep a person waiting on
        // an upload long after it is clear the store is down.
        .with_retry(RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 3,
            retry_timeout: Duration::from_secs(30),
        })
        .with_client_options(
            ClientOptions::new()
                .with_connect_timeout(Duration::from_secs(10))
                .with_timeout(Duration::from_secs(120)),
        );
    if let Some(endpoint) = &config.endpoint {
        builder = builder
            .with_endpoint(client_endpoint(endpoint, &config.bucket, config.path_style))
            .with_allow_http(endpoint.starts_with("http://"));
    }
    // The builder's message may quote a setting, never the secret (it is not
    // parsed), but the place it names is all the person needs.
    builder.build().map_err(|error| {
        FilesError::Setup(format!(
            "The S3 client for {} could not be set up: {}.",
            place(config),
            clause(&root_cause(&error, Some(&config.secret_access_key)))
        ))
    })
}

/// Where `config` keeps files, for messages: `the S3 bucket b at
/// http://host:9000/clara`, without any credentials an endpoint URL carries.
pub(crate) fn place(config: &S3Config) -> String {
    let at = match &config.endpoint {
        Some(endpoint) => format!(" at {}", without_userinfo(endpoint)),
        None => format!(" in {}", config.region),
    };
    let under = match &config.prefix {
        Some(prefix) => format!(", under {prefix}/"),
        None => String::new(),
    };
    format!("the S3 bucket {}{at}{under}", config.bucket)
}

/// The endpoint object_store is given. With path-style requests it adds the
/// bucket itself; with virtual-hosted ones it takes the endpoint as the
/// bucket's own, so the bucket goes in front of the host
/// (`https://s3.example.com` → `https://b.s3.example.com`).
fn client_endpoint(endpoint: &str, bucket: &str, path_style: bool) -> String {
    let endpoint = endpoint.trim_end_matches('/');
    if path_style {
        return endpoint.to_owned();
    }
    match endpoint.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{bucket}.{rest}"),
        None => format!("{bucket}.{endpoint}"),
    }
}

/// `url` without a `user:password@` part.
fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clara_core::Secret;

    #[test]
    fn the_bucket_goes_in_front_of_the_host_unless_requests_are_path_style() {
        assert_eq!(
            client_endpoint("https://s3.example.com/", "b", false),
            "https://b.s3.example.com"
        );
        assert_eq!(
            client_endpoint("http://127.0.0.1:9000/", "b", true),
            "http://127.0.0.1:9000"
        );
    }

    #[test]
    fn the_place_never_shows_credentials_from_the_endpoint() {
        let config = S3Config {
            bucket: "b".into(),
            region: "eu-west-1".into(),
            endpoint: Some("https://id:pass@minio.local:9000/x".into()),
            access_key_id: "id".into(),
            secret_access_key: Secret::new("pass"),
            path_style: true,
            prefix: Some("clara".into()),
        };
        assert_eq!(
            place(&config),
            "the S3 bucket b at https://minio.local:9000/x, under clara/"
        );
        let aws = S3Config {
            endpoint: None,
            prefix: None,
            ..config
        };
        assert_eq!(place(&aws), "the S3 bucket b in eu-west-1");
    }
}
