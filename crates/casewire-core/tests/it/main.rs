//! Integration tests of the domain on a real SQLite outbox.

mod auth;
mod cases;
mod evidence;
mod rl;
mod support;
