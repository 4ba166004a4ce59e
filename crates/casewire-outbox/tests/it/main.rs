//! Integration tests of the outbox, on real SQLite files in temporary directories.

mod corruption;
mod group_commit;
mod legacy;
mod lifecycle;
mod model;
mod support;
