//! The mathematics of Integral Neural Networks: pure Rust, no GUI, no GPU.
//!
//! - [`basis`]: cubic-convolution interpolation weights of a partition (PyTorch bicubic).
//! - [`partition`]: uniform (`linspace`) and learned partitions, quantile resampling.
//! - [`quadrature`]: trapezoid weights and `τ`.
//! - [`spatial`]: tap positions of continuous spatial axes at another input resolution.
//! - [`group`]: axes that share a partition.
//! - [`plan`]: sizes, partitions and resolution chosen by the user.
//! - [`layout`]: what each axis of a parameter is, and its shapes and points under a plan.
//! - [`discretize`]: control values λ → discrete tensor.
//!
//! Every engine (CPU, GPU) and every panel takes its numbers from here.

pub mod basis;
pub mod discretize;
pub mod group;
pub mod layout;
pub mod partition;
pub mod plan;
pub mod quadrature;
pub mod spatial;

pub use group::{Group, GroupId};
pub use layout::{AxisKind, ParamLayout};
pub use partition::PartitionKind;
pub use plan::{Plan, Resolved};
pub use quadrature::Quadrature;

/// Largest partition size accepted for a group.
pub const MAX_GROUP_SIZE: usize = 1 << 16;
/// Largest input resolution accepted, in pixels per side.
pub const MAX_RESOLUTION: usize = 4096;
/// Largest number of elements of one tensor (1 GiB of f32).
pub const MAX_ELEMENTS: usize = 1 << 28;

/// What can go wrong in the math, each with the numbers involved.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    /// A plan names a group the model does not have.
    #[error("group {group} does not exist (groups: {known:?})")]
    UnknownGroup {
        /// The group asked for.
        group: GroupId,
        /// The model's groups.
        known: Vec<GroupId>,
    },
    /// A group size out of range.
    #[error("group {group}: size {size} is out of range 1..={max}")]
    BadSize {
        /// The group.
        group: GroupId,
        /// The size asked for.
        size: usize,
        /// The largest size accepted.
        max: usize,
    },
    /// A resolution out of range.
    #[error("resolution {resolution} is out of range 1..={max}")]
    BadResolution {
        /// The resolution asked for.
        resolution: usize,
        /// The largest accepted.
        max: usize,
    },
    /// A continuous axis refers to a group the resolved plan lacks.
    #[error("no partition for group {group}")]
    MissingPartition {
        /// The group.
        group: GroupId,
    },
    /// A tensor would be too large.
    #[error("a tensor of shape {shape:?} exceeds the limit of {max} elements")]
    TooLarge {
        /// The shape asked for.
        shape: Vec<usize>,
        /// The limit.
        max: usize,
    },
    /// Control values and layout disagree.
    #[error("shape mismatch: {detail}")]
    Shape {
        /// What disagrees.
        detail: String,
    },
    /// Quadrature cannot be computed.
    #[error("quadrature: {0}")]
    Quadrature(String),
}
