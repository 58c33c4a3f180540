//! Keyless credentials for an account (`credentials.workloadIdentity`): a short-lived token
//! for a ServiceAccount of the account's namespace (TokenRequest, with an audience the
//! operator's administrator allowed), exchanged at IAM for temporary keys, kept and renewed
//! per identity by [`Renewing`]. The operator may request the token only where the
//! namespace's owner granted it (a Role naming the ServiceAccount), and a token the
//! Kubernetes API server itself would accept is never sent anywhere. The token lives only
//! for the exchange; neither it nor the keys are ever logged.

use std::fmt;

use k8s_openapi::api::authentication::v1::{SelfSubjectReview, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Client;
use kube::api::{Api, PostParams};
use secrecy::SecretString;
use url::Url;

use crate::cce::EndpointPolicy;
use crate::cce::credentials::Credentials;
use crate::cce::iam::{DEFAULT_IAM_ENDPOINT, Exchanger, region_iam_endpoint};
use crate::crd::account::AccountIdentity;
use crate::credentials::renewal::{Clock, Renewing};
use crate::duration::Backoff;
use crate::failure::{Category, Failure};

/// Lifetime asked of a ServiceAccount token: the API server's minimum. It is used once,
/// right away.
pub const TOKEN_EXPIRATION_SECONDS: i64 = 600;

/// One identity: whose token, for which provider and audience, exchanged where.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdentityKey {
    pub namespace: String,
    pub service_account: String,
    pub identity_provider: String,
    pub audience: String,
    pub iam: Url,
}

impl fmt::Display for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ServiceAccount {}/{} (identity provider {}, IAM {})",
            self.namespace,
            self.service_account,
            self.identity_provider,
            self.iam.origin().ascii_serialization()
        )
    }
}

/// Settings of the exchange fixed for the operator.
#[derive(Clone, Debug)]
pub struct ExchangeSettings {
    /// The IAM endpoint an account without `iamEndpoint` uses, before its region's.
    pub iam_endpoint: Option<Url>,
    /// The token audiences the administrator allowed; the first is the default.
    pub audiences: Vec<String>,
    /// The operator's own ServiceAccount (namespace, name): the subject a namespace's
    /// owner grants token requests to.
    pub operator: (String, String),
    /// How to reach the API server with a token of its own, to ask whether it accepts it.
    pub api_server: kube::Config,
    /// How long the temporary keys asked of IAM live.
    pub duration_seconds: u32,
    /// The wait after failed exchanges.
    pub backoff: Backoff,
}

pub struct WorkloadIdentities {
    client: Client,
    exchanger: Exchanger,
    policy: EndpointPolicy,
    settings: ExchangeSettings,
    cache: Renewing<IdentityKey>,
}

impl WorkloadIdentities {
    pub fn new(
        client: Client,
        exchanger: Exchanger,
        policy: EndpointPolicy,
        settings: ExchangeSettings,
        clock: Clock,
    ) -> Self {
        Self {
            client,
            exchanger,
            policy,
            cache: Renewing::new(clock, settings.backoff),
            settings,
        }
    }

    /// Temporary keys for `identity` of an account in `namespace` whose CCE region is `region`.
    pub async fn resolve(
        &self,
        namespace: &str,
        region: Option<&str>,
        identity: &AccountIdentity,
    ) -> Result<Credentials, Failure> {
        let audience = audience(&self.settings.audiences, identity.audience.as_deref())?;
        let iam = iam_endpoint(
            &self.policy,
            self.settings.iam_endpoint.as_ref(),
            region,
            identity.iam_endpoint.as_deref(),
        )?;
        let key = IdentityKey {
            namespace: namespace.to_string(),
            service_account: identity.service_account_name.clone(),
            identity_provider: identity.identity_provider_id.clone(),
            audience,
            iam,
        };
        self.cache
            .get(&key, || async {
                let token = service_account_token(
                    &self.client,
                    &key.namespace,
                    &key.service_account,
                    &key.audience,
                    &self.settings.operator,
                )
                .await?;
                refuse_if_the_api_server_accepts(&self.settings.api_server, &token, &key.audience)
                    .await?;
                self.exchanger
                    .federate(
                        &key.iam,
                        &key.identity_provider,
                        &token,
                        self.settings.duration_seconds,
                    )
                    .await
                    .map_err(|e| Failure {
                        category: e.category(),
                        message: format!("{key}: {e}"),
                        permanent: !e.is_retryable(),
                    })
            })
            .await
    }

    /// Forgets identities no watch used for an hour.
    pub fn sweep(&self) {
        self.cache.sweep(std::time::Duration::from_secs(3600));
    }
}

/// The audience `asked` for (the first allowed when none), if the administrator allowed it.
fn audience(allowed: &[String], asked: Option<&str>) -> Result<String, Failure> {
    let refused = |message: String| Failure::permanent(Category::AudienceNotAllowed, message);
    match (asked, allowed.first()) {
        (_, None) => Err(refused(
            "the operator's administrator allowed no token audience for workload identity (the chart's workloadIdentity.audiences)".into(),
        )),
        (None, Some(first)) => Ok(first.clone()),
        (Some(asked), _) if allowed.iter().any(|a| a == asked) => Ok(asked.to_string()),
        (Some(asked), _) => Err(refused(format!(
            "audience {asked:?} is not one the operator's administrator allowed: leave it unset or use one of {allowed:?}"
        ))),
    }
}

/// A token the Kubernetes API server accepts (its own audience, say) would let IAM, or
/// whoever answers at the IAM endpoint, act as the ServiceAccount in the cluster: it is
/// dropped unsent. The API server says whether it accepts a token when asked who its
/// bearer is (SelfSubjectReview, which every authenticated user may create).
async fn refuse_if_the_api_server_accepts(
    api_server: &kube::Config,
    token: &SecretString,
    audience: &str,
) -> Result<(), Failure> {
    let mut config = api_server.clone();
    config.auth_info = kube::config::AuthInfo {
        token: Some(token.clone()),
        ..Default::default()
    };
    let client = Client::try_from(config).map_err(|e| {
        Failure::transient(
            Category::TokenRequestFailed,
            format!("cannot check the token's audience with the API server: {e}"),
        )
    })?;
    let review = Api::<SelfSubjectReview>::all(client)
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await;
    match review {
        Err(kube::Error::Api(status)) if status.code == 401 => Ok(()),
        Ok(_) => Err(Failure::permanent(
            Category::AudienceNotAllowed,
            format!(
                "the Kubernetes API server accepts tokens with audience {audience:?}: the operator sends no such token to IAM (its administrator must allow IAM's client ID instead)"
            ),
        )),
        Err(e) => Err(Failure::transient(
            Category::TokenRequestFailed,
            format!(
                "cannot check the token's audience with the API server: {}",
                crate::credentials::kube_reason(&e)
            ),
        )),
    }
}

/// The account's `iamEndpoint`, else the operator's, else its region's, else IAM's global
/// endpoint; held to the endpoint policy like CCE endpoints.
fn iam_endpoint(
    policy: &EndpointPolicy,
    operator: Option<&Url>,
    region: Option<&str>,
    explicit: Option<&str>,
) -> Result<Url, Failure> {
    let invalid = |e: crate::cce::CceError| Failure {
        category: match e.category() {
            Category::EndpointNotAllowed => Category::IamEndpointNotAllowed,
            other => other,
        },
        message: format!("IAM endpoint: {e}"),
        permanent: true,
    };
    let url = match (explicit, operator, region) {
        (Some(explicit), _, _) => policy.resolve(None, Some(explicit)).map_err(invalid)?,
        (None, Some(operator), _) => operator.clone(),
        (None, None, Some(region)) => region_iam_endpoint(region).map_err(invalid)?,
        (None, None, None) => Url::parse(DEFAULT_IAM_ENDPOINT).map_err(|e| Failure {
            category: Category::InvalidEndpoint,
            message: format!("IAM endpoint: {e}"),
            permanent: true,
        })?,
    };
    policy.check(&url).map_err(invalid)?;
    Ok(url)
}

/// A token for `namespace/name` with `audience`, bound to nothing else. `operator` is the
/// operator's own ServiceAccount, named in the refusal when no Role grants it the request.
async fn service_account_token(
    client: &Client,
    namespace: &str,
    name: &str,
    audience: &str,
    operator: &(String, String),
) -> Result<SecretString, Failure> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: Some(vec![audience.to_string()]),
            expiration_seconds: Some(TOKEN_EXPIRATION_SECONDS),
            bound_object_ref: None,
        }),
        ..TokenRequest::default()
    };
    match api
        .create_token_request(name, &PostParams::default(), &request)
        .await
    {
        Ok(answer) => answer
            .status
            .and_then(|s| s.token)
            .filter(|t| !t.is_empty())
            .map(SecretString::from)
            .ok_or_else(|| Failure {
                category: Category::TokenRequestFailed,
                message: format!(
                    "the API server answered the token request for ServiceAccount {namespace}/{name} without a token"
                ),
                permanent: false,
            }),
        Err(kube::Error::Api(status)) if status.code == 404 => Err(Failure {
            category: Category::ServiceAccountMissing,
            message: format!(
                "ServiceAccount {namespace}/{name} (credentials.workloadIdentity.serviceAccountName) does not exist"
            ),
            permanent: true,
        }),
        Err(kube::Error::Api(status)) if status.code == 403 => Err(Failure {
            category: Category::TokenRequestNotGranted,
            message: format!(
                "the operator may not request tokens for ServiceAccount {namespace}/{name}: the namespace's owner grants it with a Role in {namespace} allowing create on serviceaccounts/token with resourceNames [{name}], bound to ServiceAccount {}/{} (docs/accounts.md, \"Workload identity\")",
                operator.0, operator.1
            ),
            permanent: true,
        }),
        Err(e) => Err(Failure {
            category: Category::TokenRequestFailed,
            message: format!(
                "cannot request a token for ServiceAccount {namespace}/{name}: {}",
                crate::credentials::kube_reason(&e)
            ),
            permanent: false,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audience_is_one_the_administrator_allowed() {
        let allowed = vec!["iam-client".to_string(), "other-client".to_string()];
        assert_eq!(audience(&allowed, None), Ok("iam-client".into()));
        assert_eq!(
            audience(&allowed, Some("other-client")),
            Ok("other-client".into())
        );
        let refused =
            audience(&allowed, Some("https://kubernetes.default.svc")).expect_err("refused");
        assert_eq!(refused.category, Category::AudienceNotAllowed);
        assert!(refused.permanent);
        let none = audience(&[], None).expect_err("refused");
        assert_eq!(none.category, Category::AudienceNotAllowed);
    }

    #[test]
    fn the_iam_endpoint_is_the_accounts_then_the_operators_then_the_regions() {
        let policy = EndpointPolicy::iam()
            .with_extra(["iam.example.internal"])
            .expect("entry");
        let operator = Url::parse("https://iam.example.internal").expect("url");
        let pick = |operator: Option<&Url>, region: Option<&str>, explicit: Option<&str>| {
            iam_endpoint(&policy, operator, region, explicit).map(|u| u.to_string())
        };
        assert_eq!(
            pick(
                Some(&operator),
                Some("ap-southeast-1"),
                Some("https://iam.cn-north-4.myhuaweicloud.com/ignored/path")
            ),
            Ok("https://iam.cn-north-4.myhuaweicloud.com/".into())
        );
        assert_eq!(
            pick(Some(&operator), Some("ap-southeast-1"), None),
            Ok("https://iam.example.internal/".into())
        );
        assert_eq!(
            pick(None, Some("ap-southeast-1"), None),
            Ok("https://iam.ap-southeast-1.myhuaweicloud.com/".into())
        );
        assert_eq!(
            pick(None, None, None),
            Ok("https://iam.myhuaweicloud.com/".into())
        );
        let refused = pick(None, None, Some("https://iam.attacker.example")).expect_err("refused");
        assert_eq!(refused.category, "IamEndpointNotAllowed");
        assert!(refused.permanent);
    }
}
