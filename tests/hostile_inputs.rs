//! Corrupt, truncated and hostile files, absurd sizes and NaN: a clear error every time, never
//! a panic, never an allocation of the absurd size.

mod common;

use std::io::Write;
use std::process::Command;

use innscope::data::assets;
use innscope::model::pickle::{PickleError, parse_state_dict, read_checkpoint};
use innscope::model::{native, torchintegral};

/// Write a torch.save-style zip holding `data.pkl` and storages.
fn write_zip(path: &std::path::Path, pickle: &[u8], storages: &[(&str, Vec<u8>)]) {
    let file = std::fs::File::create(path).expect("create");
    let mut zip = zip::ZipWriter::new(file);
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("archive/data.pkl", opts).expect("entry");
    zip.write_all(pickle).expect("write");
    for (name, bytes) in storages {
        zip.start_file(format!("archive/data/{name}"), opts)
            .expect("entry");
        zip.write_all(bytes).expect("write");
    }
    zip.finish().expect("finish");
}

/// A pickle calling `os.system("echo pwned")` — the classic payload.
const OS_SYSTEM: &[u8] =
    b"\x80\x02cos\nsystem\nq\x00X\x0a\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03.";

#[test]
fn pickle_calling_anything_but_a_tensor_rebuild_is_refused() {
    let err = parse_state_dict(OS_SYSTEM).expect_err("must refuse");
    assert_eq!(
        err,
        PickleError::Refused {
            module: "os".into(),
            name: "system".into(),
            offset: 2
        }
    );
    // The same callable through STACK_GLOBAL, and builtins.eval.
    let stack_global = b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93X\x01\x00\x00\x001\x85R.";
    assert!(matches!(
        parse_state_dict(stack_global),
        Err(PickleError::Refused { ref module, ref name, .. }) if module == "builtins" && name == "eval"
    ));
    // Object-building opcodes (INST 'i', OBJ 'o', NEWOBJ 0x81) are refused as opcodes.
    for op in [b'i', b'o', 0x81] {
        let p = [0x80, 2, b'(', op, b'.'];
        assert!(
            matches!(parse_state_dict(&p), Err(PickleError::Opcode { .. })),
            "opcode {op:#x}"
        );
    }
}

#[test]
fn hostile_checkpoint_fails_the_import_command_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pt = dir.path().join("evil.pt");
    write_zip(&pt, OS_SYSTEM, &[]);
    assert!(matches!(
        read_checkpoint(&pt),
        Err(PickleError::Refused { .. })
    ));
    let out_path = dir.path().join("out.inn.safetensors");
    let out = Command::new(common::bin())
        .arg("import-torchintegral")
        .arg(&pt)
        .arg("--manifest")
        .arg(common::fixture("mnist_example.manifest.json"))
        .arg("-o")
        .arg(&out_path)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to load") && err.contains("os.system"),
        "{err}"
    );
    assert!(!out_path.exists(), "nothing written");
}

/// Memo references are shared, not copied: a "billion laughs" pickle (each list holds the
/// previous one twice, 60 levels deep) parses instantly and is refused as not a state_dict.
#[test]
fn nested_memo_references_do_not_blow_up() {
    let mut p = vec![0x80, 2, b']', b'q', 0];
    for i in 0..60_u8 {
        // MARK, GET i, GET i, LIST? (no LIST opcode here: use EMPTY_LIST + APPENDS)
        p.extend([b']', b'(', b'h', i, b'h', i, b'e', b'q', i + 1]);
    }
    p.push(b'.');
    let err = parse_state_dict(&p).expect_err("not a dict");
    assert!(matches!(err, PickleError::Malformed(_)), "{err}");
}

/// A record claiming a 10^12-element tensor is refused before any allocation.
#[test]
fn absurd_tensor_shapes_in_a_checkpoint_are_refused() {
    // {'w': _rebuild_tensor_v2(storage('0', 10 floats), 0, (1000000, 1000000), (1000000, 1), False, OrderedDict())}
    let mut p = b"\x80\x02ccollections\nOrderedDict\n)RX\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\ntQK\x00".to_vec();
    p.extend(b"(J\x40\x42\x0f\x00J\x40\x42\x0f\x00t(J\x40\x42\x0f\x00K\x01t\x89ccollections\nOrderedDict\n)RtRs.");
    let dir = tempfile::tempdir().expect("tempdir");
    let pt = dir.path().join("huge.pt");
    write_zip(&pt, &p, &[("0", vec![0; 40])]);
    let err = read_checkpoint(&pt).expect_err("refused");
    assert!(err.to_string().contains("exceeds the limit"), "{err}");
    // The same record with a sane shape reaching past its storage is refused too.
    let mut q = p.clone();
    let at = q
        .windows(4)
        .position(|w| w == b"J\x40\x42\x0f")
        .expect("shape");
    q.splice(at..at + 5, *b"K\x04");
    let at = q
        .windows(4)
        .position(|w| w == b"J\x40\x42\x0f")
        .expect("shape");
    q.splice(at..at + 5, *b"K\x04");
    write_zip(&pt, &q, &[("0", vec![0; 40])]);
    let err = read_checkpoint(&pt).expect_err("refused");
    assert!(err.to_string().contains("view reaches"), "{err}");
}

#[test]
fn truncated_and_corrupt_native_files_are_errors() {
    let bytes = assets::DEMO_MODEL;
    for cut in [0, 7, 8, 100, bytes.len() / 2, bytes.len() - 1] {
        let err = native::from_bytes(&bytes[..cut], "cut").expect_err("truncated");
        assert!(err.to_string().starts_with("cut: "), "{err}");
    }
    // A header that claims a huge tensor.
    let header = br#"{"params/x":{"dtype":"F32","shape":[1000000,1000000],"data_offsets":[0,4]}}"#;
    let mut f = (header.len() as u64).to_le_bytes().to_vec();
    f.extend(header);
    f.extend([0; 4]);
    assert!(native::from_bytes(&f, "huge").is_err());
    // Garbage and a plain (non-innscope) safetensors file.
    assert!(native::from_bytes(b"not a model at all", "junk").is_err());
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = dir.path().join("plain.safetensors");
    let model = assets::demo_model();
    let plan = model.resolve(&model.default_plan()).expect("plan");
    innscope::model::export::export(
        &model,
        &plan,
        &model.discretize(&plan).expect("discretizes"),
        &plain,
    )
    .expect("export");
    let err = native::read(&plain).expect_err("not an INN");
    assert!(err.to_string().contains("not an INN"), "{err}");
}

#[test]
fn command_line_reports_bad_files_with_a_non_zero_exit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cut = dir.path().join("cut.inn.safetensors");
    std::fs::write(&cut, &assets::DEMO_MODEL[..assets::DEMO_MODEL.len() / 3]).expect("write");
    for args in [
        vec!["info".to_string(), cut.display().to_string()],
        vec![
            "info".to_string(),
            "/no/such/file.inn.safetensors".to_string(),
        ],
        vec![
            "predict".to_string(),
            "--sizes".to_string(),
            "0=1000000000000".to_string(),
            "assets/samples/1_Trouser_t10k-2.png".to_string(),
        ],
        vec![
            "predict".to_string(),
            "--sizes".to_string(),
            "9=4".to_string(),
            "assets/samples/1_Trouser_t10k-2.png".to_string(),
        ],
        vec![
            "predict".to_string(),
            "--resolution".to_string(),
            "0".to_string(),
            "assets/samples/1_Trouser_t10k-2.png".to_string(),
        ],
        vec!["predict".to_string(), "Cargo.toml".to_string()],
        vec![
            "train".to_string(),
            "--data".to_string(),
            "/no/such/dir".to_string(),
            "-o".to_string(),
            dir.path().join("t.inn.safetensors").display().to_string(),
        ],
        vec![
            "train".to_string(),
            "--widths".to_string(),
            "8,1".to_string(),
            "-o".to_string(),
            dir.path().join("t.inn.safetensors").display().to_string(),
        ],
        vec![
            "sweep".to_string(),
            "--twin".to_string(),
            cut.display().to_string(),
        ],
    ] {
        let out = Command::new(common::bin())
            .args(&args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            err.starts_with("error: ") && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn nan_weights_are_refused_on_load_and_on_import() {
    let mut model = assets::torchintegral_model();
    model.tensors.get_mut("conv_2.weight").expect("param")[[3, 2, 1, 1]] = f32::NAN;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nan.inn.safetensors");
    native::write(&model, &path).expect("writing is not validation");
    let err = native::read(&path).expect_err("NaN refused");
    assert!(
        err.to_string().contains("conv_2.weight") && err.to_string().contains("NaN"),
        "{err}"
    );

    let mut state = read_checkpoint(&common::fixture("mnist_example.pt")).expect("reads");
    state.get_mut("model.linear.bias").expect("key")[[4]] = f32::INFINITY;
    let manifest =
        std::fs::read_to_string(common::fixture("mnist_example.manifest.json")).expect("manifest");
    let err = torchintegral::from_parts(&manifest, &state, serde_json::Value::Null)
        .expect_err("inf refused");
    assert!(err.to_string().contains("linear.bias"), "{err}");
}

#[test]
fn manifests_with_wrong_shapes_are_refused() {
    let state = read_checkpoint(&common::fixture("mnist_example.pt")).expect("reads");
    let text =
        std::fs::read_to_string(common::fixture("mnist_example.manifest.json")).expect("manifest");
    let mut manifest: serde_json::Value = serde_json::from_str(&text).expect("json");
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut m = manifest.clone();
        f(&mut m);
        torchintegral::from_parts(&m.to_string(), &state, serde_json::Value::Null)
            .expect_err("refused")
            .to_string()
    };
    // conv_1 with 2 input channels: the stored control values have 9 planes, not 18.
    let err = edit(&|m| m["parameters"][0]["full_size_shape"] = serde_json::json!([16, 2, 3, 3]));
    assert!(
        err.contains("conv_1.weight") && err.contains("implies"),
        "{err}"
    );
    // An absurd shape: refused before anything of that size exists.
    let err = edit(&|m| {
        m["parameters"][0]["full_size_shape"] = serde_json::json!([1_000_000, 1_000_000, 3, 3]);
    });
    assert!(err.contains("exceeds the limit"), "{err}");
    // A group whose original size disagrees with its members.
    let err = edit(&|m| m["groups"][0]["original_size"] = serde_json::json!(17));
    assert!(err.contains("group 0"), "{err}");
    // A linear layer that no longer matches the features reaching it.
    let err = edit(&|m| {
        m["parameters"][6]["full_size_shape"] = serde_json::json!([10, 32]);
        m["groups"][1]["members"] = serde_json::json!([["conv_3.weight", 0], ["conv_3.bias", 0]]);
        m["parameters"][6]["continuous_dims"] = serde_json::json!([]);
        m["parameters"][6]["group_ids"] = serde_json::json!([]);
        m["parameters"][6]["quadrature"] = serde_json::json!(false);
    });
    assert!(err.contains("linear.weight"), "{err}");
    manifest["graph"][1]["module"] = serde_json::json!("conv_9");
    let err = torchintegral::from_parts(&manifest.to_string(), &state, serde_json::Value::Null)
        .expect_err("refused")
        .to_string();
    assert!(err.contains("conv_9"), "{err}");
}

/// The June-2023 key layout (`...weight.0.weight_function.values`) with a `module.` prefix
/// imports to the same model.
#[test]
fn june_2023_key_layout_imports_the_same_model() {
    let state = read_checkpoint(&common::fixture("mnist_example.pt")).expect("reads");
    let renamed = state
        .iter()
        .map(|(k, v)| {
            let k = k
                .replace("model.", "module.")
                .replace(".original", ".0.weight_function.values");
            (k, v.clone())
        })
        .collect();
    let mut text =
        std::fs::read_to_string(common::fixture("mnist_example.manifest.json")).expect("manifest");
    text = text.replace("\"state_dict_key\"", "\"unused_key\"");
    let old = torchintegral::from_parts(
        &std::fs::read_to_string(common::fixture("mnist_example.manifest.json")).expect("manifest"),
        &state,
        serde_json::Value::Null,
    )
    .expect("current layout");
    let june =
        torchintegral::from_parts(&text, &renamed, serde_json::Value::Null).expect("june layout");
    assert_eq!(june.tensors, old.tensors);
    assert_eq!(june.doc.params, old.doc.params);
}

/// `train --resume` with a control ratio outside (0, 1] stops with an error before touching
/// the saved run.
#[test]
fn a_bad_control_ratio_on_resume_leaves_the_saved_run_alone() {
    let dir = common::training_data();
    let saved = dir.path().join("run.inn.safetensors");
    std::fs::write(&saved, assets::DEMO_MODEL).expect("write");
    for ratio in ["1.5", "0", "-1"] {
        let out = Command::new(common::bin())
            .args(["train", "--resume", "--epochs", "100"])
            .arg(format!("--control-ratio={ratio}"))
            .arg("--data")
            .arg(dir.path())
            .arg("-o")
            .arg(&saved)
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "ratio {ratio} accepted");
        assert!(err.contains("control ratio"), "{ratio}: {err}");
        assert_eq!(
            std::fs::read(&saved).expect("read"),
            assets::DEMO_MODEL,
            "ratio {ratio} changed the file"
        );
    }
}

/// `train --init` from a file that is not a model, or whose parameters fit nothing in the new
/// network, stops with an error and writes no output.
#[test]
fn a_warm_start_from_a_file_that_does_not_fit_writes_nothing() {
    let dir = common::training_data();
    let garbage = dir.path().join("garbage.inn.safetensors");
    std::fs::write(&garbage, b"not a model").expect("write");
    let demo = dir.path().join("demo.inn.safetensors");
    std::fs::write(&demo, assets::DEMO_MODEL).expect("write");
    let out_path = dir.path().join("new.inn.safetensors");
    // The demo's widths are 32,64,128: at 5,6,7 nothing has the same shape.
    for (init, needle) in [(&garbage, "--init: reading"), (&demo, "no parameter")] {
        let out = Command::new(common::bin())
            .args([
                "train", "--epochs", "1", "--limit", "64", "--widths", "5,6,7",
            ])
            .arg("--init")
            .arg(init)
            .arg("--data")
            .arg(dir.path())
            .arg("-o")
            .arg(&out_path)
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{} accepted", init.display());
        assert!(err.contains(needle), "{err}");
        assert!(!out_path.exists(), "{} left an output", init.display());
    }
}
