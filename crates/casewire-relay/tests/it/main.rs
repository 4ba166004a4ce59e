//! Integration tests of the relay against librdkafka's mock cluster, a real Kafka protocol
//! broker running in-process, with faults injected precisely.

mod config;
mod mock;
mod support;
