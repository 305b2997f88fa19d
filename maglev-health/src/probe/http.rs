//! The HTTP and HTTPS probe: one GET on a fresh connection, status range and optional body
//! pattern.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::header::{ACCEPT, CONNECTION, HOST, USER_AGENT};
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::{BODY_LIMIT, HttpParams, Outcome, io_detail, net, timeout_detail, tls};
use crate::netns::SocketFactory;
use crate::result::ResultCode;

/// Connect (and TLS handshake for HTTPS), send one GET, judge the response.
pub(super) async fn http_probe(
    sockets: &SocketFactory,
    params: &HttpParams,
    target: IpAddr,
    source: Option<IpAddr>,
    deadline: Instant,
    timeout: Duration,
) -> Outcome {
    // A spec that cannot produce a valid request fails here, before any packet is sent.
    if let Err(e) = params.validate() {
        return (ResultCode::L7Rsp, format!("invalid check: {e}"));
    }
    let stream = match net::connect(
        sockets,
        SocketAddr::new(target, params.port),
        source,
        deadline,
        timeout,
    )
    .await
    {
        Ok(s) => s,
        Err(outcome) => return outcome,
    };
    let host = params
        .host
        .clone()
        .unwrap_or_else(|| default_host(target, params.port, params.tls.is_some()));
    match &params.tls {
        None => exchange(stream, params, &host, deadline, timeout).await,
        Some(tls_params) => {
            let name = tls_params.name_for(params.host.as_deref(), target);
            match tls::handshake(stream, tls_params, name, deadline, timeout).await {
                Ok(conn) => exchange(conn, params, &host, deadline, timeout).await,
                Err(outcome) => outcome,
            }
        }
    }
}

/// The backend address as a `Host` value: IPv6 in brackets, the port only when it is not the
/// scheme's default.
fn default_host(target: IpAddr, port: u16, https: bool) -> String {
    let addr = match target {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    };
    let default_port = if https { 443 } else { 80 };
    if port == default_port {
        addr
    } else {
        format!("{addr}:{port}")
    }
}

/// Sends the request over `io` and judges the response, all before `deadline`.
async fn exchange<Io>(
    io: Io,
    params: &HttpParams,
    host: &str,
    deadline: Instant,
    timeout: Duration,
) -> Outcome
where
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let request = match Request::builder()
        .method(Method::GET)
        .uri(params.path.as_str())
        .header(HOST, host)
        .header(USER_AGENT, super::USER_AGENT)
        .header(ACCEPT, "*/*")
        .header(CONNECTION, "close")
        .body(Empty::<Bytes>::new())
    {
        Ok(r) => r,
        Err(e) => return (ResultCode::L7Rsp, format!("cannot build request: {e}")),
    };
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(io)).await {
        Ok(pair) => pair,
        Err(e) => return (ResultCode::L7Rsp, hyper_detail(&e)),
    };
    let judge = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| (ResultCode::L7Rsp, hyper_detail(&e)))?;
        judge(response, params).await
    };
    // Drive the connection and the request in this task: nothing is spawned, so dropping the
    // probe (deadline) closes the socket at once.
    let both = async {
        tokio::pin!(conn);
        tokio::pin!(judge);
        let mut conn_done = false;
        loop {
            tokio::select! {
                outcome = &mut judge => return outcome,
                // When the connection ends first, the pending request fails; keep polling it.
                _ = &mut conn, if !conn_done => conn_done = true,
            }
        }
    };
    match tokio::time::timeout_at(deadline, both).await {
        Ok(Ok(ok)) | Ok(Err(ok)) => ok,
        Err(_) => (ResultCode::L7Tout, timeout_detail(timeout)),
    }
}

/// Status range, then the body pattern over at most [`BODY_LIMIT`] bytes.
async fn judge(response: Response<Incoming>, params: &HttpParams) -> Result<Outcome, Outcome> {
    let status = response.status().as_u16();
    let (lo, hi) = params.status;
    if status < lo || status > hi {
        return Err((ResultCode::L7Sts, format!("status {status}")));
    }
    if let Some(re) = &params.regexp {
        let body = read_bounded(response.into_body(), BODY_LIMIT).await?;
        if !re.is_match(&body) {
            return Err((
                ResultCode::L7Rsp,
                format!("body did not match /{}/", re.as_str()),
            ));
        }
    }
    Ok((ResultCode::L7Ok, format!("status {status}")))
}

/// Reads the body until its end or until `limit` bytes, whichever comes first.
async fn read_bounded(mut body: Incoming, limit: usize) -> Result<Vec<u8>, Outcome> {
    let mut buf = Vec::new();
    while buf.len() < limit {
        let Some(frame) = body.frame().await else {
            break;
        };
        let frame =
            frame.map_err(|e| (ResultCode::L7Rsp, format!("body: {}", hyper_detail(&e))))?;
        if let Ok(data) = frame.into_data() {
            let room = limit - buf.len();
            buf.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    Ok(buf)
}

/// A short detail for a hyper error.
fn hyper_detail(e: &hyper::Error) -> String {
    if e.is_parse() || e.is_parse_status() {
        return format!("malformed response: {e}");
    }
    if e.is_incomplete_message() || e.is_canceled() {
        return "connection closed before the response".to_owned();
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return io_detail(io);
        }
        source = s.source();
    }
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_host_brackets_v6_and_omits_default_ports() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(default_host(v4, 80, false), "192.0.2.1");
        assert_eq!(default_host(v4, 8080, false), "192.0.2.1:8080");
        assert_eq!(default_host(v4, 443, true), "192.0.2.1");
        assert_eq!(default_host(v4, 80, true), "192.0.2.1:80");
        assert_eq!(default_host(v6, 80, false), "[2001:db8::1]");
        assert_eq!(default_host(v6, 8443, true), "[2001:db8::1]:8443");
    }
}
