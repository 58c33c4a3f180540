//! The CCE listener's accept loop: TCP, optional TLS, HTTP/1.1 through hyper, and the
//! connection-reset fault. A plain `axum::serve` cannot drop one connection on purpose,
//! so this loop keeps a duplicate handle on each socket: to reset, it sets `SO_LINGER` to
//! zero and fails the connection, and the kernel then answers with a TCP RST instead of
//! a FIN — what a crashed proxy looks like to the client. I/O.

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use super::server::{Reply, Sim, serve_request};

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The error a service returns to make hyper drop the connection without answering.
#[derive(Debug)]
struct ResetConnection;

impl std::fmt::Display for ResetConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset by fault injection")
    }
}

impl std::error::Error for ResetConnection {}

/// Accepts connections until the task is dropped.
pub async fn serve_cce(listener: TcpListener, tls: Option<TlsAcceptor>, sim: Arc<Sim>) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .keep_alive(true);
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (sim, tls, http) = (Arc::clone(&sim), tls.clone(), http.clone());
        tokio::spawn(serve_connection(tcp, tls, sim, http));
    }
}

async fn serve_connection(
    tcp: TcpStream,
    tls: Option<TlsAcceptor>,
    sim: Arc<Sim>,
    http: http1::Builder,
) {
    // A second handle on the socket, kept by the service, to set SO_LINGER on a reset.
    let (tcp, handle) = match duplicate(tcp) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::debug!(error = %e, "cannot set up the connection");
            return;
        }
    };
    let service = service_fn(move |req| {
        let (sim, handle) = (Arc::clone(&sim), Arc::clone(&handle));
        async move {
            match serve_request(&sim, req).await {
                Reply::Answer(response) => Ok(response),
                Reply::Reset => {
                    if let Err(e) =
                        socket2::SockRef::from(&*handle).set_linger(Some(Duration::ZERO))
                    {
                        tracing::debug!(error = %e, "cannot set SO_LINGER; closing normally");
                    }
                    Err(ResetConnection)
                }
            }
        }
    });
    let served = match tls {
        Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
        {
            Ok(Ok(stream)) => http.serve_connection(TokioIo::new(stream), service).await,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!("TLS handshake timed out");
                return;
            }
        },
        None => http.serve_connection(TokioIo::new(tcp), service).await,
    };
    if let Err(e) = served {
        tracing::debug!(error = %e, "connection ended");
    }
}

fn duplicate(tcp: TcpStream) -> std::io::Result<(TcpStream, Arc<std::net::TcpStream>)> {
    tcp.set_nodelay(true)?;
    let std_stream = tcp.into_std()?;
    let handle = Arc::new(std_stream.try_clone()?);
    Ok((TcpStream::from_std(std_stream)?, handle))
}
