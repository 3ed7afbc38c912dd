//! innscope: explore Integral Neural Networks.
//!
//! Data flows one way: model (continuous) → discretization plan → engine → discrete weights
//! and activations → panels. [`inn`] is the pure math; [`model`] the graph and files;
//! [`engine`] runs a model; [`data`] reads images and data sets.

pub mod app;
pub mod data;
pub mod engine;
pub mod eval;
pub mod gpu;
pub mod inn;
pub mod layers;
pub mod model;
pub mod sweep;
pub mod timing;
pub mod train;
