//! Helpers shared by the integration tests: fixture paths and the reference files.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use innscope::inn::{Plan, Resolved};
use innscope::model::{Model, torchintegral};
use ndarray::ArrayD;

/// `tests/fixtures/torchintegral/{name}`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/torchintegral")
        .join(name)
}

/// Import a reference model (`mnist_example` or `mnist_tuned`).
pub fn import(name: &str) -> Model {
    torchintegral::import(
        &fixture(&format!("{name}.pt")),
        &fixture(&format!("{name}.manifest.json")),
    )
    .unwrap_or_else(|e| panic!("importing {name}: {e}"))
}

/// The library's reference output for a model: tensors and parsed metadata.
pub struct Expected {
    pub tensors: BTreeMap<String, ArrayD<f32>>,
    pub configs: Vec<serde_json::Value>,
    pub group_order: Vec<u32>,
}

pub fn expected(name: &str) -> Expected {
    let path = fixture(&format!("{name}.expected.safetensors"));
    let bytes = std::fs::read(&path).expect("fixture readable");
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).expect("fixture header");
    let meta = meta.metadata().clone().expect("fixture metadata");
    let configs: Vec<serde_json::Value> =
        serde_json::from_str(&meta["configs"]).expect("configs JSON");
    let groups: Vec<serde_json::Value> =
        serde_json::from_str(&meta["groups"]).expect("groups JSON");
    let group_order = groups
        .iter()
        .map(|g| g["group_id"].as_u64().expect("group id") as u32)
        .collect();
    let tensors = innscope::model::export::read_state_dict(&path).expect("fixture tensors");
    Expected {
        tensors,
        configs,
        group_order,
    }
}

/// How far logits may be from `reference`: 1e-4, or a millionth of the largest reference
/// logit where that is more (a float32 step at 600 is 6e-5, so a few rounding differences in a
/// long sum are already over 1e-4 there).
pub fn logit_tolerance(reference: &ArrayD<f32>) -> f32 {
    let scale = reference.iter().fold(0.0_f32, |a, v| a.max(v.abs()));
    1e-4_f32.max(1e-6 * scale)
}

/// Largest absolute difference between two arrays of one shape.
pub fn max_abs_diff(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape(), "shapes differ");
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Path of the built `innscope` binary.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_innscope")
}

/// A temporary folder holding the bundled evaluation subset under the training set's file
/// names, for `train --data`.
pub fn training_data() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let subset = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/fashion-mnist-eval");
    for (from, to) in [
        ("t10k-images-idx3-ubyte.gz", "train-images-idx3-ubyte.gz"),
        ("t10k-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    ] {
        std::fs::copy(subset.join(from), dir.path().join(to)).expect("copy");
    }
    dir
}

/// Plan steps for `arch::spatial_demo` (groups 0: conv1 out / conv2 in, 1: conv2 out /
/// fc in; both convolutions continuous in space), with the parameters each step changes,
/// worked out by hand from the model's structure.
pub fn plan_steps(model: &Model) -> Vec<(&'static str, Resolved, Vec<&'static str>)> {
    let base = Plan::native(model.native());
    let resolve = |p: &Plan| model.resolve(p).expect("valid");
    let mut group0 = base.clone();
    group0.sizes.insert(0, 5);
    let mut group1 = group0.clone();
    group1.sizes.insert(1, 11);
    let mut finer = group1.clone();
    finer.resolution = [40, 40];
    let mut both = finer.clone();
    both.sizes.insert(0, 7);
    both.sizes.insert(1, 13);
    // Every parameter with a continuous axis (all but `fc.bias`).
    let every_continuous = vec![
        "conv1.weight",
        "conv1.bias",
        "conv2.weight",
        "conv2.bias",
        "fc.weight",
    ];
    vec![
        (
            "group 0",
            resolve(&group0),
            vec!["conv1.weight", "conv1.bias", "conv2.weight"],
        ),
        (
            "group 1",
            resolve(&group1),
            vec!["conv2.weight", "conv2.bias", "fc.weight"],
        ),
        ("same plan", resolve(&group1), vec![]),
        (
            "resolution",
            resolve(&finer),
            vec!["conv1.weight", "conv2.weight"],
        ),
        ("both groups", resolve(&both), every_continuous.clone()),
        ("back to native", resolve(&base), every_continuous),
    ]
}
