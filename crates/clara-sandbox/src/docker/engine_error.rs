//! The engine's errors as short phrases for Clara's one-sentence errors.

use bollard::errors::Error;

/// What went wrong, in a phrase: the engine's own message when it answered,
/// else the root cause (e.g. "Connection refused (os error 111)").
pub(crate) fn describe(err: &Error) -> String {
    let text = match err {
        Error::DockerResponseServerError { message, .. } => message.clone(),
        Error::DockerStreamError { error } => error.clone(),
        Error::DockerContainerWaitError { error, code } if error.is_empty() => {
            format!("exit code {code}")
        }
        Error::DockerContainerWaitError { error, .. } => error.clone(),
        Error::RequestTimeoutError => "the engine did not answer in time".to_owned(),
        other => root_cause(other),
    };
    let text = text.trim().trim_end_matches('.');
    if text.is_empty() {
        "no reason given".to_owned()
    } else {
        text.to_owned()
    }
}

/// The HTTP status of an engine's refusal, when it answered with one.
pub(crate) fn status(err: &Error) -> Option<u16> {
    match err {
        Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// Whether the engine answered at all (as opposed to being unreachable).
pub(crate) fn answered(err: &Error) -> bool {
    matches!(
        err,
        Error::DockerResponseServerError { .. }
            | Error::DockerStreamError { .. }
            | Error::JsonDataError { .. }
            | Error::JsonSerdeError { .. }
    )
}

fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_messages_are_kept_and_trimmed() {
        let err = Error::DockerResponseServerError {
            status_code: 404,
            message: "No such image: python:3.12-slim.\n".to_owned(),
        };
        assert_eq!(describe(&err), "No such image: python:3.12-slim");
        assert_eq!(status(&err), Some(404));
        assert!(answered(&err));
    }

    #[test]
    fn io_errors_give_their_root_cause() {
        let err = Error::from(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused",
        ));
        assert_eq!(describe(&err), "Connection refused");
        assert!(!answered(&err));
        assert_eq!(
            describe(&Error::RequestTimeoutError),
            "the engine did not answer in time"
        );
    }
}
