//! maglev-api's integration tests, one binary: the client helper against a tiny in-test server
//! over TCP, TLS, mutual TLS and a unix socket; address errors; the descriptor set; and the
//! freshness of the committed generated code.

mod client;
mod codegen;
mod descriptor;
mod support;
