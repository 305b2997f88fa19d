//! Backend health checking: the HAProxy-style probe state machine, HTTP/HTTPS/TCP/TLS/ICMP
//! probers and a scheduler that keeps many backends on their cadence.

#![cfg_attr(not(fuzzing), warn(missing_docs))]
#![forbid(unsafe_code)]

pub mod checker;
pub mod machine;
pub mod netns;
pub mod probe;
pub mod result;
