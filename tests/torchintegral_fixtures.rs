//! innscope against TorchIntegral's own output: partitions, discretized weights, logits and
//! exports for every configuration of both reference models.

mod common;

use common::{Expected, expected, import, logit_tolerance, max_abs_diff};
use innscope::engine::cpu::CpuEngine;
use innscope::inn::{PartitionKind, Plan};
use innscope::model::Model;
use ndarray::{Array4, Ix4};

/// The plan of one fixture configuration: sizes listed in the library's group order.
fn plan_of(model: &Model, exp: &Expected, cfg: &serde_json::Value) -> Plan {
    let mut plan = model.default_plan();
    plan.partition = PartitionKind::Learned;
    let tuned = cfg["tuned_group"].as_u64();
    for (gid, size) in exp
        .group_order
        .iter()
        .zip(cfg["sizes"].as_array().expect("sizes"))
    {
        if Some(u64::from(*gid)) == tuned {
            continue; // the learned grid, used as stored
        }
        plan.sizes
            .insert(*gid, size.as_u64().expect("size") as usize);
    }
    plan
}

fn check_model(name: &str) {
    let model = import(name);
    let exp = expected(name);
    let inputs: Array4<f32> = exp.tensors["inputs"]
        .clone()
        .into_dimensionality::<Ix4>()
        .expect("NCHW inputs");
    let (mut worst_w, mut worst_l, mut worst_rel) = (0.0_f32, 0.0_f32, 0.0_f32);
    assert!(!exp.configs.is_empty());
    for cfg in &exp.configs {
        let tag = cfg["tag"].as_str().expect("tag");
        let plan = model
            .resolve(&plan_of(&model, &exp, cfg))
            .expect("valid plan");
        // Partitions: bit for bit what the library used.
        for (gid, points) in &plan.partitions {
            let want = &exp.tensors[&format!("{tag}/grid/{gid}")];
            let want: Vec<u32> = want.iter().map(|v| v.to_bits()).collect();
            let got: Vec<u32> = points.iter().map(|v| v.to_bits()).collect();
            assert_eq!(got, want, "{name} {tag}: grid of group {gid}");
        }
        // Discretized weights within 1e-6.
        let engine = CpuEngine::new(&model, &plan).expect("discretizes");
        for (param, w) in &engine.weights().expect("weights") {
            let want = &exp.tensors[&format!("{tag}/{param}")];
            let d = max_abs_diff(w, want);
            assert!(d <= 1e-6, "{name} {tag} {param}: max |diff| {d:e}");
            worst_w = worst_w.max(d);
        }
        // Logits within 1e-4.
        let logits = engine
            .forward(&model, inputs.view())
            .expect("forward")
            .into_dyn();
        let want = &exp.tensors[&format!("{tag}/logits")];
        let d = max_abs_diff(&logits, want);
        let scale = want.iter().fold(0.0_f32, |a, v| a.max(v.abs()));
        eprintln!("{name} {tag}: logits max |diff| {d:e} (max |logit| {scale:.1})");
        assert!(
            d <= logit_tolerance(want),
            "{name} {tag}: logits max |diff| {d:e}"
        );
        worst_l = worst_l.max(d);
        worst_rel = worst_rel.max(d / scale);
    }
    eprintln!(
        "{name}: worst weight error {worst_w:e}, worst logit error {worst_l:e} ({worst_rel:e} of max |logit|) over {} configurations",
        exp.configs.len()
    );
}

#[test]
fn mnist_example_matches_torchintegral_at_every_configuration() {
    check_model("mnist_example");
}

#[test]
fn mnist_tuned_matches_torchintegral_with_its_learned_unsorted_grid() {
    check_model("mnist_tuned");
    let model = import("mnist_tuned");
    let exp = expected("mnist_tuned");
    let learned = model
        .group(2)
        .and_then(|g| g.learned.clone())
        .expect("group 2 is learned");
    let want: Vec<f32> = exp.tensors["tuned_grid_final"].iter().copied().collect();
    assert_eq!(learned, want);
    assert!(
        !innscope::inn::partition::is_sorted(&learned),
        "the fixture's tuned grid is unsorted"
    );
}

/// The restricted pickle reader against the library's own float32 copy of every entry.
#[test]
fn checkpoint_reader_matches_the_state_copies() {
    for name in ["mnist_example", "mnist_tuned"] {
        let state =
            innscope::model::pickle::read_checkpoint(&common::fixture(&format!("{name}.pt")))
                .expect("reads");
        let exp = expected(name);
        let copies: Vec<_> = exp
            .tensors
            .iter()
            .filter(|(k, _)| k.starts_with("state/"))
            .collect();
        assert_eq!(copies.len(), state.len(), "{name}: number of entries");
        for (k, v) in copies {
            let key = k.strip_prefix("state/").expect("prefix");
            assert_eq!(&state[key], v, "{name}: {key}");
        }
    }
}

#[test]
fn export_writes_the_library_discrete_state_dict() {
    let model = import("mnist_example");
    let exp = expected("mnist_example");
    let dir = tempfile::tempdir().expect("tempdir");
    for cfg in &exp.configs {
        let tag = cfg["tag"].as_str().expect("tag");
        let plan = model.resolve(&plan_of(&model, &exp, cfg)).expect("valid");
        let path = dir.path().join(format!("{tag}.safetensors"));
        let summary = innscope::model::export::export(
            &model,
            &plan,
            &model.discretize(&plan).expect("discretizes"),
            &path,
        )
        .expect("exports");
        let back = innscope::model::export::read_state_dict(&path).expect("reads back");
        assert_eq!(summary.tensors, 8);
        assert_eq!(back.len(), 8);
        for (k, v) in &back {
            let d = max_abs_diff(v, &exp.tensors[&format!("{tag}/{k}")]);
            assert!(d <= 1e-6, "{tag} {k}: {d:e}");
        }
        assert_eq!(summary.parameters, model.param_count(&plan).expect("count"));
    }
}

#[test]
fn native_format_round_trips() {
    for name in ["mnist_example", "mnist_tuned"] {
        let model = import(name);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.inn.safetensors");
        innscope::model::native::write(&model, &path).expect("writes");
        let back = innscope::model::native::read(&path).expect("reads");
        assert_eq!(back.doc, model.doc);
        assert_eq!(back.tensors, model.tensors);
        assert_eq!(
            back.doc
                .groups
                .iter()
                .map(|g| g.learned.clone())
                .collect::<Vec<_>>(),
            model
                .doc
                .groups
                .iter()
                .map(|g| g.learned.clone())
                .collect::<Vec<_>>()
        );
    }
}

/// Parameter counts of the manifests' configurations (the README's table).
#[test]
fn parameter_counts_match_the_manifest() {
    let model = import("mnist_example");
    let exp = expected("mnist_example");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::fixture("mnist_example.manifest.json")).expect("manifest"),
    )
    .expect("json");
    for (cfg, m) in exp
        .configs
        .iter()
        .zip(manifest["configs"].as_array().expect("configs"))
    {
        let plan = model.resolve(&plan_of(&model, &exp, cfg)).expect("valid");
        assert_eq!(
            model.param_count(&plan).expect("count") as u64,
            m["param_count"].as_u64().expect("count")
        );
    }
}
