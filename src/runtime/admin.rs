//! `/healthz`, `/readyz` and `/metrics` on the operator's admin port. Ready means the
//! watch caches have synced; leadership is reported in metrics, not in readiness, so
//! standby replicas stay ready to take over. The port is served from its own thread: a
//! reconcile that keeps the runtime's workers busy cannot make a liveness probe fail.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::metrics::Metrics;

#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set_ready(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct AppState {
    metrics: Metrics,
    readiness: Readiness,
}

pub fn router(metrics: Metrics, readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(AppState { metrics, readiness })
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.readiness.is_ready() {
        (StatusCode::OK, "ok")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "watch caches not synced yet",
        )
    }
}

async fn render_metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// Binds the admin port and serves it from a thread of its own, so that probes are answered
/// however busy the reconcilers keep the main runtime's workers. The returned future
/// resolves when the server has stopped, after `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    metrics: Metrics,
    readiness: Readiness,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(
    SocketAddr,
    impl std::future::Future<Output = std::io::Result<()>>,
)> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let app = router(metrics, readiness);
    let (stopped, on_stop) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("admin".into())
        .spawn(move || {
            let served = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .and_then(|runtime| {
                    runtime.block_on(async move {
                        let listener = tokio::net::TcpListener::from_std(listener)?;
                        axum::serve(listener, app)
                            .with_graceful_shutdown(shutdown)
                            .await
                    })
                });
            let _ = stopped.send(served);
        })?;
    let server = async move {
        on_stop
            .await
            .unwrap_or_else(|_| Err(std::io::Error::other("the admin server's thread ended")))
    };
    Ok((local, server))
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    use super::*;

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn healthz_answers_while_every_worker_is_busy() {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (addr, server) = serve(
            "127.0.0.1:0".parse().expect("addr"),
            Metrics::new(),
            Readiness::default(),
            async move {
                let _ = stopped.await;
            },
        )
        .await
        .expect("bind");
        let server = tokio::spawn(server);
        // Occupies the only worker, as a long CPU-bound reconcile would.
        let busy = tokio::spawn(async { std::thread::sleep(Duration::from_secs(2)) });
        let probe = std::thread::spawn(move || {
            let started = Instant::now();
            (get(addr, "/healthz"), started.elapsed())
        });
        let (answer, took) = probe.join().expect("probe");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(took < Duration::from_secs(1), "healthz took {took:?}");
        busy.await.expect("busy");
        let _ = stop.send(());
        server.await.expect("join").expect("served");
    }
}
