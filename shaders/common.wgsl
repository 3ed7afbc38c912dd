// Helpers every layer's kernels share; prefixed to each layer's WGSL file when it is compiled.

// The invocation's index in a dispatch of 64-wide workgroups laid out in up to two dimensions
// (x first; y where more than 65 535 groups are needed).
fn flat_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * (nwg.x * 64u);
}
