//! Profiles shipped inside the binary.

use crate::error::Result;
use crate::spec::{FactorySpec, builtin_origin};

/// The default profile's name.
pub const DEFAULT_PROFILE: &str = "packing_line";

/// Name and TOML text of every built-in profile.
pub fn built_in_profiles() -> &'static [(&'static str, &'static str)] {
    &[(
        "packing_line",
        include_str!("../../profiles/packing_line.toml"),
    )]
}

/// Loads a built-in profile by name.
pub fn built_in(name: &str) -> Option<Result<FactorySpec>> {
    built_in_profiles()
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, text)| FactorySpec::from_toml(text, &builtin_origin(n)))
}
