//! The command line end to end, on the bundled TorchIntegral model (shapes known from the
//! fixtures) and on the bundled demo INN with its discrete twin.

mod common;

use std::process::Command;

/// The bundled TorchIntegral reference model.
const TI: &str = "assets/torchintegral-mnist.inn.safetensors";

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
    let (ok, out, err) = run(&["info", TI]);
    assert!(ok, "{err}");
    assert!(
        out.contains("conv_2.weight[0], conv_2.bias[0], conv_3.weight[1]"),
        "{out}"
    );
    assert!(out.contains("parameters at full size: 64906"), "{out}");
    let (ok, json, _) = run(&["info", TI, "--json"]);
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
        TI,
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
        TI,
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
    let (ok, out, err) = run(&[
        "export",
        TI,
        "--keep",
        "0.5",
        "-o",
        st.to_str().expect("utf8"),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("16458 parameters"), "{out}");
    let back = innscope::model::export::read_state_dict(&st).expect("readable");
    assert_eq!(back["conv_2.weight"].shape(), &[16, 8, 5, 5]);

    let csv = dir.path().join("sweep.csv");
    let (ok, out, err) = run(&[
        "sweep",
        TI,
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
    assert!(
        lines[0].starts_with("model,point,resolution,sizes"),
        "{text}"
    );
    assert!(lines[1].starts_with("INN,\"1\""), "{text}");
    assert!(lines[2].contains(",16458,"), "{text}");
}

/// The bundled demo INN against its discrete twin over resolution: one row of each per
/// resolution, the twin's parameter count fixed (its kernels do not follow the resolution),
/// the INN's growing with the kernel taps; a PNG plot of the right size.
#[test]
fn sweep_over_resolution_covers_the_inn_and_its_twin_with_a_plot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("res.csv");
    let png = dir.path().join("res.png");
    let (ok, out, err) = run(&[
        "sweep",
        "--over",
        "resolution",
        "--resolutions",
        "20,28,42",
        "--limit",
        "100",
        "--engine",
        "cpu",
        "-o",
        csv.to_str().expect("utf8"),
        "--plot",
        png.to_str().expect("utf8"),
    ]);
    assert!(ok, "{err}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 6, "{out}");
    let params = |model: &str, res: &str| -> usize {
        rows.iter()
            .find(|r| r[0] == model && r[2] == res)
            .and_then(|r| r[4].parse().ok())
            .expect("row")
    };
    assert_eq!(params("discrete twin", "20"), params("discrete twin", "42"));
    // 5 native taps: 3 at 20 px, 7 at 42 px (taps_half_width), so the INN grows.
    assert!(params("INN", "20") < params("INN", "28"));
    assert!(params("INN", "28") < params("INN", "42"));
    assert_eq!(params("INN", "28"), params("discrete twin", "28"));
    let img = image::open(&png).expect("a PNG");
    assert_eq!((img.width(), img.height()), (900, 560));
}

/// A few steps of `innscope train` on a tiny network write a model that opens, with its
/// provenance, and `--resume` continues it.
#[test]
fn train_writes_a_model_with_provenance_and_resumes() {
    // The bundled subset is a test split; train needs a train split: a copy under that name.
    let dir = common::training_data();
    let out_path = dir.path().join("tiny.inn.safetensors");
    let args = |epochs: &str| {
        vec![
            "train".to_string(),
            "--data".into(),
            dir.path().display().to_string(),
            "--widths".into(),
            "4,6,8".into(),
            "--limit".into(),
            "64".into(),
            "--batch".into(),
            "32".into(),
            "--epochs".into(),
            epochs.into(),
            "-o".into(),
            out_path.display().to_string(),
        ]
    };
    let first = args("1");
    let (ok, _, err) = run(&first.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok, "{err}");
    let model = innscope::model::native::read(&out_path).expect("opens");
    assert_eq!(model.doc.provenance["epochs_done"], 1);
    assert_eq!(model.doc.provenance["train_images"], 64);
    let mut resume = args("2");
    resume.push("--resume".into());
    let (ok, _, err) = run(&resume.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok, "{err}");
    assert!(err.contains("resuming"), "{err}");
    let model = innscope::model::native::read(&out_path).expect("opens");
    assert_eq!(model.doc.provenance["epochs_done"], 2);
    // Both commands are kept, oldest first, so the run can be reproduced.
    let history: Vec<&str> = model.doc.provenance["history"]
        .as_array()
        .expect("a history")
        .iter()
        .filter_map(serde_json::Value::as_str)
        .collect();
    let spelled = |a: &[String]| format!("innscope {}", a.join(" "));
    assert_eq!(history, [spelled(&first), spelled(&resume)]);
    assert_eq!(model.doc.provenance["command"], spelled(&resume).as_str());
    // No --control-ratio on either run: the default grids (half of each width), kept.
    assert_eq!(model.doc.provenance["control_ratio"], 0.5);
    assert_eq!(model.tensors["conv1.weight"].shape()[0], 2);
}

/// `bench` on the TorchIntegral model: every row has its timings and the memory-bound ratio,
/// and the GPU/CPU ratio line pairs rows of the same model only when both engines ran.
#[test]
fn bench_reports_each_engine_and_pairs_ratios_by_model() {
    let quick = [
        "bench",
        TI,
        "--no-resnet",
        "--iters",
        "3",
        "--budget-secs",
        "0.5",
        "--batch",
        "2",
    ];
    let (ok, json, err) = run(&[&quick[..], &["--engine", "cpu", "--json"]].concat());
    assert!(ok, "{err}");
    let rows: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let rows = rows.as_array().expect("rows");
    assert_eq!(rows.len(), 1);
    for key in [
        "rediscretize",
        "forward_one",
        "slider_tick",
        "write_weights_once",
        "stream_once",
    ] {
        let median = rows[0][key]["median_ms"].as_f64().expect(key);
        assert!(median > 0.0, "{key}: {median}");
    }
    assert_eq!(rows[0]["parameters"], 64_906);
    // One group's slider redoes some tensors, not all, and is timed.
    let one = &rows[0]["rediscretize_one_group"];
    let (redone, all) = (one["tensors"][0].as_u64(), one["tensors"][1].as_u64());
    assert!(
        matches!((redone, all), (Some(r), Some(a)) if 0 < r && r < a),
        "{one}"
    );
    assert!(one["median_ms"].as_f64().is_some_and(|m| m > 0.0), "{one}");
    // What (a) must move: the discrete weights are the parameters above, in f32.
    assert_eq!(rows[0]["bytes_discrete"], 4 * 64_906);
    let lambda = rows[0]["bytes_lambda"].as_u64().expect("λ bytes");
    assert!(lambda > 0 && lambda.is_multiple_of(4), "{lambda}");
    for ratio in [
        "rediscretize_over_write_once",
        "rediscretize_over_stream_once",
    ] {
        assert!(rows[0][ratio].as_f64().expect(ratio) > 0.0, "{ratio}");
    }

    let (ok, table, err) = run(&[&quick[..], &["--engine", "all"]].concat());
    assert!(ok, "{err}");
    // The table shows the bytes beside the rate: (λ + weights) in MB on the CPU row.
    let mb = format!("{:.2}", (lambda + 4 * 64_906) as f64 / 1e6);
    let cpu_row = table
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("cpu"))
        .expect("a CPU row");
    assert!(
        cpu_row.split_whitespace().any(|c| c == mb),
        "{mb} in {cpu_row}"
    );
    let ratios = table
        .lines()
        .filter(|l| l.contains("GPU/CPU time ratio"))
        .count();
    if table.contains("GPU adapter:") {
        assert_eq!(ratios, 1, "{table}");
        let (ok, table, err) = run(&[&quick[..], &["--engine", "gpu"]].concat());
        assert!(ok, "{err}");
        assert!(!table.contains("GPU/CPU time ratio"), "{table}");
        // On the GPU's clock, (a) beside the copy done by a shader.
        for line in table.lines().filter(|l| l.contains("on the GPU's clock")) {
            assert!(line.contains("copy in a shader"), "{line}");
        }
    } else {
        assert!(
            std::env::var_os("INNSCOPE_REQUIRE_GPU").is_none(),
            "INNSCOPE_REQUIRE_GPU is set but bench found no GPU: {err}"
        );
        assert_eq!(ratios, 0, "{table}");
    }
}

/// The command line opens what the window opens: a TorchIntegral checkpoint with its manifest
/// beside it gives the same description as its import (the reference model's 64 906
/// parameters, TorchIntegral's own count for `mnist_example`).
#[test]
fn info_opens_a_torchintegral_checkpoint_as_the_window_does() {
    let (ok, out, err) = run(&["info", "tests/fixtures/torchintegral/mnist_example.pt"]);
    assert!(ok, "{err}");
    assert!(out.contains("parameters at full size: 64906"), "{out}");
    let dir = tempfile::tempdir().expect("dir");
    let lone = dir.path().join("lone.pt");
    std::fs::copy("tests/fixtures/torchintegral/mnist_example.pt", &lone).expect("copy");
    let (ok, _, err) = run(&["info", lone.to_str().expect("utf-8")]);
    assert!(!ok);
    assert!(err.contains("lone.manifest.json"), "{err}");
}

/// An engine name the bench does not know is refused before anything runs, with the names it
/// knows and a non-zero exit.
#[test]
fn bench_refuses_an_unknown_engine() {
    let (ok, out, err) = run(&["bench", "--engine", "foo", "--no-resnet"]);
    assert!(!ok);
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("foo") && err.contains("cpu") && err.contains("gpu"),
        "{err}"
    );
}
