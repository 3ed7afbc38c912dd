//! Checkpoint averaging (`model::average`, `innscope average`): every tensor of the result is
//! the mean of the inputs' (computed here in f64 from the inputs), its discrete weights at a
//! pruned width and another resolution are the mean of the inputs' discrete weights there
//! (discretization is linear in λ), and models of different architectures are refused without
//! writing anything.

mod common;

use std::process::Command;

use innscope::model::{Model, arch, average::average, native};

fn inn(seed: u64, widths: [usize; 3], hidden: Option<usize>) -> Model {
    arch::fashion_cnn(seed, widths, hidden, true, 0.75).expect("builds")
}

#[test]
fn the_average_is_the_element_wise_mean_at_every_width_and_resolution() {
    let models = [
        inn(1, [4, 6, 8], Some(5)),
        inn(2, [4, 6, 8], Some(5)),
        inn(3, [4, 6, 8], Some(5)),
    ];
    let mean = average(&models, serde_json::json!({"test": true})).expect("averages");
    assert_eq!(mean.doc.provenance["test"], true);
    assert_eq!(mean.tensors.len(), models[0].tensors.len());
    for (name, got) in &mean.tensors {
        let want = models
            .iter()
            .map(|m| m.tensors[name].mapv(f64::from))
            .reduce(|a, b| a + b)
            .expect("three models")
            / 3.0;
        let err = got
            .iter()
            .zip(&want)
            .map(|(g, w)| (f64::from(*g) - w).abs())
            .fold(0.0, f64::max);
        assert!(err < 1e-7, "{name}: off the mean by {err}");
    }
    // At 60 % width and 20 px the discrete weights are the mean of the inputs' discrete ones.
    let mut plan = mean.default_plan();
    plan.set_keep(&mean.doc.groups, 0.6);
    plan.resolution = [20, 20];
    let resolved = mean.resolve(&plan).expect("plan");
    let got = mean.discretize(&resolved).expect("discretizes");
    let each: Vec<_> = models
        .iter()
        .map(|m| m.discretize(&resolved).expect("discretizes"))
        .collect();
    for (name, w) in &got {
        let want = each
            .iter()
            .map(|d| d[name].mapv(f64::from))
            .reduce(|a, b| a + b)
            .expect("three models")
            / 3.0;
        let scale = want.iter().fold(0.0_f64, |m, v| m.max(v.abs())).max(1e-12);
        let err = w
            .iter()
            .zip(&want)
            .map(|(g, v)| (f64::from(*g) - v).abs())
            .fold(0.0, f64::max);
        assert!(err / scale < 1e-5, "{name}: relative error {}", err / scale);
    }
}

#[test]
fn models_of_another_architecture_are_refused() {
    let base = inn(1, [4, 6, 8], Some(5));
    for (other, what) in [
        (inn(2, [4, 6, 10], Some(5)), "groups"),
        (inn(2, [4, 6, 8], None), "groups"),
        (
            arch::fashion_cnn(2, [4, 6, 8], Some(5), false, 1.0).expect("builds"),
            "groups",
        ),
    ] {
        let err = average(&[base.clone(), other], serde_json::Value::Null)
            .expect_err("different architectures")
            .to_string();
        assert!(
            err.contains("model 2 is not the architecture of model 1") && err.contains(what),
            "{err}"
        );
    }
    let err = average(std::slice::from_ref(&base), serde_json::Value::Null)
        .expect_err("one model")
        .to_string();
    assert!(err.contains("at least two"), "{err}");
}

#[test]
fn learned_partitions_are_averaged_point_by_point_or_refused() {
    let with_points = |seed, points: Option<Vec<f32>>| {
        let mut m = inn(seed, [4, 6, 8], None);
        m.doc.groups[1].learned = points;
        m
    };
    let a = with_points(1, Some(vec![-1.0, -0.5, 0.1, 0.4, 0.7, 1.0]));
    let b = with_points(2, Some(vec![-0.9, -0.3, 0.0, 0.2, 0.9, 1.0]));
    let mean = average(&[a.clone(), b], serde_json::Value::Null).expect("averages");
    let got = mean.doc.groups[1].learned.as_ref().expect("kept");
    let want = [-0.95, -0.4, 0.05, 0.3, 0.8, 1.0];
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-6, "{got:?}");
    }
    assert_eq!(got.len(), want.len());
    assert!(mean.doc.groups[0].learned.is_none());
    for other in [
        with_points(2, None),
        with_points(2, Some(vec![-1.0, 0.0, 1.0, 0.5, 0.2])),
    ] {
        let err = average(&[a.clone(), other], serde_json::Value::Null)
            .expect_err("learned partitions that do not match")
            .to_string();
        assert!(err.contains("group 1: learned partitions"), "{err}");
    }
}

#[test]
fn the_command_writes_the_mean_or_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = |name: &str| dir.path().join(name);
    native::write(&inn(1, [4, 6, 8], None), &path("a.inn.safetensors")).expect("writes");
    native::write(&inn(2, [4, 6, 8], None), &path("b.inn.safetensors")).expect("writes");
    native::write(&inn(3, [4, 6, 12], None), &path("c.inn.safetensors")).expect("writes");

    let run = |inputs: &[&str], out: &str| {
        Command::new(common::bin())
            .arg("average")
            .args(inputs.iter().map(|i| path(i)))
            .arg("-o")
            .arg(path(out))
            .output()
            .expect("runs")
    };
    let ok = run(
        &["a.inn.safetensors", "b.inn.safetensors"],
        "ab.inn.safetensors",
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let ab = native::read(&path("ab.inn.safetensors")).expect("reads");
    let (a, b) = (
        native::read(&path("a.inn.safetensors")).expect("reads"),
        native::read(&path("b.inn.safetensors")).expect("reads"),
    );
    for (name, t) in &ab.tensors {
        let want = (&a.tensors[name] + &b.tensors[name]) * 0.5;
        assert!(common::max_abs_diff(t, &want) < 1e-7, "{name}");
    }
    let sources = ab.doc.provenance["averaged"]
        .as_array()
        .expect("sources listed");
    assert_eq!(sources.len(), 2);
    assert_eq!(sources[1]["file"], "b.inn.safetensors");

    for inputs in [
        &["a.inn.safetensors", "c.inn.safetensors"][..],
        &["a.inn.safetensors", "missing.inn.safetensors"],
        &["a.inn.safetensors"],
    ] {
        let out = run(inputs, "bad.inn.safetensors");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{inputs:?} succeeded");
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            !path("bad.inn.safetensors").exists(),
            "{inputs:?} wrote a file"
        );
    }
}
