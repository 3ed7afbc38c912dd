//! The GPU engine: wgpu compute for discretization and the forward pass, with the WGSL in
//! `shaders/`. It mirrors the CPU engine operation for operation and matches it to float32
//! round-off; where no adapter exists the CPU engine runs instead.

pub mod context;
pub(crate) mod discretize;
pub mod engine;
pub(crate) mod params;
pub mod timer;
pub mod weight_view;

pub use context::GpuContext;
pub use discretize::{DEFAULT_ROWS, Discretization, MAX_ROWS};
pub use engine::GpuEngine;
pub use timer::GpuTimer;
pub use weight_view::WeightView;

use crate::model::ModelError;

/// What can fail on the GPU.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// No adapter that can run compute.
    #[error("{0}")]
    NoAdapter(String),
    /// Device or pipeline creation failed.
    #[error("GPU setup: {0}")]
    Setup(String),
    /// The device was lost (driver reset, GPU removed).
    #[error("the GPU device was lost")]
    Lost,
    /// A device error (out of memory, validation).
    #[error("GPU: {0}")]
    Device(String),
    /// A buffer beyond the adapter's limits.
    #[error("too large for this GPU: {0}")]
    TooLarge(String),
    /// The model or plan cannot run.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Inputs or state that do not fit.
    #[error("{0}")]
    Invalid(String),
}
