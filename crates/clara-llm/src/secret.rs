//! API keys are held as [`clara_core::Secret`], the one secret type of Clara.

pub use clara_core::Secret;
