//! [`GrpcRequests`]: the API's calls counted by method and status code, by a tower layer
//! ([`RequestsLayer`]) around the whole server, so every service (`maglev.v1.Maglev`, health,
//! reflection) and every way a call ends is seen in one place. It knows nothing of Prometheus:
//! `crate::metrics` renders [`GrpcRequests::counts`].
//!
//! | how a call ends | code counted |
//! |---|---|
//! | an error answered at once (trailers-only response) | the `grpc-status` of the headers |
//! | a reply or stream that ends with trailers | the `grpc-status` of the trailers |
//! | a body that ends without a `grpc-status` | `UNKNOWN` |
//! | the client goes away (the body is dropped before its end) | `CANCELLED` |
//! | the server's service fails (no response at all) | `UNKNOWN` |
//!
//! Labels are bounded: a method is one of the served methods ([`KNOWN_METHODS`] and the
//! methods of `maglev.v1.Maglev` from its descriptor set); any other path counts as
//! [`UNKNOWN_METHOD`], and codes are the 17 gRPC codes.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll};

use prost::Message as _;
use tonic::Code;
use tonic::body::Body;
use tonic::codegen::http;

/// The method label of a path that is no served method.
pub const UNKNOWN_METHOD: &str = "unknown";

/// Served methods besides `maglev.v1.Maglev`'s: health and both reflection versions.
pub const KNOWN_METHODS: &[&str] = &[
    "grpc.health.v1.Health/Check",
    "grpc.health.v1.Health/Watch",
    "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// Every served method as `service/method`, sorted: the label values of `method`.
pub fn methods() -> &'static [String] {
    static METHODS: OnceLock<Vec<String>> = OnceLock::new();
    METHODS.get_or_init(|| {
        let mut all: Vec<String> = KNOWN_METHODS.iter().map(|m| (*m).to_owned()).collect();
        // The committed descriptor set is generated with the code; decoding it cannot fail
        // unless the build is broken, and then only the Maglev methods are missing.
        if let Ok(set) = prost_types::FileDescriptorSet::decode(maglev_api::FILE_DESCRIPTOR_SET) {
            for file in &set.file {
                let package = file.package();
                for service in &file.service {
                    for method in &service.method {
                        all.push(format!("{package}.{}/{}", service.name(), method.name()));
                    }
                }
            }
        }
        all.sort();
        all.dedup();
        all
    })
}

/// The label of a request path (`/service/method`): the path without its slash when it is a
/// served method, else [`UNKNOWN_METHOD`].
pub fn method_label(path: &str) -> &'static str {
    let path = path.strip_prefix('/').unwrap_or(path);
    let methods = methods();
    methods
        .binary_search_by(|m| m.as_str().cmp(path))
        .map_or(UNKNOWN_METHOD, |i| methods[i].as_str())
}

/// The canonical name of a gRPC code (`OK`, `UNAVAILABLE`, ...), as the label `code`.
pub fn code_label(code: Code) -> &'static str {
    /// Indexed by the code's number (0 to 16).
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    usize::try_from(code as i32)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("UNKNOWN")
}

/// The code in a `grpc-status` header, if any (an unparsable value reads as `UNKNOWN`).
fn status_of(headers: &http::HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?;
    Some(
        value
            .to_str()
            .ok()
            .and_then(|s| s.parse::<i32>().ok())
            .map_or(Code::Unknown, Code::from_i32),
    )
}

/// Calls by (method, code). A cheap clone; every clone counts into the same table.
#[derive(Debug, Clone, Default)]
pub struct GrpcRequests {
    counts: Arc<Mutex<HashMap<(&'static str, Code), u64>>>,
}

impl GrpcRequests {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one call of `method` (a [`method_label`]) that ended with `code`.
    pub fn record(&self, method: &'static str, code: Code) {
        *self
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((method, code))
            .or_default() += 1;
    }

    /// Every (method, code label, count) with a nonzero count, sorted.
    pub fn counts(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut all: Vec<_> = self
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(&(method, code), &n)| (method, code_label(code), n))
            .collect();
        all.sort_unstable();
        all
    }

    /// The layer that counts the calls of the server it wraps.
    pub fn layer(&self) -> RequestsLayer {
        RequestsLayer {
            requests: self.clone(),
        }
    }
}

/// The tower layer of [`GrpcRequests::layer`].
#[derive(Debug, Clone)]
pub struct RequestsLayer {
    requests: GrpcRequests,
}

impl<S> tower::Layer<S> for RequestsLayer {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Counted {
            inner,
            requests: self.requests.clone(),
        }
    }
}

/// A service whose calls are counted ([`RequestsLayer`]).
#[derive(Debug, Clone)]
pub struct Counted<S> {
    inner: S,
    requests: GrpcRequests,
}

impl<S, B> tower::Service<http::Request<B>> for Counted<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let outcome = Outcome {
            requests: self.requests.clone(),
            method: method_label(request.uri().path()),
            done: false,
        };
        let call = self.inner.call(request);
        Box::pin(async move {
            let mut outcome = outcome;
            let response = match call.await {
                Ok(response) => response,
                Err(error) => {
                    outcome.finish(Code::Unknown);
                    return Err(error);
                }
            };
            if let Some(code) = status_of(response.headers()) {
                outcome.finish(code);
                return Ok(response);
            }
            Ok(response.map(|body| {
                Body::new(CountedBody {
                    inner: body,
                    outcome,
                })
            }))
        })
    }
}

/// One call not counted yet; counted as `CANCELLED` if dropped before its end.
struct Outcome {
    requests: GrpcRequests,
    method: &'static str,
    done: bool,
}

impl Outcome {
    fn finish(&mut self, code: Code) {
        if !self.done {
            self.done = true;
            self.requests.record(self.method, code);
        }
    }
}

impl Drop for Outcome {
    fn drop(&mut self) {
        self.finish(Code::Cancelled);
    }
}

/// A response body that counts its call when its trailers (or its end) go by.
struct CountedBody {
    inner: Body,
    outcome: Outcome,
}

impl tonic::codegen::Body for CountedBody {
    type Data = <Body as tonic::codegen::Body>::Data;
    type Error = <Body as tonic::codegen::Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(status_of) {
                    this.outcome.finish(code);
                }
            }
            Poll::Ready(Some(Err(status))) => this.outcome.finish(status.code()),
            Poll::Ready(None) => this.outcome.finish(Code::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_methods_keep_their_name_and_others_are_unknown() {
        assert_eq!(
            method_label("/maglev.v1.Maglev/GetVPPInfo"),
            "maglev.v1.Maglev/GetVPPInfo"
        );
        assert_eq!(
            method_label("/grpc.health.v1.Health/Check"),
            "grpc.health.v1.Health/Check"
        );
        for path in [
            "/maglev.v1.Maglev/Nope",
            "/x/y",
            "",
            "/",
            "/maglev.v1.Maglev/",
        ] {
            assert_eq!(method_label(path), UNKNOWN_METHOD, "{path:?}");
        }
        // Every RPC of the service is served, so the set is the service's methods plus four.
        let maglev = methods()
            .iter()
            .filter(|m| m.starts_with("maglev.v1.Maglev/"))
            .count();
        assert!(maglev >= 20, "{maglev} Maglev methods");
        assert_eq!(methods().len(), maglev + KNOWN_METHODS.len());
    }

    #[test]
    fn codes_have_their_canonical_names() {
        assert_eq!(code_label(Code::Ok), "OK");
        assert_eq!(code_label(Code::Unavailable), "UNAVAILABLE");
        assert_eq!(code_label(Code::Unauthenticated), "UNAUTHENTICATED");
        assert_eq!(code_label(Code::FailedPrecondition), "FAILED_PRECONDITION");
    }

    #[test]
    fn a_call_is_counted_once_and_a_dropped_one_as_cancelled() {
        let requests = GrpcRequests::new();
        let mut done = Outcome {
            requests: requests.clone(),
            method: "grpc.health.v1.Health/Check",
            done: false,
        };
        done.finish(Code::NotFound);
        done.finish(Code::Ok);
        drop(done);
        drop(Outcome {
            requests: requests.clone(),
            method: "grpc.health.v1.Health/Watch",
            done: false,
        });
        assert_eq!(
            requests.counts(),
            [
                ("grpc.health.v1.Health/Check", "NOT_FOUND", 1),
                ("grpc.health.v1.Health/Watch", "CANCELLED", 1),
            ]
        );
    }
}
