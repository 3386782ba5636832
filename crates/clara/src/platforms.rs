//! The platforms this `clara` knows: the one list a new platform joins.
//!
//! Each entry is a crate implementing [`clara_core::port::Platform`], behind a
//! Cargo feature of the same name: one line in [`PLATFORMS`]. Everything else
//! (its `clara.toml` section, its environment variables, `clara serve` running
//! it, `clara adapter NAME`) follows from the entry.

use crate::settings::Sections;
use clara_core::component::{ConfigError, EnvKey};
use clara_core::port::{Adapter, Platform};

/// One platform, with its types erased so the list can hold them all.
pub struct PlatformEntry {
    /// Its name: the `clara.toml` section and `clara adapter NAME`.
    pub name: &'static str,
    /// How this binary runs it; `None` when built without its feature.
    pub built: Option<Built>,
}

/// What a platform's settings make: its adapter, or `None` when not configured.
pub type Configured = Result<Option<Box<dyn Adapter>>, ConfigError>;

/// A platform compiled into this binary.
pub struct Built {
    /// Its environment variables and the keys they set.
    pub env: &'static [EnvKey],
    /// Reads its section and makes its adapter (`None`: not configured).
    pub adapter: fn(&Sections) -> Configured,
    /// Checks its section as written in a `clara.toml` file, strictly.
    pub check_file: fn(toml::Value) -> Result<(), String>,
}

/// How this binary runs platform `P`.
// Used by `platform!` for every platform built in; a binary built with none
// (`--no-default-features`) uses neither this nor `build`.
#[allow(dead_code)]
pub const fn built<P: Platform>() -> Built {
    Built {
        env: P::ENV,
        adapter: build::<P>,
        check_file: crate::settings::check_section::<P::Settings>,
    }
}

/// The entry of a platform: its name (also its Cargo feature) and its type.
macro_rules! platform {
    ($name:literal => $platform:path) => {
        PlatformEntry {
            name: $name,
            #[cfg(feature = $name)]
            built: Some(built::<$platform>()),
            #[cfg(not(feature = $name))]
            built: None,
        }
    };
}

#[allow(dead_code)]
fn build<P: Platform>(sections: &Sections) -> Configured {
    P::adapter(sections.section::<P::Settings>(P::NAME)?)
}

/// Every platform Clara has: a crate, and a feature of this binary, each.
pub const PLATFORMS: &[PlatformEntry] = &[
    platform!("telegram" => clara_telegram::Telegram),
    platform!("discord" => clara_discord::Discord),
];

/// The platforms compiled into this binary.
pub fn built_in() -> impl Iterator<Item = (&'static str, &'static Built)> {
    PLATFORMS
        .iter()
        .filter_map(|p| p.built.as_ref().map(|b| (p.name, b)))
}

/// The entry named `name`, built in or not.
pub fn named(name: &str) -> Option<&'static PlatformEntry> {
    PLATFORMS.iter().find(|p| p.name == name)
}

/// A sentence for a platform this binary was built without.
pub fn not_built(name: &str) -> String {
    format!("this clara was built without the `{name}` platform; rebuild with `--features {name}`")
}
