//! The layer graph: named values flowing through ops, in forward order.
//!
//! Each [`Node`] reads named values (`in`) and writes one (`out`). The first node is the
//! `input`; the last node's value is the network's output (logits). Parameters are referred to
//! by name (the original module path, e.g. `conv_2.weight`). What each op is and does lives in
//! its room under [`crate::layers`].

use serde::{Deserialize, Serialize};

pub use crate::layers::Op;

/// One step of the forward pass.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Names of the values read, in order.
    #[serde(rename = "in", default)]
    pub inputs: Vec<String>,
    /// Name of the value written.
    pub out: String,
    /// What the step computes.
    #[serde(flatten)]
    pub op: Op,
}
