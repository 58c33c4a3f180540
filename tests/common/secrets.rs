//! Secret values no operator log may contain: the simulator's built-in credentials, and
//! every Secret value a test creates through [`sim_secret`]. [`super::operator::Operator`]
//! checks its log against them, in plain and in base64, when it is dropped.

use std::sync::Mutex;

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};

use cce_upgrade_watch::crd::account::{CREDENTIALS_LABEL, CREDENTIALS_LABEL_VALUE};
use cce_upgrade_watch::sim::builtin;

static FORBIDDEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

const BUILTIN_SECRETS: [&str; 4] = [
    builtin::SECRET_KEY,
    builtin::TEMP_SECRET_KEY,
    builtin::SECURITY_TOKEN,
    builtin::TOKEN,
];

/// The Secret `cce` in `ns` with the simulator's built-in AK/SK, which the watches of most
/// tests name.
pub async fn builtin_secret(client: &Client, ns: &str) {
    sim_secret(
        client,
        ns,
        "cce",
        cce_upgrade_watch::sim::builtin::ACCESS_KEY,
        cce_upgrade_watch::sim::builtin::SECRET_KEY,
    )
    .await;
}

/// A marked Secret (labelled as CCE credentials) with an AK/SK (usually the simulator's
/// built-in one) for accounts to reference; its values are added to what no operator log
/// may contain.
pub async fn sim_secret(client: &Client, ns: &str, name: &str, ak: &str, sk: &str) {
    forbid_in_logs(ak);
    forbid_in_logs(sk);
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": ns, "labels": {CREDENTIALS_LABEL: CREDENTIALS_LABEL_VALUE}},
        "stringData": {"accessKey": ak, "secretKey": sk}
    }))
    .expect("secret");
    Api::<Secret>::namespaced(client.clone(), ns)
        .patch(
            name,
            &PatchParams::apply("e2e-tests").force(),
            &Patch::Apply(&secret),
        )
        .await
        .expect("apply secret");
}

/// Adds a secret value that must never appear in an operator's log.
pub fn forbid_in_logs(secret: &str) {
    let mut list = FORBIDDEN.lock().unwrap_or_else(|e| e.into_inner());
    if !secret.is_empty() && !list.iter().any(|s| s == secret) {
        list.push(secret.to_string());
    }
}

/// The log lines that contain a forbidden secret (plain or base64), with the secret
/// masked so the failure message leaks nothing either.
pub fn secret_leaks(log: &str) -> Vec<String> {
    let mut secrets: Vec<String> = BUILTIN_SECRETS.iter().map(|s| s.to_string()).collect();
    secrets.extend(
        FORBIDDEN
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned(),
    );
    let needles: Vec<String> = secrets
        .iter()
        .flat_map(|s| [s.clone(), base64(s.as_bytes())])
        .collect();
    log.lines()
        .filter(|line| needles.iter().any(|n| line.contains(n.as_str())))
        .map(|line| {
            let mut masked = line.to_string();
            for n in &needles {
                masked = masked.replace(n.as_str(), "<SECRET>");
            }
            masked.chars().take(300).collect()
        })
        .collect()
}

/// Standard base64 with padding, as Kubernetes shows Secret data.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
