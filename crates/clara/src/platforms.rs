//! The platforms this `clara` knows: the one list a new platform joins.
//!
//! Each entry is a crate implementing [`clara_core::port::Platform`], behind a
//! Cargo feature of the same name. Everything else (its `clara.toml` section, its
//! environment variables, `clara serve` running it, `clara adapter NAME`) follows
//! from the entry.

use crate::settings::Sections;
use serde::Deserialize as _;
use clara_core::component::{ConfigError, EnvKey};
use clara_core::port::{Adapter, Platform};

/// One platform, with its types erased so the list can hold them all.
pub struct PlatformEntry {
    /// Its name: the `clara.toml` section and `clara adapter NAME`.
    pub name: &'static str,
    /// Its environment variables and the keys they set.
    pub env: &'static [EnvKey],
    /// Reads its section and makes its adapter (`None`: not configured).
    pub adapter: fn(&Sections) -> Result<Option<Box<dyn Adapter>>, ConfigError>,
    /// Checks its section as written in a `clara.toml` file, strictly.
    pub check_file: fn(toml::Value) -> Result<(), String>,
}

/// The entry of platform `P`.
pub const fn entry<P: Platform>() -> PlatformEntry {
    PlatformEntry {
        name: P::NAME,
        env: P::ENV,
        adapter: build::<P>,
        check_file: check_file::<P>,
    }
}

fn build<P: Platform>(sections: &Sections) -> Result<Option<Box<dyn Adapter>>, ConfigError> {
    P::adapter(sections.section::<P::Settings>(P::NAME)?)
}

fn check_file<P: Platform>(section: toml::Value) -> Result<(), String> {
    P::Settings::deserialize(section)
        .map(drop)
        .map_err(|e| e.message().to_owned())
}

/// Every platform built into this binary.
pub const PLATFORMS: &[PlatformEntry] = &[
    #[cfg(feature = "telegram")]
    entry::<clara_telegram::Telegram>(),
    #[cfg(feature = "discord")]
    entry::<clara_discord::Discord>(),
];

/// Every platform Clara has, built in or not, for a clear error when a
/// configuration names one this binary was built without.
pub const ALL_PLATFORMS: &[&str] = &["telegram", "discord"];
