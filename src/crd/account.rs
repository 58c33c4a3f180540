//! The account kinds: where a watch's CCE requests go and whose identity signs them.
//! `CCEAccount` belongs to its namespace and serves that namespace's watches with a Secret
//! or a ServiceAccount of the same namespace; `ClusterCCEAccount` belongs to the cluster's
//! administrator and serves only the namespaces it lists, possibly with the operator's own
//! default credentials. A watch names one of them explicitly: nothing is used by default.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::crd::{ClusterType, SecretRef};

/// The label that marks a Secret as CCE credentials; a Secret without it is never read.
pub const CREDENTIALS_LABEL: &str = "cce.upgradewatch.io/credentials";
/// The value [`CREDENTIALS_LABEL`] must have.
pub const CREDENTIALS_LABEL_VALUE: &str = "true";

/// A namespace's CCE account: region, project and endpoint, and credentials from a marked
/// Secret or a ServiceAccount of this namespace. Watches of this namespace name it in
/// spec.accountRef.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "cce.upgradewatch.io",
    version = "v1alpha1",
    kind = "CCEAccount",
    root = "CceAccount",
    plural = "cceaccounts",
    shortname = "cceaccount",
    category = "cce",
    namespaced,
    status = "AccountStatus",
    doc = "CCEAccount says where the watches of its namespace reach CCE (region or endpoint, project) and with which credentials: a Secret labelled cce.upgradewatch.io/credentials=true, or a ServiceAccount whose tokens IAM trusts, both in this namespace.",
    printcolumn = r#"{"name":"Project","type":"string","description":"The Huawei Cloud project the account reads","jsonPath":".spec.projectID"}"#,
    printcolumn = r#"{"name":"Region","type":"string","description":"The region whose CCE endpoint it uses, unless spec.endpoint says otherwise","jsonPath":".spec.region"}"#,
    printcolumn = r#"{"name":"Watches","type":"integer","description":"Watches that name this account","jsonPath":".status.watches"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","description":"Whether the account's credentials could be obtained","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","description":"CredentialsReady, or the failure category that keeps them","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","description":"Time since the account was created","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Endpoint","type":"string","priority":1,"description":"The CCE endpoint, when set instead of a region","jsonPath":".spec.endpoint"}"#
)]
#[x_kube(validation = Rule::new("has(self.region) || has(self.endpoint)").message("set region (for example ap-southeast-1) or endpoint").field_path(".region"))]
#[serde(rename_all = "camelCase")]
pub struct CceAccountSpec {
    #[serde(flatten)]
    pub target: AccountTarget,

    /// Whose identity signs the requests: exactly one of secretRef and workloadIdentity.
    pub credentials: AccountCredentials,
}

/// An administrator's CCE account for many namespaces: region, project and endpoint,
/// credentials from a marked Secret or a ServiceAccount of the operator's namespace or the
/// operator's own default credentials, and the namespaces whose watches may use it. In no
/// category: `kubectl get cce -n <namespace>` is a tenant's view, and tenants may not list
/// what only administrators create.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "cce.upgradewatch.io",
    version = "v1alpha1",
    kind = "ClusterCCEAccount",
    root = "ClusterCceAccount",
    plural = "clustercceaccounts",
    shortname = "clustercceaccount",
    status = "AccountStatus",
    doc = "ClusterCCEAccount is a cluster administrator's CCE account: where CCE is reached, with which credentials (a marked Secret or a ServiceAccount of the operator's namespace, or the operator's default credentials), and which namespaces' watches may use it (none unless listed in conditions).",
    printcolumn = r#"{"name":"Project","type":"string","description":"The Huawei Cloud project the account reads","jsonPath":".spec.projectID"}"#,
    printcolumn = r#"{"name":"Region","type":"string","description":"The region whose CCE endpoint it uses, unless spec.endpoint says otherwise","jsonPath":".spec.region"}"#,
    printcolumn = r#"{"name":"Watches","type":"integer","description":"Watches that name this account","jsonPath":".status.watches"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","description":"Whether the account's credentials could be obtained","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","description":"CredentialsReady, or the failure category that keeps them","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","description":"Time since the account was created","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Endpoint","type":"string","priority":1,"description":"The CCE endpoint, when set instead of a region","jsonPath":".spec.endpoint"}"#
)]
#[x_kube(validation = Rule::new("has(self.region) || has(self.endpoint)").message("set region (for example ap-southeast-1) or endpoint").field_path(".region"))]
#[serde(rename_all = "camelCase")]
pub struct ClusterCceAccountSpec {
    #[serde(flatten)]
    pub target: AccountTarget,

    /// Whose identity signs the requests: exactly one of secretRef, workloadIdentity and
    /// operatorDefaults.
    pub credentials: ClusterAccountCredentials,

    /// The namespaces whose watches may use this account: a namespace may when it matches
    /// any one condition. Empty: no namespace may.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub conditions: Vec<NamespaceCondition>,

    /// The CCE clusters (IDs) watches may name through this account. Empty: any cluster of
    /// the project.
    #[serde(rename = "clusterIDs", default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 256),
        inner(
            length(min = 1, max = 64),
            regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9-]*$")
        )
    )]
    pub cluster_ids: Vec<String>,
}

/// Where CCE is reached, shared by both account kinds.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AccountTarget {
    /// Huawei Cloud region, for example `ap-southeast-1`: CCE is then
    /// `https://cce.<region>.myhuaweicloud.com`, and IAM the region's. Either region or
    /// endpoint is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z]+(-[a-z0-9]+)+$"))]
    pub region: Option<String>,

    /// CCE API endpoint instead of the region's public one, `https://host[:port]` (a Huawei
    /// Cloud Stack endpoint, say). The operator calls only hosts its administrator allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 9, max = 253))]
    #[x_kube(validation = Rule::new("self.startsWith('https://')").message("endpoint must be an https:// URL"))]
    #[x_kube(validation = Rule::new("isURL(self)").message("endpoint must be a valid URL"))]
    pub endpoint: Option<String>,

    /// IAM project ID of the region (My Credentials > API Credentials in the console).
    #[serde(rename = "projectID")]
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
    )]
    pub project_id: String,

    /// Kind of CCE cluster the account's watches name unless a watch says otherwise:
    /// `Standard` (default) or `Autopilot`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_type: Option<ClusterType>,

    /// Poll interval of the account's watches that set none, as a duration such as `1m`.
    /// At least 5s, at most 24h; unset: 30s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('5s')").message("pollInterval must be at least 5s"))]
    #[x_kube(validation = Rule::new("duration(self) <= duration('24h')").message("pollInterval must be at most 24h"))]
    pub poll_interval: Option<String>,
}

/// A namespaced account's credentials.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("has(self.secretRef) != has(self.workloadIdentity)").message("set exactly one of secretRef and workloadIdentity"))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AccountCredentials {
    /// A Secret of this namespace labelled `cce.upgradewatch.io/credentials=true`, holding
    /// `accessKey` and `secretKey` (plus `securityToken` for temporary keys), or `token`
    /// for an IAM token. The operator reads no other Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,

    /// A ServiceAccount of this namespace whose tokens IAM trusts. The namespace's owner
    /// lets the operator request its tokens with a Role (docs/accounts.md, "Workload identity").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_identity: Option<AccountIdentity>,
}

/// A cluster-scoped account's credentials.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("[has(self.secretRef), has(self.workloadIdentity), has(self.operatorDefaults)].filter(x, x).size() == 1").message("set exactly one of secretRef, workloadIdentity and operatorDefaults"))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterAccountCredentials {
    /// A Secret of the operator's namespace labelled `cce.upgradewatch.io/credentials=true`,
    /// with the keys a CCEAccount's Secret has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,

    /// A ServiceAccount of the operator's namespace whose tokens IAM trusts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_identity: Option<AccountIdentity>,

    /// The operator's own default credentials (its credential chain: the chart's
    /// defaultCredentials or workloadIdentity.operator, or its environment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_defaults: Option<OperatorDefaults>,
}

/// Marks the use of the operator's default credentials; it has no settings.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OperatorDefaults {}

/// A ServiceAccount whose tokens IAM accepts through an OpenID Connect identity provider
/// (IAM > Identity Providers): the operator requests a short-lived token for it, exchanges
/// it at IAM for temporary keys and renews them before they expire.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AccountIdentity {
    /// Name of the ServiceAccount, in the account's namespace (the operator's, for a
    /// ClusterCCEAccount). IAM sees the subject `system:serviceaccount:<namespace>:<name>`.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub service_account_name: String,

    /// Name (ID) of the identity provider in IAM, sent as `X-Idp-Id`.
    #[serde(rename = "identityProviderID")]
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    )]
    pub identity_provider_id: String,

    /// Audience of the token: one the operator's administrator allowed (the chart's
    /// workloadIdentity.audiences). Unset: the first of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[!-~]+$"))]
    pub audience: Option<String>,

    /// IAM endpoint of the exchange, `https://host[:port]`. Unset: the operator's IAM
    /// endpoint if its administrator set one, else the region's, else
    /// `https://iam.myhuaweicloud.com`. Only IAM hosts the administrator allowed are called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 9, max = 253))]
    #[x_kube(validation = Rule::new("self.startsWith('https://')").message("iamEndpoint must be an https:// URL"))]
    #[x_kube(validation = Rule::new("isURL(self)").message("iamEndpoint must be a valid URL"))]
    pub iam_endpoint: Option<String>,
}

/// Namespaces allowed to use a ClusterCCEAccount: those named, and those whose labels match
/// the selector. A condition with both allows a namespace that is named or matches.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("has(self.namespaceSelector) || (has(self.namespaces) && size(self.namespaces) > 0)").message("a condition names namespaces or has a namespaceSelector"))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NamespaceCondition {
    /// Namespaces whose labels match this selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,

    /// Namespaces by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 256),
        inner(
            length(min = 1, max = 63),
            regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
        )
    )]
    pub namespaces: Vec<String>,
}

/// What the operator knows of an account.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AccountStatus {
    /// The spec generation this status reflects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// How many watches name this account, counted every minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watches: Option<u32>,

    /// Ready: the account's credentials were obtained (the Secret is usable, or the token
    /// exchange succeeded, or the default credentials were found). Synced: the last check
    /// completed; False when it could not (IAM or the API server unreachable), in which
    /// case Ready keeps the last answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// Which kind of account a watch names.
#[derive(
    Serialize,
    Deserialize,
    JsonSchema,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
)]
pub enum AccountKind {
    /// A CCEAccount of the watch's namespace.
    #[default]
    #[serde(rename = "CCEAccount")]
    Namespaced,
    /// A ClusterCCEAccount that lists the watch's namespace.
    #[serde(rename = "ClusterCCEAccount")]
    Cluster,
}

impl AccountKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Namespaced => "CCEAccount",
            Self::Cluster => "ClusterCCEAccount",
        }
    }
}

/// The account a watch names.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct AccountRef {
    /// `CCEAccount` (default: one of the watch's namespace) or `ClusterCCEAccount`.
    #[serde(default)]
    pub kind: AccountKind,

    /// Name of the account.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: String,
}
