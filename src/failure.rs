//! Every way a watch can fail to be served, named once: the closed list of failure
//! categories (condition reasons, metric labels, `get`'s exit codes) and the one failure
//! value that carries a category with its message. A leaf: it knows nothing of the
//! operator, so the CCE client, credentials, the reconciler and `get` all speak it.

use std::fmt;

/// Why a read failed, as a bounded CamelCase name. The strings are API: conditions,
/// metrics, alert rules and `get`'s exit codes carry them; a test pins each one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Category {
    /// The endpoint or region cannot make a URL.
    InvalidEndpoint,
    /// The endpoint policy refused a CCE host or scheme.
    EndpointNotAllowed,
    /// The endpoint policy refused an IAM host or scheme.
    IamEndpointNotAllowed,
    /// A local setting is unusable (a CA bundle, an empty id).
    InvalidConfig,
    /// No credentials, or none usable.
    CredentialsMissing,
    /// Credentials are present but malformed.
    CredentialsInvalid,
    /// Temporary credentials expired and could not be renewed, or arrived expired.
    CredentialsExpired,
    /// 401: the signature or token was rejected.
    Unauthorized,
    /// 403: no permission for this project or cluster.
    Forbidden,
    /// 404 on a read that is not a workflow's.
    NotFound,
    /// CCE answered 404 for the workflow: wrong ids, region or cluster type.
    WorkflowNotFound,
    /// The workflow CCE sent belongs to another cluster than the watch names.
    ClusterMismatch,
    /// 429.
    RateLimited,
    /// Another 4xx.
    BadRequest,
    /// 5xx.
    CceUnavailable,
    /// No complete answer in time.
    Timeout,
    /// Cannot connect (DNS, TCP, TLS).
    Transport,
    /// The answer is not CCE's JSON.
    InvalidResponse,
    /// IAM (or STS, or the pod identity agent) could not be reached or failed.
    IamUnavailable,
    /// IAM's answer could not be read.
    InvalidIamResponse,
    /// The watch's workload identity names a ServiceAccount its namespace does not have.
    ServiceAccountMissing,
    /// The API server issued no token for the ServiceAccount (RBAC, or unreachable).
    TokenRequestFailed,
    /// The API server refused the status computed from CCE's answer.
    StatusRejected,
    /// The watch names no account, or one that does not exist.
    AccountMissing,
    /// The account named may not serve this watch: a ClusterCCEAccount that does not list
    /// its namespace or its cluster.
    AccountNotAllowed,
    /// The namespace's owner has not let the operator request the ServiceAccount's tokens.
    TokenRequestNotGranted,
    /// The token audience is not one the operator's administrator allowed, or the API server
    /// itself accepts it.
    AudienceNotAllowed,
}

impl Category {
    /// Every category, in the order the docs list them.
    pub const ALL: [Category; 27] = [
        Self::InvalidEndpoint,
        Self::EndpointNotAllowed,
        Self::IamEndpointNotAllowed,
        Self::InvalidConfig,
        Self::CredentialsMissing,
        Self::CredentialsInvalid,
        Self::CredentialsExpired,
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::WorkflowNotFound,
        Self::ClusterMismatch,
        Self::RateLimited,
        Self::BadRequest,
        Self::CceUnavailable,
        Self::Timeout,
        Self::Transport,
        Self::InvalidResponse,
        Self::IamUnavailable,
        Self::InvalidIamResponse,
        Self::ServiceAccountMissing,
        Self::TokenRequestFailed,
        Self::StatusRejected,
        Self::AccountMissing,
        Self::AccountNotAllowed,
        Self::TokenRequestNotGranted,
        Self::AudienceNotAllowed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidEndpoint => "InvalidEndpoint",
            Self::EndpointNotAllowed => "EndpointNotAllowed",
            Self::IamEndpointNotAllowed => "IamEndpointNotAllowed",
            Self::InvalidConfig => "InvalidConfig",
            Self::CredentialsMissing => "CredentialsMissing",
            Self::CredentialsInvalid => "CredentialsInvalid",
            Self::CredentialsExpired => "CredentialsExpired",
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden => "Forbidden",
            Self::NotFound => "NotFound",
            Self::WorkflowNotFound => "WorkflowNotFound",
            Self::ClusterMismatch => "ClusterMismatch",
            Self::RateLimited => "RateLimited",
            Self::BadRequest => "BadRequest",
            Self::CceUnavailable => "CceUnavailable",
            Self::Timeout => "Timeout",
            Self::Transport => "Transport",
            Self::InvalidResponse => "InvalidResponse",
            Self::IamUnavailable => "IamUnavailable",
            Self::InvalidIamResponse => "InvalidIamResponse",
            Self::ServiceAccountMissing => "ServiceAccountMissing",
            Self::TokenRequestFailed => "TokenRequestFailed",
            Self::StatusRejected => "StatusRejected",
            Self::AccountMissing => "AccountMissing",
            Self::AccountNotAllowed => "AccountNotAllowed",
            Self::TokenRequestNotGranted => "TokenRequestNotGranted",
            Self::AudienceNotAllowed => "AudienceNotAllowed",
        }
    }

    /// What the category means, for the printed list of reasons.
    pub const fn meaning(self) -> &'static str {
        match self {
            Self::InvalidEndpoint => "the endpoint or region cannot make a URL",
            Self::EndpointNotAllowed => "the endpoint policy refused the CCE host or scheme",
            Self::IamEndpointNotAllowed => "the endpoint policy refused the IAM host or scheme",
            Self::InvalidConfig => "a local setting is unusable (CA bundle, empty id)",
            Self::CredentialsMissing => "no credentials, or none usable",
            Self::CredentialsInvalid => "credentials are present but malformed",
            Self::CredentialsExpired => "temporary credentials expired and were not renewed",
            Self::Unauthorized => "CCE or IAM rejected the signature or token (401)",
            Self::Forbidden => "no permission for this project or cluster (403)",
            Self::NotFound => "CCE knows no such object (404)",
            Self::WorkflowNotFound => "CCE knows no such workflow: check ids, region, cluster type",
            Self::ClusterMismatch => {
                "the workflow CCE sent belongs to another cluster: check upgradeWorkflowID"
            }
            Self::RateLimited => "CCE throttled the request (429)",
            Self::BadRequest => "CCE refused the request (another 4xx)",
            Self::CceUnavailable => "a CCE server error (5xx)",
            Self::Timeout => "no complete answer in time",
            Self::Transport => "cannot connect (DNS, TCP, TLS)",
            Self::InvalidResponse => "the answer is not CCE's JSON",
            Self::IamUnavailable => "IAM, STS or the pod identity agent failed or is unreachable",
            Self::InvalidIamResponse => "IAM's answer could not be read",
            Self::ServiceAccountMissing => "the workload identity's ServiceAccount does not exist",
            Self::TokenRequestFailed => "the API server issued no ServiceAccount token",
            Self::StatusRejected => "the API server refused the computed status",
            Self::AccountMissing => "the watch names no account, or one that does not exist",
            Self::AccountNotAllowed => {
                "the ClusterCCEAccount does not list the watch's namespace or cluster"
            }
            Self::TokenRequestNotGranted => {
                "no Role lets the operator request the ServiceAccount's tokens"
            }
            Self::AudienceNotAllowed => {
                "the token audience is not allowed, or the Kubernetes API server accepts it"
            }
        }
    }
}

/// So a test can pin a category by the string the API carries.
impl PartialEq<&str> for Category {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure with its category and a message safe to show the watch's author (no secret,
/// bounded by whoever writes it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub category: Category,
    pub message: String,
    /// A person must act (a refused token, a missing ServiceAccount): retried slowly.
    pub permanent: bool,
}

impl Failure {
    /// A failure a person must fix.
    pub fn permanent(category: Category, message: impl Into<String>) -> Self {
        Self {
            category,
            message: message.into(),
            permanent: true,
        }
    }

    /// A failure that may pass on its own.
    pub fn transient(category: Category, message: impl Into<String>) -> Self {
        Self {
            category,
            message: message.into(),
            permanent: false,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.category, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_category_is_listed_once_and_spelled_as_its_name() {
        let names: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
        let debug: Vec<String> = Category::ALL.iter().map(|c| format!("{c:?}")).collect();
        assert_eq!(names, debug);
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
    }

    #[test]
    fn the_strings_are_pinned() {
        assert_eq!(
            Category::ALL.map(Category::as_str),
            [
                "InvalidEndpoint",
                "EndpointNotAllowed",
                "IamEndpointNotAllowed",
                "InvalidConfig",
                "CredentialsMissing",
                "CredentialsInvalid",
                "CredentialsExpired",
                "Unauthorized",
                "Forbidden",
                "NotFound",
                "WorkflowNotFound",
                "ClusterMismatch",
                "RateLimited",
                "BadRequest",
                "CceUnavailable",
                "Timeout",
                "Transport",
                "InvalidResponse",
                "IamUnavailable",
                "InvalidIamResponse",
                "ServiceAccountMissing",
                "TokenRequestFailed",
                "StatusRejected",
                "AccountMissing",
                "AccountNotAllowed",
                "TokenRequestNotGranted",
                "AudienceNotAllowed",
            ]
        );
    }
}
