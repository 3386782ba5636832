//! Logging in to the web page: the operator's password (Argon2), login sessions
//! kept in memory behind a random cookie, their CSRF tokens, a brake on password
//! guessing, and the host check that keeps other web sites out of a loopback
//! Clara.
//!
//! Pure pieces take the time as an argument, so they are tested without a clock.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use parking_lot::Mutex;
use rand::RngCore;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// The login cookie's name.
pub(crate) const COOKIE: &str = "clara_session";

/// The header the page sends its CSRF token in, on every state-changing request.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

/// How many logins are kept at once; the oldest go first beyond this.
const MAX_LOGINS: usize = 1_000;

/// Why a password could not be hashed or a hash is unusable.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The password is empty.
    #[error("the password is empty")]
    EmptyPassword,
    /// The hash is not an Argon2 PHC string.
    #[error(
        "the password hash is not an Argon2 PHC string (it should start with $argon2id$); `clara hash-password` prints one"
    )]
    BadHash,
    /// Hashing failed.
    #[error("the password could not be hashed: {0}")]
    Hashing(String),
}

/// Hashes `password` with Argon2id and a random salt, as a PHC string
/// (`$argon2id$v=19$…`).
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    if password.is_empty() {
        return Err(AuthError::EmptyPassword);
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| AuthError::Hashing(e.to_string()))
}

/// Checks that `phc` is an Argon2 PHC string.
pub(crate) fn check_phc(phc: &str) -> Result<(), AuthError> {
    let parsed = PasswordHash::new(phc.trim()).map_err(|_| AuthError::BadHash)?;
    if parsed.algorithm.as_str().starts_with("argon2") {
        Ok(())
    } else {
        Err(AuthError::BadHash)
    }
}

/// Whether `password` matches the PHC string `phc`. Slow on purpose (Argon2):
/// call it off the async runtime's threads.
pub(crate) fn verify_password(phc: &str, password: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// A random token: 32 bytes from the thread's CSPRNG, as hex.
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Equal strings, compared in constant time.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The value of cookie `name` in a `Cookie` header.
pub(crate) fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key.trim() == name).then(|| value.trim())
    })
}

/// The `Set-Cookie` value that logs in with `token` for `ttl`.
pub(crate) fn login_cookie(token: &str, ttl: Duration, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        ttl.as_secs()
    )
}

/// The `Set-Cookie` value that logs out.
pub(crate) fn logout_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

/// Whether a `Host` header names this machine (`localhost`, `*.localhost` or a
/// loopback address, any port). A loopback Clara refuses other names, so a web
/// site whose name was pointed at 127.0.0.1 (DNS rebinding) cannot reach it.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        // [::1]:port
        match rest.split_once(']') {
            Some((ip, _)) => ip,
            None => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
            _ => host,
        }
    };
    let name = name.to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    name.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// One login to the web page.
#[derive(Clone, Debug)]
pub(crate) struct Login {
    /// The token state-changing requests must echo in [`CSRF_HEADER`].
    pub(crate) csrf: String,
    /// When it runs out.
    expires: Instant,
}

/// The logins of the web page, kept in memory (a restart asks again).
#[derive(Debug, Default)]
pub(crate) struct Logins {
    by_token: Mutex<HashMap<String, Login>>,
}

impl Logins {
    /// Starts a login lasting `ttl` from `now`; returns its cookie token and the login.
    pub(crate) fn start(&self, now: Instant, ttl: Duration) -> (String, Login) {
        let token = random_token();
        let login = Login {
            csrf: random_token(),
            expires: now + ttl,
        };
        let mut map = self.by_token.lock();
        map.retain(|_, l| l.expires > now);
        if map.len() >= MAX_LOGINS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, l)| l.expires)
                .map(|(t, _)| t.clone())
        {
            map.remove(&oldest);
        }
        map.insert(token.clone(), login.clone());
        (token, login)
    }

    /// The login behind a cookie token, if it is current at `now`.
    pub(crate) fn get(&self, token: &str, now: Instant) -> Option<Login> {
        let map = self.by_token.lock();
        map.get(token).filter(|l| l.expires > now).cloned()
    }

    /// Ends a login.
    pub(crate) fn end(&self, token: &str) {
        self.by_token.lock().remove(token);
    }
}

/// A brake on password guessing: at most `max` attempts that failed or are still
/// being checked within `window`; beyond that, logins are refused until the
/// window has passed. An attempt takes its place before the (slow) check, so a
/// burst of concurrent guesses cannot slip past the count, and the list never
/// holds more than `max` entries. Global rather than per address: Clara serves
/// one operator, and Argon2 already makes each guess slow.
#[derive(Debug)]
pub(crate) struct LoginBrake {
    max: usize,
    window: Duration,
    attempts: Mutex<Vec<Instant>>,
}

/// An attempt's place in the [`LoginBrake`]: kept as a failure unless
/// [`LoginBrake::succeeded`] gives it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Attempt(Instant);

impl LoginBrake {
    pub(crate) fn new(max: usize, window: Duration) -> Self {
        Self {
            max,
            window,
            attempts: Mutex::new(Vec::new()),
        }
    }

    /// Takes a place for a login attempt at `now`, or `None` while the brake holds.
    pub(crate) fn attempt(&self, now: Instant) -> Option<Attempt> {
        let mut attempts = self.attempts.lock();
        attempts.retain(|at| now.saturating_duration_since(*at) < self.window);
        if attempts.len() >= self.max {
            return None;
        }
        attempts.push(now);
        Some(Attempt(now))
    }

    /// The attempt had the right password: it does not count against anyone.
    pub(crate) fn succeeded(&self, attempt: Attempt) {
        let mut attempts = self.attempts.lock();
        if let Some(i) = attempts.iter().position(|at| *at == attempt.0) {
            attempts.swap_remove(i);
        }
    }
}

// A poisoned lock only means a panic elsewhere while it was held; every update
// here is one insert, remove or retain, so the data stays consistent.
#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_hashed_password_verifies_and_a_wrong_one_does_not() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(check_phc(&hash).is_ok());
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "correct horse "));
        assert!(!verify_password("not a hash", "correct horse"));
        assert!(check_phc("$2b$12$bcrypt-hash").is_err());
        assert!(hash_password("").is_err());
    }

    #[test]
    fn tokens_are_random_hex() {
        let a = random_token();
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, random_token());
    }

    #[test]
    fn cookies_are_found_by_name() {
        let h = "theme=dark; clara_session=abc123 ; other=x";
        assert_eq!(cookie_value(h, COOKIE), Some("abc123"));
        assert_eq!(cookie_value(h, "missing"), None);
        assert_eq!(cookie_value("", COOKIE), None);
    }

    #[test]
    fn the_login_cookie_is_locked_down() {
        let c = login_cookie("t", Duration::from_secs(60), true);
        for part in [
            "HttpOnly",
            "SameSite=Strict",
            "Secure",
            "Max-Age=60",
            "Path=/",
        ] {
            assert!(c.contains(part), "{c} lacks {part}");
        }
        assert!(!login_cookie("t", Duration::from_secs(60), false).contains("Secure"));
        assert!(logout_cookie(false).contains("Max-Age=0"));
    }

    #[test]
    fn only_loopback_hosts_pass() {
        for ok in [
            "localhost",
            "localhost:18789",
            "127.0.0.1:80",
            "127.0.0.2",
            "[::1]:18789",
            "app.localhost:3000",
        ] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example:18789",
            "192.168.1.4",
            "localhost.evil.example",
            "[::2]:80",
            "",
        ] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }

    #[test]
    fn logins_expire() {
        let logins = Logins::default();
        let t0 = Instant::now();
        let (token, login) = logins.start(t0, Duration::from_secs(10));
        assert_eq!(
            logins
                .get(&token, t0 + Duration::from_secs(5))
                .unwrap()
                .csrf,
            login.csrf
        );
        assert!(logins.get(&token, t0 + Duration::from_secs(11)).is_none());
        assert!(logins.get("other", t0).is_none());
        logins.end(&token);
        assert!(logins.get(&token, t0).is_none());
    }

    #[test]
    fn the_brake_holds_after_too_many_failures_then_lets_go() {
        let brake = LoginBrake::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(brake.attempt(t0).is_some());
        }
        assert!(brake.attempt(t0 + Duration::from_secs(30)).is_none());
        assert!(brake.attempt(t0 + Duration::from_secs(61)).is_some());
    }

    #[test]
    fn attempts_in_flight_count_and_a_success_gives_its_place_back() {
        let brake = LoginBrake::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        // Two guesses being checked at once fill the brake before either fails.
        let first = brake.attempt(t0).unwrap();
        let _second = brake.attempt(t0).unwrap();
        assert!(brake.attempt(t0).is_none());
        brake.succeeded(first);
        assert!(brake.attempt(t0).is_some());
        assert_eq!(brake.attempts.lock().len(), 2, "never more than max kept");
    }

    #[test]
    fn secrets_compare_equal_only_when_equal() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }
}
