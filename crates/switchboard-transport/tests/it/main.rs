//! Integration tests of `switchboard-transport` against local servers.

mod auth;
