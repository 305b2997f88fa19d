//! maglevc end to end: one-shot commands against an in-process `maglev.v1` server with fixed
//! data (`fake`), and the interactive shell driven through a pseudo-terminal (`shell`).

mod fake;
mod oneshot;
mod shell;
mod support;
