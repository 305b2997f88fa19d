//! maglevd-frontend's integration tests: real maglevds on their embedded demo, the real
//! frontend binary, and (in `browser`) a headless Chromium driven over WebDriver.

mod api;
mod browser;
mod harness;
