//! maglevc end to end: one-shot commands against an in-process `maglev.v1` server with fixed
//! data (`fake`) and against a real maglevd on its embedded VPP simulator (`live`, started by
//! `daemon`), and the interactive shell driven through a pseudo-terminal (`shell`).

mod daemon;
mod fake;
mod live;
mod oneshot;
mod shell;
mod support;
