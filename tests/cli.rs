//! The command line end to end on the bundled demo model.

mod common;

use std::process::Command;

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(common::bin())
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn info_lists_groups_with_ids_sizes_and_members() {
    let (ok, out, err) = run(&["info"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("conv_2.weight[0], conv_2.bias[0], conv_3.weight[1]"),
        "{out}"
    );
    assert!(out.contains("parameters at full size: 64906"), "{out}");
    let (ok, json, _) = run(&["info", "--json"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(v["groups"].as_array().map(Vec::len), Some(3));
}

/// The sample trouser at full size is a trouser; probabilities sum to one; logits agree with
/// the probabilities (softmax) — two outputs of one run checked against each other.
#[test]
fn predict_json_gives_probabilities_and_logits() {
    let (ok, out, err) = run(&[
        "predict",
        "assets/samples/1_Trouser_t10k-2.png",
        "--json",
        "--engine",
        "cpu",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let pred = &v["predictions"][0];
    let probs = pred["probabilities"].as_object().expect("object");
    let sum: f64 = probs.values().map(|p| p.as_f64().expect("number")).sum();
    assert!((sum - 1.0).abs() < 1e-5, "{sum}");
    let best = probs
        .iter()
        .max_by(|a, b| a.1.as_f64().partial_cmp(&b.1.as_f64()).expect("finite"))
        .map(|(k, _)| k.clone());
    assert_eq!(best.as_deref(), Some("Trouser"));
    let logits: Vec<f64> = pred["logits"]
        .as_array()
        .expect("logits")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect();
    let m = logits.iter().copied().fold(f64::MIN, f64::max);
    let z: f64 = logits.iter().map(|l| (l - m).exp()).sum();
    assert!((probs["Trouser"].as_f64().expect("p") - (logits[1] - m).exp() / z).abs() < 1e-5);
    assert_eq!(v["sizes"]["1"], 64);
}

#[test]
fn predict_at_half_width_and_another_resolution_reports_the_plan() {
    let (ok, out, err) = run(&[
        "predict",
        "--keep",
        "0.5",
        "--resolution",
        "36",
        "assets/samples/7_Sneaker_t10k-9.png",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("sizes 0=8,1=32,2=16") && out.contains("at 36x36"),
        "{out}"
    );
}

#[test]
fn export_and_sweep_write_their_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let st = dir.path().join("half.safetensors");
    let (ok, out, err) = run(&["export", "--keep", "0.5", "-o", st.to_str().expect("utf8")]);
    assert!(ok, "{err}");
    assert!(out.contains("16458 parameters"), "{out}");
    let back = innscope::model::export::read_state_dict(&st).expect("readable");
    assert_eq!(back["conv_2.weight"].shape(), &[16, 8, 5, 5]);

    let csv = dir.path().join("sweep.csv");
    let (ok, out, err) = run(&[
        "sweep",
        "--keep-ratios",
        "1.0,0.5",
        "--limit",
        "200",
        "-o",
        csv.to_str().expect("utf8"),
    ]);
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(&csv).expect("csv");
    assert_eq!(text.trim(), out.trim());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("keep,sizes,resolution"));
    assert!(lines[2].contains(",16458,"), "{text}");
}
