//! The operator's Kubernetes client: kube's own layers (base URI, retry, authentication,
//! extra headers, tracing) and kube's own TLS configuration, over a connector that offers
//! HTTP/2 in ALPN. Against an API server that accepts h2, every request and every watch
//! of the process shares one multiplexed connection; one that offers only HTTP/1.1 gets
//! HTTP/1.1, as from kube's default client.
//!
//! kube's `Client::try_from(Config)` builds the same stack with an HTTP/1.1-only
//! connector and offers no way to swap it, so this module repeats its assembly from kube's
//! public parts (`ConfigExt`, `RetryPolicy`, `ClientBuilder`). Authentication stays
//! entirely kube's: kubeconfig and in-cluster config, bearer tokens and token files (re-read
//! as they rotate), exec plugins, client certificates and custom CAs.
//!
//! `DISABLE_HTTP2` (any value but empty), the environment variable client-go reads for the
//! same purpose, makes the client offer HTTP/1.1 only: for a proxy in front of the API
//! server that mishandles h2, and to measure one protocol against the other.

use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_timeout::TimeoutConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use kube::client::retry::RetryPolicy;
use kube::client::{Body, ClientBuilder, ConfigExt};
use kube::{Client, Config};
use tower::retry::RetryLayer;
use tower::{BoxError, ServiceBuilder};
use tower_http::trace::TraceLayer;
use tracing::Span;

/// How often an idle HTTP/2 connection is pinged, and how long a ping may go unanswered
/// before the connection counts as dead. With every watch on one connection, a peer that
/// vanished without closing it must be noticed by the client, not by each watch's timeout.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// The environment variable that turns HTTP/2 off, named as in client-go.
pub const DISABLE_HTTP2: &str = "DISABLE_HTTP2";

/// The HTTP versions the client offers the API server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocols {
    /// h2, and http/1.1 for a server that does not take h2.
    Http2AndHttp1,
    /// http/1.1 only.
    Http1Only,
}

impl Protocols {
    /// What the environment asks for: HTTP/1.1 only when `DISABLE_HTTP2` is set and not empty.
    pub fn from_env() -> Protocols {
        Protocols::from_disable_http2(std::env::var_os(DISABLE_HTTP2).as_deref())
    }

    fn from_disable_http2(value: Option<&std::ffi::OsStr>) -> Protocols {
        match value {
            Some(value) if !value.is_empty() => Protocols::Http1Only,
            _ => Protocols::Http2AndHttp1,
        }
    }
}

/// A client from the environment, as `kube::Client::try_default` finds it: the kubeconfig
/// of KUBECONFIG or `~/.kube/config`, else the pod's service account.
pub async fn infer() -> Result<Client, kube::Error> {
    let config = Config::infer().await.map_err(kube::Error::InferConfig)?;
    let protocols = Protocols::from_env();
    if protocols == Protocols::Http1Only {
        tracing::info!("{DISABLE_HTTP2} is set: HTTP/1.1 only to the API server");
    }
    from_config(config, protocols)
}

/// A client for `config` that speaks HTTP/2 where the server offers it and `protocols`
/// allows it.
pub fn from_config(config: Config, protocols: Protocols) -> Result<Client, kube::Error> {
    // The operator is built without kube's proxy support, as its default client was: a
    // kubeconfig that names a proxy is refused rather than bypassed.
    if let Some(proxy) = &config.proxy_url {
        return Err(kube::Error::ProxyProtocolUnsupported {
            proxy_url: Box::new(without_userinfo(proxy)),
        });
    }
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    // Many small frames of unrelated streams share the connection: none should wait for
    // the acknowledgement of another.
    tcp.set_nodelay(true);
    let https = tls_connector(&config, tcp, protocols)?;
    let mut connector = TimeoutConnector::new(https);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);

    let http = hyper_util::client::legacy::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .http2_keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
        .http2_keep_alive_while_idle(true)
        .build::<_, Body>(connector);

    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(
            config
                .default_retry
                .then(|| RetryLayer::new(RetryPolicy::server_retry())),
        )
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(span_for)
                .on_response(record_status),
        )
        .map_err(BoxError::from)
        .service(http);
    Ok(ClientBuilder::new(service, config.default_namespace.clone()).build())
}

/// Each request's span carries its method, URL and, once answered, its status code: the
/// fields kube's own client records, which the chart's tests read to prove that no request
/// of the operator was refused.
fn span_for(request: &Request<Body>) -> Span {
    tracing::debug_span!(
        "HTTP",
        http.method = %request.method(),
        http.url = %request.uri(),
        http.status_code = tracing::field::Empty,
    )
}

fn record_status(response: &Response<Incoming>, _: Duration, span: &Span) {
    span.record("http.status_code", response.status().as_u16());
    tracing::debug!(parent: span, "answered");
}

/// `uri` without the user and password it may carry, for an error message.
fn without_userinfo(uri: &hyper::Uri) -> hyper::Uri {
    let host = uri.host().unwrap_or_default();
    let authority = match uri.port_u16() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    hyper::Uri::builder()
        .scheme(uri.scheme_str().unwrap_or("http"))
        .authority(authority)
        .path_and_query("/")
        .build()
        .unwrap_or_default()
}

/// kube's TLS settings for `config` (its CA, client identity, server name and verifier,
/// which re-reads an in-cluster CA as it rotates), offering `protocols` in ALPN.
fn tls_connector(
    config: &Config,
    tcp: HttpConnector,
    protocols: Protocols,
) -> Result<hyper_rustls::HttpsConnector<HttpConnector>, kube::Error> {
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config.rustls_client_config()?)
        .https_or_http();
    let builder = match &config.tls_server_name {
        Some(name) => {
            let name = name.clone().try_into().map_err(|e| {
                kube::Error::RustlsTls(kube::client::RustlsTlsError::InvalidServerName(e))
            })?;
            builder.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name))
        }
        None => builder,
    };
    Ok(match protocols {
        Protocols::Http2AndHttp1 => builder.enable_all_versions().wrap_connector(tcp),
        Protocols::Http1Only => builder.enable_http1().wrap_connector(tcp),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_is_refused_without_printing_its_password() {
        let mut config = Config::new("https://127.0.0.1:6443".parse().expect("uri"));
        config.proxy_url = Some(
            "http://user:s3cr3t@proxy.example:3128"
                .parse()
                .expect("uri"),
        );
        let Err(error) = from_config(config, Protocols::Http2AndHttp1) else {
            panic!("a proxy must be refused");
        };
        let error = error.to_string();
        assert!(error.contains("proxy.example:3128"), "{error}");
        assert!(
            !error.contains("s3cr3t") && !error.contains("user"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_client_is_built_for_https_and_http_servers() {
        for url in ["https://127.0.0.1:6443", "http://127.0.0.1:8080"] {
            for protocols in [Protocols::Http2AndHttp1, Protocols::Http1Only] {
                let config = Config::new(url.parse().expect("uri"));
                assert!(
                    from_config(config, protocols).is_ok(),
                    "{url} {protocols:?}"
                );
            }
        }
    }

    #[test]
    fn disable_http2_set_to_anything_but_empty_means_http1_only() {
        use std::ffi::OsStr;
        for (value, want) in [
            (None, Protocols::Http2AndHttp1),
            (Some(""), Protocols::Http2AndHttp1),
            (Some("1"), Protocols::Http1Only),
            (Some("true"), Protocols::Http1Only),
        ] {
            assert_eq!(
                Protocols::from_disable_http2(value.map(OsStr::new)),
                want,
                "{value:?}"
            );
        }
    }
}
