// What a compute shader needs at least to re-discretize: read λ and write the discrete
// weights, a value for a value, nothing computed (dispatched by `src/cli/bench.rs`). Beside
// (a) on the GPU's clock it tells how much of (a)'s time is the adapter's own cost of moving
// values through a shader: on a software adapter that cost is far above the memory's.

// Sizes in four-word units: λ copied, weights written (the excess as zeros), and the units
// between one invocation's successive units (every invocation of the dispatch).
struct StreamParams {
    copied: u32,
    written: u32,
    stride: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: StreamParams;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(64)
fn stream(@builtin(global_invocation_id) gid: vec3<u32>) {
    for (var i = gid.x; i < params.written; i = i + params.stride) {
        if (i < params.copied) {
            dst[i] = src[i];
        } else {
            dst[i] = vec4<f32>(0.0);
        }
    }
}
