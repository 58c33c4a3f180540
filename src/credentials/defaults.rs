//! The operator's default credentials, for watches that name neither a Secret nor a
//! workload identity, found the way Huawei's SDK chain finds them (cce-credentials.md), first
//! match wins: the operator's own projected ServiceAccount token federated at IAM, the OIDC
//! STS variables, access keys in the environment (`HUAWEICLOUD_SDK_*`, then `CLOUD_SDK_*`),
//! the mounted default-credentials Secret, a credentials file, CCE pod identity. A source
//! matches when it is configured; the log names the source, never a value. Files (the
//! Secret's, the credentials file, every token file) are read again while the operator runs,
//! so their rotation needs no restart.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use secrecy::SecretString;
use url::Url;

use crate::cce::credentials::Credentials;
use crate::cce::iam::{AgencyRequest, DEFAULT_IAM_ENDPOINT, DEFAULT_STS_ENDPOINT, Exchanger};
use crate::credentials::renewal::{Clock, Renewing};
use crate::duration::Backoff;
use crate::failure::{Category, Failure};

/// Huawei's SDK's variable names.
pub const ENV_IDP_ID: &str = "HUAWEICLOUD_SDK_IDP_ID";
pub const ENV_ID_TOKEN_FILE: &str = "HUAWEICLOUD_SDK_ID_TOKEN_FILE";
pub const ENV_CREDENTIALS_FILE: &str = "HUAWEICLOUD_SDK_CREDENTIALS_FILE";
pub const ENV_STS_ENDPOINT: &str = "HUAWEICLOUD_SDK_STS_ENDPOINT";
pub const ENV_OIDC_PROVIDER_URN: &str = "HUAWEICLOUD_OIDC_PROVIDER_URN";
pub const ENV_OIDC_AGENCY_URN: &str = "HUAWEICLOUD_OIDC_AGENCY_URN";
pub const ENV_OIDC_TOKEN_FILE: &str = "HUAWEICLOUD_OIDC_TOKEN_FILE";
pub const ENV_OIDC_ID_TOKEN: &str = "HUAWEICLOUD_OIDC_ID_TOKEN";
pub const ENV_OIDC_SESSION_NAME: &str = "HUAWEICLOUD_OIDC_SESSION_NAME";
pub const ENV_OIDC_DURATION_SECONDS: &str = "HUAWEICLOUD_OIDC_DURATION_SECONDS";
pub const ENV_POD_IDENTITY_URI: &str = "HC_CONTAINER_CREDENTIALS_FULL_URI";
pub const ENV_POD_IDENTITY_TOKEN_FILE: &str = "HC_CONTAINER_AUTHORIZATION_TOKEN_FILE";
pub const ENV_IAM_ENDPOINT: &str = "HUAWEICLOUD_SDK_IAM_ENDPOINT";

/// Every environment variable the chain reads: a test that means one source clears the
/// others with this list.
pub const CHAIN_VARIABLES: &[&str] = &[
    crate::cce::credentials::ENV_ACCESS_KEY,
    crate::cce::credentials::ENV_SECRET_KEY,
    crate::cce::credentials::ENV_SECURITY_TOKEN,
    crate::cce::credentials::ENV_TOKEN,
    crate::cce::credentials::SDK_ENV_ACCESS_KEY,
    crate::cce::credentials::SDK_ENV_SECRET_KEY,
    crate::cce::credentials::SDK_ENV_SECURITY_TOKEN,
    ENV_IDP_ID,
    ENV_ID_TOKEN_FILE,
    ENV_CREDENTIALS_FILE,
    ENV_IAM_ENDPOINT,
    ENV_STS_ENDPOINT,
    ENV_OIDC_PROVIDER_URN,
    ENV_OIDC_AGENCY_URN,
    ENV_OIDC_TOKEN_FILE,
    ENV_OIDC_ID_TOKEN,
    ENV_OIDC_SESSION_NAME,
    ENV_OIDC_DURATION_SECONDS,
    ENV_POD_IDENTITY_URI,
    ENV_POD_IDENTITY_TOKEN_FILE,
];
/// The profile of the credentials file the operator reads (the SDK's regional one).
pub const PROFILE_SECTION: &str = "basic";
const OIDC_DEFAULT_SESSION_NAME: &str = "oidc-sts-session";
const OIDC_DEFAULT_DURATION_SECONDS: u32 = 3600;
/// How long a file source's content is trusted before it is read again.
const REREAD_AFTER: Duration = Duration::from_secs(10);

/// Where the default credentials come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A token file (the operator's projected ServiceAccount token) federated at IAM.
    Federation {
        identity_provider: String,
        token_file: PathBuf,
        iam: Url,
    },
    /// An agency assumed at STS with an OpenID Connect token.
    OidcSts {
        request: AgencyRequest,
        token: TokenInput,
        sts: Url,
    },
    /// Access keys from the environment, under the names in `names`.
    Environment {
        credentials: Credentials,
        names: &'static str,
    },
    /// A directory of Secret keys (`accessKey`, `secretKey`, …), as a Secret volume mounts it.
    Directory(PathBuf),
    /// Huawei's SDK credentials file (`[basic]`: `ak`, `sk`, `security_token`, or `idp_id`,
    /// `id_token_file`, `iam_endpoint`); `iam` serves a federation without `iam_endpoint`.
    Profile { path: PathBuf, iam: Url },
    /// CCE pod identity.
    PodIdentity { uri: Url, token_file: PathBuf },
}

/// An OpenID Connect token given inline or as a file.
#[derive(Clone)]
pub enum TokenInput {
    File(PathBuf),
    Inline(SecretString),
}

impl fmt::Debug for TokenInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Inline(_) => f.write_str("Inline([REDACTED])"),
        }
    }
}

impl fmt::Display for Source {
    /// The source for the log: names and paths, never a value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Federation {
                token_file, iam, ..
            } => write!(
                f,
                "federation of the token file {} at {} ({ENV_IDP_ID}, {ENV_ID_TOKEN_FILE})",
                token_file.display(),
                iam.origin().ascii_serialization()
            ),
            Self::OidcSts { sts, .. } => write!(
                f,
                "OIDC STS at {} ({ENV_OIDC_PROVIDER_URN}, {ENV_OIDC_AGENCY_URN})",
                sts.origin().ascii_serialization()
            ),
            Self::Environment { names, .. } => write!(f, "environment ({names})"),
            Self::Directory(dir) => write!(
                f,
                "the default-credentials Secret mounted at {}",
                dir.display()
            ),
            Self::Profile { path, .. } => write!(f, "the credentials file {}", path.display()),
            Self::PodIdentity { token_file, .. } => write!(
                f,
                "CCE pod identity ({ENV_POD_IDENTITY_URI}, token file {})",
                token_file.display()
            ),
        }
    }
}

/// What the chain reads besides the environment.
pub struct ChainInputs<'a> {
    /// The operator's IAM endpoint (`--iam-endpoint`, `HUAWEICLOUD_SDK_IAM_ENDPOINT`).
    pub iam_endpoint: Option<&'a Url>,
    /// The default-credentials Secret's mount (`--default-credentials-dir`).
    pub default_credentials_dir: Option<&'a Path>,
    /// `$HOME`, for the SDK's `~/.huaweicloud/credentials`.
    pub home: Option<PathBuf>,
}

/// The first configured source, or none; an error names what is half configured.
pub fn select(
    env: &dyn Fn(&str) -> Option<String>,
    inputs: &ChainInputs<'_>,
) -> Result<Option<Source>, String> {
    let vars = Vars(env);
    let iam = match inputs.iam_endpoint {
        Some(url) => url.clone(),
        None => parse_url(DEFAULT_IAM_ENDPOINT, "the IAM endpoint")?,
    };
    // The SDK's order: a half-configured source stops the chain rather than fall through to
    // one the user did not mean.
    let chain: [&dyn Fn() -> Result<Option<Source>, String>; 5] = [
        &|| federation(&vars, &iam),
        &|| oidc_sts(&vars),
        &|| environment_keys(&vars),
        &|| mounted_or_file(&vars, inputs, &iam),
        &|| pod_identity(&vars),
    ];
    for source in chain {
        if let Some(found) = source()? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// The environment as the chain reads it: blank values count as unset.
struct Vars<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Vars<'_> {
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }
}

/// A token file federated at IAM: both variables, or neither.
fn federation(vars: &Vars<'_>, iam: &Url) -> Result<Option<Source>, String> {
    match (vars.get(ENV_IDP_ID), vars.get(ENV_ID_TOKEN_FILE)) {
        (Some(identity_provider), Some(token_file)) => Ok(Some(Source::Federation {
            identity_provider,
            token_file: token_file.into(),
            iam: iam.clone(),
        })),
        (Some(_), None) | (None, Some(_)) => Err(format!(
            "set both {ENV_IDP_ID} and {ENV_ID_TOKEN_FILE}, or neither"
        )),
        (None, None) => Ok(None),
    }
}

/// An agency assumed at STS, when both URNs are set; then a token is required.
fn oidc_sts(vars: &Vars<'_>) -> Result<Option<Source>, String> {
    let (Some(provider_urn), Some(agency_urn)) = (
        vars.get(ENV_OIDC_PROVIDER_URN),
        vars.get(ENV_OIDC_AGENCY_URN),
    ) else {
        return Ok(None);
    };
    let token = match (vars.get(ENV_OIDC_ID_TOKEN), vars.get(ENV_OIDC_TOKEN_FILE)) {
        (Some(inline), _) => TokenInput::Inline(inline.into()),
        (None, Some(file)) => TokenInput::File(file.into()),
        (None, None) => {
            return Err(format!(
                "{ENV_OIDC_PROVIDER_URN} is set: set {ENV_OIDC_TOKEN_FILE} (or {ENV_OIDC_ID_TOKEN}) too"
            ));
        }
    };
    let duration_seconds = match vars.get(ENV_OIDC_DURATION_SECONDS) {
        Some(text) => text
            .parse()
            .map_err(|_| format!("{ENV_OIDC_DURATION_SECONDS} is not a number of seconds"))?,
        None => OIDC_DEFAULT_DURATION_SECONDS,
    };
    let sts = match vars.get(ENV_STS_ENDPOINT) {
        Some(url) => parse_url(&url, ENV_STS_ENDPOINT)?,
        None => parse_url(DEFAULT_STS_ENDPOINT, "the STS endpoint")?,
    };
    Ok(Some(Source::OidcSts {
        request: AgencyRequest {
            provider_urn,
            agency_urn,
            session_name: vars
                .get(ENV_OIDC_SESSION_NAME)
                .unwrap_or_else(|| OIDC_DEFAULT_SESSION_NAME.into()),
            duration_seconds,
        },
        token,
        sts,
    }))
}

/// Access keys in the environment, the SDK's names before the operator's.
fn environment_keys(vars: &Vars<'_>) -> Result<Option<Source>, String> {
    let lookup = |name: &str| vars.get(name);
    for (read, names) in [
        (
            Credentials::from_sdk_env_lookup(lookup),
            "HUAWEICLOUD_SDK_AK, HUAWEICLOUD_SDK_SK",
        ),
        (
            Credentials::from_env_lookup(lookup),
            "CLOUD_SDK_AK, CLOUD_SDK_SK or CLOUD_SDK_TOKEN",
        ),
    ] {
        match read {
            Ok(credentials) => return Ok(Some(Source::Environment { credentials, names })),
            Err(crate::cce::CredentialsError::Missing { .. }) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(None)
}

/// The mounted default-credentials Secret, then the credentials file the environment names,
/// then the SDK's `~/.huaweicloud/credentials` if it exists.
fn mounted_or_file(
    vars: &Vars<'_>,
    inputs: &ChainInputs<'_>,
    iam: &Url,
) -> Result<Option<Source>, String> {
    if let Some(dir) = inputs.default_credentials_dir {
        return Ok(Some(Source::Directory(dir.to_path_buf())));
    }
    if let Some(path) = vars.get(ENV_CREDENTIALS_FILE) {
        return Ok(Some(Source::Profile {
            path: path.into(),
            iam: iam.clone(),
        }));
    }
    Ok(inputs
        .home
        .as_ref()
        .map(|home| home.join(".huaweicloud").join("credentials"))
        .filter(|path| path.is_file())
        .map(|path| Source::Profile {
            path,
            iam: iam.clone(),
        }))
}

/// CCE pod identity: both variables, or neither.
fn pod_identity(vars: &Vars<'_>) -> Result<Option<Source>, String> {
    match (
        vars.get(ENV_POD_IDENTITY_URI),
        vars.get(ENV_POD_IDENTITY_TOKEN_FILE),
    ) {
        (Some(uri), Some(token_file)) => Ok(Some(Source::PodIdentity {
            uri: parse_url(&uri, ENV_POD_IDENTITY_URI)?,
            token_file: token_file.into(),
        })),
        (Some(_), None) | (None, Some(_)) => Err(format!(
            "set both {ENV_POD_IDENTITY_URI} and {ENV_POD_IDENTITY_TOKEN_FILE}, or neither"
        )),
        (None, None) => Ok(None),
    }
}

fn parse_url(text: &str, what: &str) -> Result<Url, String> {
    Url::parse(text).map_err(|e| format!("{what} is not a URL: {e}"))
}

/// What a credentials file holds.
#[derive(Debug)]
enum Profile {
    Keys(Credentials),
    Federation {
        identity_provider: String,
        token_file: PathBuf,
        iam: Option<Url>,
    },
}

/// Reads the `[basic]` profile of the SDK's credentials file (INI, like Python's
/// configparser reads it); errors name keys, never values.
fn read_profile(path: &Path) -> Result<Profile, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the credentials file {shown}: {e}"))?;
    let ini = ini::Ini::load_from_str(&text)
        .map_err(|e| format!("the credentials file {shown} is not INI: line {}", e.line))?;
    let section = ini.section(Some(PROFILE_SECTION)).ok_or_else(|| {
        format!("the credentials file {shown} has no [{PROFILE_SECTION}] profile")
    })?;
    let get = |key: &str| section.get(key).map(str::trim).filter(|v| !v.is_empty());
    if let (Some(identity_provider), Some(token_file)) = (get("idp_id"), get("id_token_file")) {
        let iam = get("iam_endpoint")
            .map(|u| parse_url(u, "iam_endpoint"))
            .transpose()?;
        return Ok(Profile::Federation {
            identity_provider: identity_provider.to_string(),
            token_file: token_file.into(),
            iam,
        });
    }
    match (get("ak"), get("sk")) {
        (Some(ak), Some(sk)) => Credentials::temporary(ak, sk, get("security_token"))
            .map(Profile::Keys)
            .map_err(|e| format!("the credentials file {shown}: {e}")),
        _ => Err(format!(
            "the credentials file {shown} has neither ak and sk nor idp_id and id_token_file in [{PROFILE_SECTION}]"
        )),
    }
}

/// A token file's content: the SDK trims it; an empty one is an error.
fn read_token(path: &Path) -> Result<SecretString, Failure> {
    let missing = |detail: String| Failure {
        category: Category::CredentialsMissing,
        message: format!("the token file {}: {detail}", path.display()),
        permanent: false,
    };
    let text = std::fs::read_to_string(path).map_err(|e| missing(e.to_string()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(missing("it is empty".into()));
    }
    Ok(SecretString::from(token.to_string()))
}

/// The renewal key of a default source: its description.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct DefaultKey(String);

impl fmt::Display for DefaultKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the default credentials ({})", self.0)
    }
}

/// The operator's default credentials, resolved on demand.
pub struct Defaults {
    source: Option<Source>,
    exchanger: Exchanger,
    duration_seconds: u32,
    renewing: Renewing<DefaultKey>,
    /// The last read of a file source, and when.
    read: Mutex<Option<(Instant, Result<Credentials, Failure>)>>,
}

impl Defaults {
    pub fn new(
        source: Option<Source>,
        exchanger: Exchanger,
        duration_seconds: u32,
        clock: Clock,
        backoff: Backoff,
    ) -> Self {
        Self {
            source,
            exchanger,
            duration_seconds,
            renewing: Renewing::new(clock, backoff),
            read: Mutex::new(None),
        }
    }

    pub fn source(&self) -> Option<&Source> {
        self.source.as_ref()
    }

    pub async fn resolve(&self) -> Result<Credentials, Failure> {
        let Some(source) = &self.source else {
            return Err(Failure {
                category: Category::CredentialsMissing,
                message: "spec.credentialsSecretRef and spec.workloadIdentity are not set and the operator has no default credentials".into(),
                permanent: true,
            });
        };
        match source {
            Source::Environment { credentials, .. } => Ok(credentials.clone()),
            Source::Directory(dir) => self.reread(|| {
                Credentials::from_dir(dir).map_err(|e| Failure {
                    category: e.category(),
                    message: format!(
                        "the default-credentials Secret mounted at {}: {e}",
                        dir.display()
                    ),
                    permanent: true,
                })
            }),
            Source::Profile {
                path,
                iam: fallback,
            } => match self.reread_profile(path)? {
                Profile::Keys(credentials) => Ok(credentials),
                Profile::Federation {
                    identity_provider,
                    token_file,
                    iam,
                } => {
                    let iam = iam.unwrap_or_else(|| fallback.clone());
                    self.federate(source, &identity_provider, &token_file, &iam)
                        .await
                }
            },
            Source::Federation {
                identity_provider,
                token_file,
                iam,
            } => {
                self.federate(source, identity_provider, token_file, iam)
                    .await
            }
            Source::OidcSts {
                request,
                token,
                sts,
            } => {
                self.renewing
                    .get(&DefaultKey(source.to_string()), || async {
                        let token = match token {
                            TokenInput::Inline(t) => t.clone(),
                            TokenInput::File(path) => read_token(path)?,
                        };
                        self.exchanger
                            .assume_with_oidc(sts, request, &token)
                            .await
                            .map_err(|e| exchange_failure(source, &e))
                    })
                    .await
            }
            Source::PodIdentity { uri, token_file } => {
                self.renewing
                    .get(&DefaultKey(source.to_string()), || async {
                        let token = read_token(token_file)?;
                        self.exchanger
                            .pod_identity(uri, &token)
                            .await
                            .map_err(|e| exchange_failure(source, &e))
                    })
                    .await
            }
        }
    }

    async fn federate(
        &self,
        source: &Source,
        identity_provider: &str,
        token_file: &Path,
        iam: &Url,
    ) -> Result<Credentials, Failure> {
        let key = DefaultKey(format!("{source}; identity provider {identity_provider}"));
        self.renewing
            .get(&key, || async {
                let token = read_token(token_file)?;
                self.exchanger
                    .federate(iam, identity_provider, &token, self.duration_seconds)
                    .await
                    .map_err(|e| exchange_failure(source, &e))
            })
            .await
    }

    /// A file source's credentials, read again once they are [`REREAD_AFTER`] old.
    fn reread(
        &self,
        read: impl FnOnce() -> Result<Credentials, Failure>,
    ) -> Result<Credentials, Failure> {
        let mut last = self.read.lock();
        if let Some((at, value)) = &*last
            && at.elapsed() < REREAD_AFTER
        {
            return value.clone();
        }
        let value = read();
        *last = Some((Instant::now(), value.clone()));
        value
    }

    fn reread_profile(&self, path: &Path) -> Result<Profile, Failure> {
        let failure = |message: String| Failure {
            category: Category::CredentialsInvalid,
            message,
            permanent: true,
        };
        // Keys go through the re-read cache; a federation profile is cheap to read and its
        // keys are cached by the renewal.
        match read_profile(path).map_err(failure)? {
            Profile::Keys(_) => self
                .reread(|| match read_profile(path) {
                    Ok(Profile::Keys(c)) => Ok(c),
                    Ok(Profile::Federation { .. }) => Err(failure(format!(
                        "the credentials file {} changed while it was read",
                        path.display()
                    ))),
                    Err(e) => Err(failure(e)),
                })
                .map(Profile::Keys),
            federation => Ok(federation),
        }
    }

    pub fn sweep(&self) {
        self.renewing.sweep(Duration::from_secs(3600));
    }
}

fn exchange_failure(source: &Source, e: &crate::cce::iam::ExchangeError) -> Failure {
    Failure {
        category: e.category(),
        message: format!("default credentials from {source}: {e}"),
        permanent: !e.is_retryable(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use super::*;

    fn chain(vars: &[(&str, &str)], inputs: &ChainInputs<'_>) -> Result<Option<Source>, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        select(&|name| vars.get(name).cloned(), inputs)
    }

    fn none<'a>() -> ChainInputs<'a> {
        ChainInputs {
            iam_endpoint: None,
            default_credentials_dir: None,
            home: None,
        }
    }

    fn kind(source: &Option<Source>) -> &'static str {
        match source {
            Some(Source::Federation { .. }) => "federation",
            Some(Source::OidcSts { .. }) => "oidc-sts",
            Some(Source::Environment { names, .. }) if names.starts_with("HUAWEICLOUD") => {
                "huaweicloud-env"
            }
            Some(Source::Environment { .. }) => "cloud-sdk-env",
            Some(Source::Directory(_)) => "directory",
            Some(Source::Profile { .. }) => "profile",
            Some(Source::PodIdentity { .. }) => "pod-identity",
            None => "none",
        }
    }

    const EVERYTHING: &[(&str, &str)] = &[
        (ENV_IDP_ID, "idp"),
        (ENV_ID_TOKEN_FILE, "/var/run/token"),
        (ENV_OIDC_PROVIDER_URN, "iam::1:identity-provider:p"),
        (ENV_OIDC_AGENCY_URN, "iam::1:agency:a"),
        (ENV_OIDC_TOKEN_FILE, "/var/run/oidc"),
        ("HUAWEICLOUD_SDK_AK", "AK1"),
        ("HUAWEICLOUD_SDK_SK", "SK-VALUE-1"),
        ("CLOUD_SDK_AK", "AK2"),
        ("CLOUD_SDK_SK", "SK-VALUE-2"),
        (ENV_CREDENTIALS_FILE, "/etc/hc/credentials"),
        (ENV_POD_IDENTITY_URI, "http://169.254.170.2/v1/credentials"),
        (ENV_POD_IDENTITY_TOKEN_FILE, "/var/run/pod-identity"),
    ];

    #[test]
    fn the_first_configured_source_wins_in_the_sdks_order() {
        let dir = PathBuf::from("/var/run/default-credentials");
        let with_dir = ChainInputs {
            default_credentials_dir: Some(&dir),
            ..none()
        };
        let order = [
            "federation",
            "oidc-sts",
            "huaweicloud-env",
            "cloud-sdk-env",
            "directory",
            "profile",
            "pod-identity",
        ];
        // Drop the sources one by one, first first: the next one in the order wins.
        let without_dir = none();
        let mut inputs = &with_dir;
        let mut vars: Vec<(&str, &str)> = EVERYTHING.to_vec();
        for (i, expected) in order.iter().enumerate() {
            let picked = chain(&vars, inputs).expect("valid");
            assert_eq!(kind(&picked), *expected, "step {i}");
            let drop: &[&str] = match *expected {
                "federation" => &[ENV_IDP_ID, ENV_ID_TOKEN_FILE],
                "oidc-sts" => &[
                    ENV_OIDC_PROVIDER_URN,
                    ENV_OIDC_AGENCY_URN,
                    ENV_OIDC_TOKEN_FILE,
                ],
                "huaweicloud-env" => &["HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK"],
                "cloud-sdk-env" => &["CLOUD_SDK_AK", "CLOUD_SDK_SK"],
                "profile" => &[ENV_CREDENTIALS_FILE],
                _ => &[],
            };
            vars.retain(|(k, _)| !drop.contains(k));
            if *expected == "directory" {
                inputs = &without_dir;
            }
        }
        assert_eq!(kind(&chain(&[], &none()).expect("valid")), "none");
    }

    #[test]
    fn the_log_line_names_sources_never_values() {
        for vars in [EVERYTHING, &EVERYTHING[5..]] {
            let source = chain(vars, &none()).expect("valid").expect("a source");
            let text = format!("{source} {source:?}");
            assert!(!text.contains("SK-VALUE"), "{text}");
        }
        let inline = chain(
            &[
                (ENV_OIDC_PROVIDER_URN, "p"),
                (ENV_OIDC_AGENCY_URN, "a"),
                (ENV_OIDC_ID_TOKEN, "eyJ-INLINE-TOKEN"),
            ],
            &none(),
        )
        .expect("valid")
        .expect("a source");
        assert!(!format!("{inline} {inline:?}").contains("INLINE-TOKEN"));
    }

    #[test]
    fn half_configured_sources_are_errors_naming_what_is_missing() {
        let e = chain(&[(ENV_IDP_ID, "idp")], &none()).expect_err("half");
        assert!(e.contains(ENV_ID_TOKEN_FILE), "{e}");
        let e = chain(&[(ENV_POD_IDENTITY_URI, "http://x")], &none()).expect_err("half");
        assert!(e.contains(ENV_POD_IDENTITY_TOKEN_FILE), "{e}");
        let e = chain(&[("HUAWEICLOUD_SDK_AK", "AK")], &none()).expect_err("half");
        assert!(e.contains("HUAWEICLOUD_SDK_SK"), "{e}");
    }

    #[test]
    fn the_home_credentials_file_is_used_when_it_exists() {
        let home = tempfile::tempdir().expect("dir");
        let inputs = ChainInputs {
            home: Some(home.path().to_path_buf()),
            ..none()
        };
        assert_eq!(kind(&chain(&[], &inputs).expect("valid")), "none");
        std::fs::create_dir(home.path().join(".huaweicloud")).expect("mkdir");
        std::fs::write(
            home.path().join(".huaweicloud/credentials"),
            "[basic]\nak = A\nsk = S\n",
        )
        .expect("write");
        assert_eq!(kind(&chain(&[], &inputs).expect("valid")), "profile");
    }

    #[test]
    fn credentials_files_hold_keys_or_a_federation() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("credentials");
        std::fs::write(
            &path,
            "[basic]\nak = AK1\nsk = SK-VALUE-1\nsecurity_token = ST-VALUE\n[global]\nak = x\n",
        )
        .expect("write");
        assert!(
            matches!(read_profile(&path), Ok(Profile::Keys(c)) if c.mode() == "temporary-aksk")
        );
        std::fs::write(
            &path,
            "[basic]\nidp_id = idp\nid_token_file = /t\niam_endpoint = https://iam.example.com\n",
        )
        .expect("write");
        assert!(matches!(
            read_profile(&path),
            Ok(Profile::Federation { iam: Some(_), .. })
        ));
        std::fs::write(&path, "[basic]\nak = AK1\n").expect("write");
        let e = read_profile(&path).expect_err("no sk");
        assert!(e.contains("neither ak and sk"), "{e}");
        std::fs::write(&path, "[global]\nak = AK1\nsk = SK-VALUE-1\n").expect("write");
        assert!(
            read_profile(&path)
                .expect_err("no basic")
                .contains("[basic]")
        );
        std::fs::write(&path, "[basic]\nak = AK1\nsk = SK VALUE\n").expect("write");
        let e = read_profile(&path).expect_err("bad value");
        assert!(!e.contains("VALUE"), "{e}");
    }

    #[tokio::test]
    async fn a_rotated_default_credentials_secret_is_read_again() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("accessKey"), "AK-OLD").expect("write");
        std::fs::write(dir.path().join("secretKey"), "SK-OLD").expect("write");
        let exchanger = Exchanger::new(crate::cce::ClientConfig::default()).expect("client");
        let defaults = Defaults::new(
            Some(Source::Directory(dir.path().to_path_buf())),
            exchanger,
            3600,
            Arc::new(jiff::Timestamp::now),
            Backoff::DEFAULT,
        );
        let access_key = || async { defaults.resolve().await.expect("keys").to_string() };
        assert!(access_key().await.contains("AK-OLD"));
        std::fs::write(dir.path().join("accessKey"), "AK-NEW").expect("write");
        // Within the re-read interval the kept keys serve; after it the new ones.
        assert!(access_key().await.contains("AK-OLD"));
        if let Some((at, _)) = defaults.read.lock().as_mut()
            && let Some(earlier) = at.checked_sub(REREAD_AFTER)
        {
            *at = earlier;
        }
        assert!(access_key().await.contains("AK-NEW"));
    }
}
