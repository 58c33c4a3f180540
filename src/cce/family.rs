//! Which of CCE's two API families a cluster is served by.

use serde::{Deserialize, Serialize};

/// Standard clusters are served under `/api/v3/`, Autopilot clusters under `/autopilot/v3/`;
/// the two families share every path below that prefix.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ApiFamily {
    #[default]
    Standard,
    Autopilot,
}

impl ApiFamily {
    /// The first path segment of every call in this family.
    pub fn path_root(self) -> &'static str {
        match self {
            ApiFamily::Standard => "api",
            ApiFamily::Autopilot => "autopilot",
        }
    }

    /// The family's name as the CRD's `clusterType` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiFamily::Standard => "Standard",
            ApiFamily::Autopilot => "Autopilot",
        }
    }
}
