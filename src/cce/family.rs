//! Which of CCE's two API families a cluster is served by.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Kind of CCE cluster; Autopilot clusters are served under `/autopilot/v3/`.
///
/// The one spelling of the family: the CRD's `clusterType`, `get --cluster-type` and the
/// client's paths. Standard clusters are served under `/api/v3/`; the two families share
/// every path below that prefix.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
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

    /// The prefix of every path in this family, e.g. `/api/v3/`.
    pub fn path_prefix(self) -> String {
        format!("/{}/v3/", self.path_root())
    }

    /// The other family: a watch of the wrong one gets 404s.
    pub fn other(self) -> Self {
        match self {
            ApiFamily::Standard => ApiFamily::Autopilot,
            ApiFamily::Autopilot => ApiFamily::Standard,
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

impl std::fmt::Display for ApiFamily {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Case-insensitive, as `get --cluster-type` accepts it.
impl std::str::FromStr for ApiFamily {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [ApiFamily::Standard, ApiFamily::Autopilot]
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("{s:?} is neither Standard nor Autopilot"))
    }
}
