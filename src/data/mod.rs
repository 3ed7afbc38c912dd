//! Data: IDX data sets, images, and the assets bundled with innscope.

pub mod assets;
pub mod idx;
pub mod input;
