//! HTTP tests against the real router on a real loopback socket, with a real SQLite outbox.

mod anchoring;
mod api;
mod connections;
mod desktop;
mod publishing;
mod refusals;
mod screens;
mod support;
mod users;
