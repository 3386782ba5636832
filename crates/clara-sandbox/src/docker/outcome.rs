//! How a container's end reads as a [`RunEnd`].
//!
//! The engine reports an exit code only; a process killed by signal `n`
//! shows as `128 + n`. What stopped it is read from that code, the
//! container's `OOMKilled` flag and whether Clara killed it for time.
//! Hitting the process limit leaves no trace the engine reports (forks just
//! fail inside), so [`Stopped::Processes`] is never inferred here.

use crate::run::{RunEnd, Stopped};
use std::time::Duration;

const SIGKILL: i32 = 9;
const SIGXCPU: i32 = 24;
const SIGXFSZ: i32 = 25;

/// What the engine said about a finished container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Exit {
    /// The exit code from `wait` (or `inspect`), when there was one.
    pub code: Option<i64>,
    /// `State.OOMKilled` from `inspect`.
    pub oom_killed: bool,
    /// Whether Clara killed it because it ran past its wall time (and the
    /// kill was accepted, i.e. it was still running).
    pub killed_for_time: bool,
}

/// Reads an [`Exit`] as a [`RunEnd`] lasting `duration`.
pub(crate) fn classify(exit: Exit, duration: Duration) -> RunEnd {
    let code = exit.code.map(|c| i32::try_from(c).unwrap_or(i32::MAX));
    // Docker's own convention for a process ended by a signal.
    let signal = code.filter(|c| (129..=159).contains(c)).map(|c| c - 128);
    let stopped = if exit.oom_killed {
        Some(Stopped::Memory)
    } else if exit.killed_for_time {
        Some(Stopped::WallTime)
    } else {
        match signal {
            Some(SIGXCPU) => Some(Stopped::CpuTime),
            Some(SIGXFSZ) => Some(Stopped::FileSize),
            _ => None,
        }
    };
    let signal = match stopped {
        Some(Stopped::WallTime) if signal.is_none() => Some(SIGKILL),
        _ => signal,
    };
    RunEnd {
        exit_code: code,
        signal,
        stopped,
        duration,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(code: i64, oom_killed: bool, killed_for_time: bool) -> RunEnd {
        classify(
            Exit {
                code: Some(code),
                oom_killed,
                killed_for_time,
            },
            Duration::from_secs(1),
        )
    }

    #[test]
    fn a_clean_exit_is_a_success() {
        let e = end(0, false, false);
        assert!(e.success());
        assert_eq!((e.signal, e.stopped), (None, None));
        assert_eq!(end(3, false, false).exit_code, Some(3));
    }

    #[test]
    fn oom_wins_over_everything() {
        let e = end(137, true, true);
        assert_eq!(e.stopped, Some(Stopped::Memory));
        assert_eq!(e.signal, Some(9));
    }

    #[test]
    fn our_kill_is_wall_time_and_a_plain_137_is_just_a_signal() {
        assert_eq!(end(137, false, true).stopped, Some(Stopped::WallTime));
        let e = end(137, false, false);
        assert_eq!((e.stopped, e.signal), (None, Some(9)));
    }

    #[test]
    fn rlimit_signals() {
        assert_eq!(end(152, false, false).stopped, Some(Stopped::CpuTime));
        assert_eq!(end(153, false, false).stopped, Some(Stopped::FileSize));
        assert_eq!(end(139, false, false).signal, Some(11));
    }

    #[test]
    fn killed_without_an_exit_code_still_reports_the_kill() {
        let e = classify(
            Exit {
                code: None,
                oom_killed: false,
                killed_for_time: true,
            },
            Duration::ZERO,
        );
        assert_eq!(
            (e.exit_code, e.signal, e.stopped),
            (None, Some(9), Some(Stopped::WallTime))
        );
    }
}
