//! Groups: continuous axes that must share one partition.
//!
//! The output channels of a layer and the input channels of the next, the channels joined by a
//! residual add or normalised by one BatchNorm: each such set is a group with one size (one
//! slider) and one partition.

use serde::{Deserialize, Serialize};

/// Identifier of a group. TorchIntegral imports keep the manifest's `group_id`.
pub type GroupId = u32;

/// A group of continuous axes sharing one partition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// Identifier, unique within a model.
    pub id: GroupId,
    /// Number of channels the network was built with (the full size).
    pub original_size: usize,
    /// A short human name, e.g. `conv_2 out / conv_3 in`.
    #[serde(default)]
    pub label: String,
    /// Learned partition points, used exactly as stored (may be unsorted or outside ±1).
    /// Stored in files as a tensor, not in the JSON document.
    #[serde(skip)]
    pub learned: Option<Vec<f32>>,
}

impl Group {
    /// The size used when none is asked for: the learned partition's size where there is one
    /// and learned partitions are wanted, else the original size.
    #[must_use]
    pub fn default_size(&self, prefer_learned: bool) -> usize {
        match (&self.learned, prefer_learned) {
            (Some(points), true) => points.len(),
            _ => self.original_size,
        }
    }
}
