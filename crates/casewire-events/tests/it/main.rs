//! Integration tests of the event model.

mod guide_examples;
mod model;
