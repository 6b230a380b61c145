//! Integration tests of `switchboard-registry`.

mod discovery;
