//! Uniform parameter blocks of the kernels, laid out exactly as the WGSL structs
//! (`shaders/discretize.wgsl`, `shaders/forward.wgsl`): `#[repr(C)]`, 4-byte fields, padded to
//! a multiple of 16 bytes. The size assertions keep both sides honest.

use bytemuck::{Pod, Zeroable};

/// `InterpParams` of `interp_along`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct InterpParams {
    pub outer: u32,
    pub n_in: u32,
    pub n_out: u32,
    pub inner: u32,
    pub scale: Scaling,
}

/// The scaling fused into a kernel's result: `((f * q[(idx / q_stride) % q_len]) * tau)` when
/// `has_q`, then `* area`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct Scaling {
    pub has_q: u32,
    pub q_stride: u32,
    pub q_len: u32,
    pub tau: f32,
    pub area: f32,
    pub _pad: [u32; 3],
}

impl Scaling {
    /// Leaves results as they are.
    pub const NONE: Self = Self {
        has_q: 0,
        q_stride: 1,
        q_len: 1,
        tau: 1.0,
        area: 1.0,
        _pad: [0; 3],
    };
}

/// `Interp2Params` of `interp_two`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct Interp2Params {
    pub n_b: u32,
    pub m_a: u32,
    pub m_b: u32,
    pub planes: u32,
    pub scale: Scaling,
}

/// `ConvParams` of `conv2d`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct ConvParams {
    pub n: u32,
    pub cin: u32,
    pub h: u32,
    pub w: u32,
    pub cout: u32,
    pub oh: u32,
    pub ow: u32,
    pub kh: u32,
    pub kw: u32,
    pub sh: u32,
    pub sw: u32,
    pub ph: u32,
    pub pw: u32,
    pub dh: u32,
    pub dw: u32,
    pub groups: u32,
    pub replicate: u32,
    pub has_bias: u32,
    pub _pad: [u32; 2],
}

/// `LinearParams` of `linear`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct LinearParams {
    pub n: u32,
    pub fin: u32,
    pub fout: u32,
    pub has_bias: u32,
}

/// `UnaryParams` of `unary` (op 0 ReLU, 1 GELU, 2 SiLU).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct UnaryParams {
    pub len: u32,
    pub op: u32,
    pub _pad: [u32; 2],
}

/// `PoolParams` of `pool2d`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct PoolParams {
    pub n: u32,
    pub c: u32,
    pub h: u32,
    pub w: u32,
    pub oh: u32,
    pub ow: u32,
    pub kh: u32,
    pub kw: u32,
    pub sh: u32,
    pub sw: u32,
    pub ph: u32,
    pub pw: u32,
    pub is_max: u32,
    pub count_include_pad: u32,
    pub _pad: [u32; 2],
}

/// `GapParams` of `global_avg_pool`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct GapParams {
    pub n: u32,
    pub c: u32,
    pub hw: u32,
    pub _pad: u32,
}

/// `BnParams` of `batch_norm`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BnParams {
    pub n: u32,
    pub c: u32,
    pub hw: u32,
    pub eps: f32,
    pub has_weight: u32,
    pub has_bias: u32,
    pub _pad: [u32; 2],
}

/// `AddParams` of `add`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct AddParams {
    pub len: u32,
    pub _pad: [u32; 3],
}

/// `SelectParams` of `select_pixel`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct SelectParams {
    pub n: u32,
    pub c: u32,
    pub h: u32,
    pub w: u32,
    pub y: u32,
    pub x: u32,
    pub _pad: [u32; 2],
}

/// `SoftmaxParams` of `softmax`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct SoftmaxParams {
    pub rows: u32,
    pub cols: u32,
    pub _pad: [u32; 2],
}

const _: () = {
    assert!(size_of::<InterpParams>() == 48);
    assert!(size_of::<Interp2Params>() == 48);
    assert!(size_of::<ConvParams>() == 80);
    assert!(size_of::<LinearParams>() == 16);
    assert!(size_of::<UnaryParams>() == 16);
    assert!(size_of::<PoolParams>() == 64);
    assert!(size_of::<GapParams>() == 16);
    assert!(size_of::<BnParams>() == 32);
    assert!(size_of::<AddParams>() == 16);
    assert!(size_of::<SelectParams>() == 32);
    assert!(size_of::<SoftmaxParams>() == 16);
};
