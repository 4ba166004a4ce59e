//! Integration tests of the domain on a real SQLite outbox.

mod anchoring;
mod app;
mod auth;
mod cases;
mod custody;
mod encryption;
mod evidence;
mod rl;
mod settings;
mod support;
mod updates;
