//! Every WGSL file parses and validates with naga, with no GPU: a broken shader never hides
//! behind a missing adapter.

use std::path::Path;

#[test]
fn every_shader_parses_and_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("shaders/") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "wgsl") {
            continue;
        }
        let mut src = std::fs::read_to_string(&path).expect("readable");
        // A layer's kernels are compiled with common.wgsl before them.
        if src.contains("flat_index(") && !src.contains("fn flat_index") {
            src = std::fs::read_to_string(dir.join("common.wgsl")).expect("common.wgsl") + &src;
        }
        let module = naga::front::wgsl::parse_str(&src)
            .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.emit_to_string(&src)));
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::default(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        let entries: Vec<String> = module.entry_points.iter().map(|e| e.name.clone()).collect();
        checked.push((
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            entries,
        ));
    }
    checked.sort();
    let names: Vec<&str> = checked.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "activation.wgsl",
            "add.wgsl",
            "batch_norm.wgsl",
            "bench.wgsl",
            "common.wgsl",
            "conv2d.wgsl",
            "discretize.wgsl",
            "global_avg_pool.wgsl",
            "linear.wgsl",
            "pool2d.wgsl",
            "select.wgsl",
            "softmax.wgsl",
            "surface.wgsl",
            "weight_view.wgsl"
        ]
    );
    // The entry points the engine dispatches exist.
    let all: Vec<&str> = checked
        .iter()
        .flat_map(|(_, e)| e.iter().map(String::as_str))
        .collect();
    for want in [
        "stream",
        "interp_batch",
        "interp_one",
        "interp_rows",
        "conv2d",
        "linear",
        "unary",
        "pool2d",
        "global_avg_pool",
        "batch_norm",
        "add",
        "select_pixel",
        "softmax",
        "vs_main",
        "fs_main",
        "slice_range",
        "colorize",
        "channel_sums",
    ] {
        assert!(all.contains(&want), "missing entry point {want}");
    }
}
