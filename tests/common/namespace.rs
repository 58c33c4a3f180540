//! A namespace per test, so tests on the shared plane never see each other's objects.

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, PostParams};

/// A fresh namespace for one test, named after it. Without kube-controller-manager
/// namespaces never finish deleting, so they are left for `hack/control-plane.sh down`.
pub async fn namespace(client: &Client, test: &str) -> String {
    let suffix: u32 = rand::random();
    let name = format!(
        "{}-{:08x}",
        test.replace('_', "-").chars().take(40).collect::<String>(),
        suffix
    );
    create_namespace(client, &name).await;
    name
}

/// Creates the namespace `name`; one that exists already (another test made a shared
/// one first) is fine.
pub async fn create_namespace(client: &Client, name: &str) {
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).expect("namespace");
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("create namespace {name}: {e}"),
    }
}

/// The shared plane's client and a fresh namespace for `test`, prepared by [`setup_on`].
pub async fn setup(test: &str) -> (Client, String) {
    let client = super::client().await;
    let ns = setup_on(&client, test).await;
    (client, ns)
}

/// A fresh namespace for `test` on `client`'s plane, with the CRD installed and the Secret
/// `cce` holding the simulator's built-in keys.
pub async fn setup_on(client: &Client, test: &str) -> String {
    super::install_crd(client).await;
    let ns = namespace(client, test).await;
    super::builtin_secret(client, &ns).await;
    ns
}
