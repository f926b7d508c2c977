//! The HTTP endpoint of `metrics.listen`: `GET /metrics` (Prometheus text format, see
//! [`broker::prometheus`]), `GET /health` (200 while the process runs) and `GET /ready`
//! (200 while the node serves: a broker once registered, until it starts stopping; 503
//! otherwise).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use broker::Broker;
use bytes::Bytes;
use controller::Controller;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Scrapes served at once; further connections wait in the listen backlog.
const MAX_CONNECTIONS: usize = 16;
/// How long a client may take to send its request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// What the endpoint reports on, filled in as the node starts.
#[derive(Debug, Default)]
pub(crate) struct NodeState {
    controller: OnceLock<Controller>,
    broker: OnceLock<Arc<Broker>>,
    serving: AtomicBool,
}

impl NodeState {
    /// The controller has started.
    pub(crate) fn set_controller(&self, controller: &Controller) {
        let _ = self.controller.set(controller.clone());
    }

    /// The broker has opened.
    pub(crate) fn set_broker(&self, broker: &Arc<Broker>) {
        let _ = self.broker.set(Arc::clone(broker));
    }

    /// Whether `/ready` answers 200.
    pub(crate) fn set_serving(&self, serving: bool) {
        self.serving.store(serving, Ordering::Release);
    }
}

/// Binds `addr` and serves the endpoint on it until the process ends; returns the bound
/// address (`addr` may name port 0).
pub(crate) async fn start(addr: &str, state: Arc<NodeState>) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding metrics.listen {addr}"))?;
    let bound = listener.local_addr()?;
    tokio::spawn(accept(listener, state));
    Ok(bound)
}

async fn accept(listener: TcpListener, state: Arc<NodeState>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "metrics endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(respond(&state, request).await) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(error) = served {
                tracing::debug!(%error, "metrics endpoint: connection failed");
            }
            drop(slot);
        });
    }
}

async fn respond(state: &Arc<NodeState>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    match request.uri().path() {
        "/metrics" => {
            let state = Arc::clone(state);
            // Reads files under /proc and takes partition locks: off the async threads.
            let page = tokio::task::spawn_blocking(move || {
                broker::prometheus::render(
                    state.controller.get(),
                    state.broker.get().map(Arc::as_ref),
                )
            })
            .await;
            match page {
                Ok(page) => reply(
                    StatusCode::OK,
                    "text/plain; version=0.0.4; charset=utf-8",
                    page,
                ),
                Err(error) => reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain",
                    format!("rendering metrics failed: {error}\n"),
                ),
            }
        }
        "/health" => reply(StatusCode::OK, "text/plain", "ok\n".into()),
        "/ready" if state.serving.load(Ordering::Acquire) => {
            reply(StatusCode::OK, "text/plain", "ready\n".into())
        }
        "/ready" => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "not ready\n".into(),
        ),
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}
