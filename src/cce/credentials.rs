//! Credentials for CCE calls (cce-api.md §2): permanent or temporary AK/SK, or an IAM
//! token, read from the environment or from a Kubernetes Secret's data. Secret parts live
//! in `SecretString`, so Debug output redacts them; errors name keys, never values.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::ByteString;
use secrecy::{ExposeSecret, SecretString};

use crate::failure::Category;

/// Environment variables, named as in Huawei's API examples.
pub const ENV_ACCESS_KEY: &str = "CLOUD_SDK_AK";
pub const ENV_SECRET_KEY: &str = "CLOUD_SDK_SK";
pub const ENV_SECURITY_TOKEN: &str = "CLOUD_SDK_SECURITY_TOKEN";
pub const ENV_TOKEN: &str = "CLOUD_SDK_TOKEN";
/// Environment variables of Huawei's SDK credential chain (it has no token variable).
pub const SDK_ENV_ACCESS_KEY: &str = "HUAWEICLOUD_SDK_AK";
pub const SDK_ENV_SECRET_KEY: &str = "HUAWEICLOUD_SDK_SK";
pub const SDK_ENV_SECURITY_TOKEN: &str = "HUAWEICLOUD_SDK_SECURITY_TOKEN";

/// Keys of a credentials Secret.
pub const KEY_ACCESS_KEY: &str = "accessKey";
pub const KEY_SECRET_KEY: &str = "secretKey";
pub const KEY_SECURITY_TOKEN: &str = "securityToken";
pub const KEY_TOKEN: &str = "token";

/// How a CCE call authenticates.
#[derive(Clone)]
pub enum Credentials {
    /// AK/SK signing; with a security token for temporary credentials.
    AkSk {
        access_key: String,
        secret_key: SecretString,
        security_token: Option<SecretString>,
    },
    /// An IAM token sent as `X-Auth-Token`.
    Token(SecretString),
}

impl Credentials {
    /// Which mode, for logs: `aksk`, `temporary-aksk` or `token`.
    pub fn mode(&self) -> &'static str {
        match self {
            Self::AkSk {
                security_token: None,
                ..
            } => "aksk",
            Self::AkSk { .. } => "temporary-aksk",
            Self::Token(_) => "token",
        }
    }

    /// `CLOUD_SDK_AK` + `CLOUD_SDK_SK` (+ `CLOUD_SDK_SECURITY_TOKEN`), or `CLOUD_SDK_TOKEN`,
    /// from `lookup` (the environment, in the operator).
    pub fn from_env_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, CredentialsError> {
        Self::from_lookup(&ENV_NAMES, |name| lookup(name).map(String::into_bytes))
    }

    /// `HUAWEICLOUD_SDK_AK` + `HUAWEICLOUD_SDK_SK` (+ `HUAWEICLOUD_SDK_SECURITY_TOKEN`), the
    /// names Huawei's SDK chain reads.
    pub fn from_sdk_env_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, CredentialsError> {
        Self::from_lookup(&SDK_ENV_NAMES, |name| lookup(name).map(String::into_bytes))
    }

    /// A directory with one file per Secret key (`accessKey`, `secretKey`, `securityToken`,
    /// `token`), as a Secret volume mounts it. A key without its file is absent.
    pub fn from_dir(dir: &std::path::Path) -> Result<Self, CredentialsError> {
        Self::from_lookup(&SECRET_KEYS, |key| std::fs::read(dir.join(key)).ok())
    }

    /// Temporary keys as a credential exchange returned them, checked like any others;
    /// errors name the answer's fields.
    pub(crate) fn temporary(
        access: &str,
        secret: &str,
        security_token: Option<&str>,
    ) -> Result<Self, CredentialsError> {
        Self::from_lookup(&EXCHANGE_FIELDS, |field| match field {
            "access" => Some(access.as_bytes().to_vec()),
            "secret" => Some(secret.as_bytes().to_vec()),
            "securitytoken" => security_token.map(|t| t.as_bytes().to_vec()),
            _ => None,
        })
    }

    /// Reads a Secret's `data`: `accessKey` + `secretKey` (+ `securityToken`), or `token`.
    pub fn from_secret_data(data: &BTreeMap<String, ByteString>) -> Result<Self, CredentialsError> {
        Self::from_lookup(&SECRET_KEYS, |key| data.get(key).map(|v| v.0.clone()))
    }

    fn from_lookup(
        names: &Names,
        lookup: impl Fn(&'static str) -> Option<Vec<u8>>,
    ) -> Result<Self, CredentialsError> {
        let read = |key: &'static str| -> Result<Option<String>, CredentialsError> {
            let Some(raw) = lookup(key) else {
                return Ok(None);
            };
            let text = String::from_utf8(raw).map_err(|_| CredentialsError::NotText { key })?;
            // Values pasted with `echo` or from files often end in a newline.
            let value = text.trim();
            if value.is_empty() {
                return Ok(None);
            }
            if !value.bytes().all(|b| (0x21..0x7f).contains(&b)) {
                return Err(CredentialsError::InvalidCharacters { key });
            }
            Ok(Some(value.to_string()))
        };
        let access_key = read(names.access_key)?;
        let secret_key = read(names.secret_key)?;
        let security_token = read(names.security_token)?;
        let token = match names.token {
            Some(name) => read(name)?,
            None => None,
        };

        let any_aksk = access_key.is_some() || secret_key.is_some() || security_token.is_some();
        match (any_aksk, token) {
            (true, Some(_)) => Err(CredentialsError::Conflicting {
                aksk: names.access_key,
                token: names.token.unwrap_or_default(),
            }),
            (false, Some(token)) => Ok(Self::Token(token.into())),
            (false, None) => Err(CredentialsError::Missing {
                access_key: names.access_key,
                secret_key: names.secret_key,
                token: names.token,
            }),
            (true, None) => {
                let access_key = access_key.ok_or(CredentialsError::MissingKey {
                    key: names.access_key,
                })?;
                let secret_key = secret_key.ok_or(CredentialsError::MissingKey {
                    key: names.secret_key,
                })?;
                Ok(Self::AkSk {
                    access_key,
                    secret_key: secret_key.into(),
                    security_token: security_token.map(SecretString::from),
                })
            }
        }
    }

    /// The secret values, so text coming back from a server can be scrubbed of them.
    pub(crate) fn secrets(&self) -> Vec<&str> {
        match self {
            Self::AkSk {
                secret_key,
                security_token,
                ..
            } => std::iter::once(secret_key.expose_secret())
                .chain(security_token.as_ref().map(|t| t.expose_secret()))
                .collect(),
            Self::Token(token) => vec![token.expose_secret()],
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AkSk {
                access_key,
                security_token,
                ..
            } => f
                .debug_struct("AkSk")
                .field("access_key", access_key)
                .field("secret_key", &"[REDACTED]")
                .field(
                    "security_token",
                    &security_token.as_ref().map(|_| "[REDACTED]"),
                )
                .finish(),
            Self::Token(_) => f.debug_tuple("Token").field(&"[REDACTED]").finish(),
        }
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AkSk { access_key, .. } => write!(f, "{} (access key {access_key})", self.mode()),
            Self::Token(_) => f.write_str("token"),
        }
    }
}

struct Names {
    access_key: &'static str,
    secret_key: &'static str,
    security_token: &'static str,
    token: Option<&'static str>,
}

const ENV_NAMES: Names = Names {
    access_key: ENV_ACCESS_KEY,
    secret_key: ENV_SECRET_KEY,
    security_token: ENV_SECURITY_TOKEN,
    token: Some(ENV_TOKEN),
};

const SDK_ENV_NAMES: Names = Names {
    access_key: SDK_ENV_ACCESS_KEY,
    secret_key: SDK_ENV_SECRET_KEY,
    security_token: SDK_ENV_SECURITY_TOKEN,
    token: None,
};

const SECRET_KEYS: Names = Names {
    access_key: KEY_ACCESS_KEY,
    secret_key: KEY_SECRET_KEY,
    security_token: KEY_SECURITY_TOKEN,
    token: Some(KEY_TOKEN),
};

/// The fields of an exchange's answer (IAM's `credential` object).
const EXCHANGE_FIELDS: Names = Names {
    access_key: "access",
    secret_key: "secret",
    security_token: "securitytoken",
    token: None,
};

/// Why credentials could not be read. Names the variable or Secret key, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error("no credentials: set {access_key} and {secret_key}{}", token.map(|t| format!(", or {t}")).unwrap_or_default())]
    Missing {
        access_key: &'static str,
        secret_key: &'static str,
        token: Option<&'static str>,
    },
    #[error("{key} is missing or empty")]
    MissingKey { key: &'static str },
    #[error("both AK/SK ({aksk}…) and {token} are set: keep only one kind of credentials")]
    Conflicting {
        aksk: &'static str,
        token: &'static str,
    },
    #[error("{key} is not UTF-8 text")]
    NotText { key: &'static str },
    #[error("{key} contains spaces or control characters")]
    InvalidCharacters { key: &'static str },
}

impl CredentialsError {
    /// A bounded reason for conditions and metrics.
    pub fn category(&self) -> Category {
        match self {
            Self::Missing { .. } | Self::MissingKey { .. } => Category::CredentialsMissing,
            Self::Conflicting { .. } | Self::NotText { .. } | Self::InvalidCharacters { .. } => {
                Category::CredentialsInvalid
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SK: &str = "sk-VERY-SECRET-value-1";
    const SECURITY_TOKEN: &str = "st-VERY-SECRET-value-2";
    const TOKEN: &str = "tok-VERY-SECRET-value-3";

    fn secret(pairs: &[(&str, &str)]) -> BTreeMap<String, ByteString> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
            .collect()
    }

    fn env(pairs: &[(&'static str, &str)]) -> Result<Credentials, CredentialsError> {
        let pairs: Vec<(&str, Vec<u8>)> = pairs
            .iter()
            .map(|(k, v)| (*k, v.as_bytes().to_vec()))
            .collect();
        Credentials::from_lookup(&ENV_NAMES, |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn secret_data_gives_aksk_with_optional_security_token() {
        let creds = Credentials::from_secret_data(&secret(&[
            ("accessKey", "AK1"),
            ("secretKey", &format!("{SK}\n")),
            ("securityToken", SECURITY_TOKEN),
        ]))
        .expect("valid");
        let Credentials::AkSk {
            access_key,
            secret_key,
            security_token,
        } = &creds
        else {
            panic!("expected AK/SK");
        };
        assert_eq!(access_key, "AK1");
        assert_eq!(secret_key.expose_secret(), SK);
        assert_eq!(
            security_token.as_ref().map(|t| t.expose_secret()),
            Some(SECURITY_TOKEN)
        );
        assert_eq!(creds.mode(), "temporary-aksk");
    }

    #[test]
    fn secret_data_gives_a_token() {
        let creds = Credentials::from_secret_data(&secret(&[("token", TOKEN)])).expect("valid");
        assert!(matches!(&creds, Credentials::Token(t) if t.expose_secret() == TOKEN));
    }

    #[test]
    fn errors_name_the_missing_key() {
        assert_eq!(
            Credentials::from_secret_data(&secret(&[("accessKey", "AK1")]))
                .expect_err("incomplete")
                .to_string(),
            "secretKey is missing or empty"
        );
        assert_eq!(
            env(&[("CLOUD_SDK_SK", SK)])
                .expect_err("incomplete")
                .to_string(),
            "CLOUD_SDK_AK is missing or empty"
        );
        let none = env(&[]).expect_err("nothing");
        assert_eq!(
            none.to_string(),
            "no credentials: set CLOUD_SDK_AK and CLOUD_SDK_SK, or CLOUD_SDK_TOKEN"
        );
        assert_eq!(none.category(), "CredentialsMissing");
        assert!(matches!(
            env(&[
                ("CLOUD_SDK_AK", "a"),
                ("CLOUD_SDK_SK", SK),
                ("CLOUD_SDK_TOKEN", TOKEN)
            ]),
            Err(CredentialsError::Conflicting { .. })
        ));
    }

    #[test]
    fn invalid_values_are_refused_without_echoing_them() {
        let errors = [
            Credentials::from_secret_data(&secret(&[
                ("accessKey", "AK1"),
                ("secretKey", "VERY SECRET with space"),
            ]))
            .expect_err("space"),
            Credentials::from_secret_data(&BTreeMap::from([(
                "token".to_string(),
                ByteString(vec![0xff, b'V', b'E', b'R', b'Y']),
            )]))
            .expect_err("not utf-8"),
            env(&[("CLOUD_SDK_TOKEN", "VERY\r\nX-Injected: 1")]).expect_err("newline"),
        ];
        for e in errors {
            let text = format!("{e} {e:?}");
            assert!(!text.contains("VERY"), "{text}");
            assert_eq!(e.category(), "CredentialsInvalid");
        }
    }

    #[test]
    fn debug_and_display_never_show_secrets() {
        let all = [
            env(&[
                ("CLOUD_SDK_AK", "AK1"),
                ("CLOUD_SDK_SK", SK),
                ("CLOUD_SDK_SECURITY_TOKEN", SECURITY_TOKEN),
            ])
            .expect("aksk"),
            env(&[("CLOUD_SDK_TOKEN", TOKEN)]).expect("token"),
        ];
        for creds in all {
            let text = format!("{creds:?} {creds:#?} {creds}");
            assert!(!text.contains("VERY-SECRET"), "{text}");
            assert!(text.contains("[REDACTED]"), "{text}");
        }
    }
}
