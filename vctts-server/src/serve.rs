//! Serving a router on a listener with connection hygiene: a limit on open
//! connections, a deadline for a request's headers and one for its body
//! (slow clients cannot hold connections), and graceful shutdown.
//!
//! Invariants: at most `max_connections` connections are served at once (the
//! next is accepted only when one closes); a connection whose request head
//! is not complete within `header_read_timeout` is closed; a request body
//! not received in full within `body_read_timeout` fails the request (the
//! handler sees a body error and answers with the JSON error body); on
//! shutdown no new connection is accepted and the function returns once the
//! open ones have finished their requests.

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;
use futures::StreamExt;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Connection limits of a listener.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnectionLimits {
    /// Most connections served at once.
    pub max_connections: usize,
    /// Time allowed for a request's head (request line and headers).
    pub header_read_timeout: Duration,
    /// Time allowed for a request's whole body.
    pub body_read_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(120),
        }
    }
}

/// Wraps every request body in a deadline (the middleware of [`serve`]).
async fn body_deadline(limit: Duration, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let deadline = tokio::time::Instant::now() + limit;
    let stream = body.into_data_stream();
    let timed = futures::stream::unfold((stream, false), move |(mut s, done)| async move {
        if done {
            return None;
        }
        match tokio::time::timeout_at(deadline, s.next()).await {
            Ok(Some(Ok(chunk))) => Some((Ok(chunk), (s, false))),
            Ok(Some(Err(e))) => Some((Err(std::io::Error::other(e)), (s, true))),
            Ok(None) => None,
            Err(_) => Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("the request body did not arrive within {} s", limit.as_secs_f64()),
                )),
                (s, true),
            )),
        }
    });
    next.run(Request::from_parts(parts, Body::from_stream(timed)))
        .await
}

/// Serves `app` on `listener` until `shutdown` resolves, then waits for the
/// open connections to finish. Handlers see the peer as
/// `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let body_limit = limits.body_read_timeout;
    let app = app.layer(axum::middleware::from_fn(move |req: Request, next: Next| {
        body_deadline(body_limit, req, next)
    }));
    let max = limits.max_connections.clamp(1, 1 << 20);
    let slots = Arc::new(Semaphore::new(max));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Some(limits.header_read_timeout));
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let svc = TowerToHyperService::new(app.clone().layer(axum::Extension(ConnectInfo(peer))));
        let builder = builder.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = async { drop(stop.wait_for(|s| *s).await) } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection gives its place back when it has finished.
    let _ = slots.acquire_many(max as u32).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn start(limits: ConnectionLimits) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let app = Router::new()
            .route("/", axum::routing::get(|| async { "ok" }))
            .route(
                "/echo",
                axum::routing::post(|body: axum::body::Bytes| async move { format!("{}", body.len()) }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(listener, app, limits, async move {
            let _ = rx.await;
        }));
        (addr, tx)
    }

    fn quick() -> ConnectionLimits {
        ConnectionLimits {
            max_connections: 2,
            header_read_timeout: Duration::from_millis(300),
            body_read_timeout: Duration::from_millis(300),
        }
    }

    /// Reads until the peer closes; what it sent.
    async fn read_to_close(s: &mut tokio::net::TcpStream) -> String {
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out))
            .await
            .expect("the server must close the connection");
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn a_trickled_head_is_cut_off() {
        let (addr, _stop) = start(quick()).await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        let got = read_to_close(&mut s).await;
        assert!(!got.contains("200 OK"), "{got}");
    }

    #[tokio::test]
    async fn a_trickled_body_fails_the_request() {
        let (addr, _stop) = start(quick()).await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
            .await
            .unwrap();
        let got = tokio::time::timeout(Duration::from_secs(30), async {
            let mut buf = vec![0u8; 4096];
            let n = s.read(&mut buf).await.unwrap_or(0);
            String::from_utf8_lossy(&buf[..n]).into_owned()
        })
        .await
        .expect("the server must answer or close");
        assert!(!got.contains("200 OK"), "{got}");
    }

    #[tokio::test]
    async fn connections_over_the_limit_wait_for_a_free_one() {
        let limits = ConnectionLimits {
            header_read_timeout: Duration::from_secs(60),
            ..quick()
        };
        let (addr, _stop) = start(limits).await;
        // Two idle connections take both places.
        let idle1 = tokio::net::TcpStream::connect(addr).await.unwrap();
        let idle2 = tokio::net::TcpStream::connect(addr).await.unwrap();
        let ask = || async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            read_to_close(&mut s).await
        };
        let third = tokio::spawn(ask());
        // The third is not served while both places are taken.
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        assert!(!third.is_finished());
        drop(idle1);
        let got = third.await.unwrap();
        assert!(got.contains("200 OK"), "{got}");
        drop(idle2);
    }
}
