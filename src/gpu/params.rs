//! Uniform parameter blocks of the discretization kernels, laid out exactly as the WGSL structs
//! (`shaders/discretize.wgsl`; each layer's room keeps its own): `#[repr(C)]`, 4-byte fields, padded to
//! a multiple of 16 bytes. The size assertions keep both sides honest.

use bytemuck::{Pod, Zeroable};

/// `BatchParams` of `interp_batch` and `interp_rows`: which jobs of the table one dispatch
/// runs.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BatchParams {
    pub first: u32,
    pub count: u32,
    /// Workgroups of all the dispatch's jobs.
    pub groups: u32,
    /// Output rows each invocation of `interp_rows` computes (`interp_batch` ignores it).
    pub rows: u32,
}

/// One job of `interp_batch` (`J_*` in `shaders/discretize.wgsl`): interpolate a source seen
/// as `(outer, n_a, mid, n_b, inner)` along axis a, or along b then a, into
/// `(outer, m_a, mid, m_b, inner)`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Job {
    pub start: u32,
    pub total: u32,
    pub outer: u32,
    pub n_a: u32,
    pub mid: u32,
    pub n_b: u32,
    pub inner: u32,
    pub m_a: u32,
    pub m_b: u32,
    /// Tail words of the bases of axes a and b (b: [`Job::NO_AXIS`] with one axis).
    pub basis_a: u32,
    pub basis_b: u32,
    pub src: u32,
    pub dst: u32,
    pub flags: u32,
    /// Tail word of the quadrature weights, their stride and count in the output.
    pub q: u32,
    pub q_stride: u32,
    pub q_len: u32,
    pub tau: f32,
    pub area: f32,
    /// Table word where the bases and quadrature weights begin.
    pub tail: u32,
}

impl Job {
    /// `basis_b` of a job along one axis.
    pub const NO_AXIS: u32 = u32::MAX;
    /// The parameter's last job: scale and write the discrete weights.
    pub const FINAL: u32 = 2;
    /// Scale by quadrature weights and τ.
    pub const HAS_Q: u32 = 4;
    /// The quadrature runs along axis a (its weight is the output row's).
    pub const Q_ON_A: u32 = 8;
    /// The quadrature runs along axis b (its weight is the point of axis b's).
    pub const Q_ON_B: u32 = 16;
}

const _: () = {
    assert!(size_of::<BatchParams>() == 16);
    // JOB_WORDS = 20 in the shader.
    assert!(size_of::<Job>() == 80);
};

#[cfg(test)]
mod tests {
    use super::{BatchParams, Job};

    /// The field names of `struct name` in `wgsl`, in order.
    fn wgsl_fields<'a>(wgsl: &'a str, name: &str) -> Vec<&'a str> {
        let body = wgsl
            .split(&format!("struct {name} {{"))
            .nth(1)
            .and_then(|b| b.split('}').next())
            .unwrap_or_else(|| panic!("struct {name} in the shader"));
        body.lines()
            .filter_map(|l| l.trim().split(':').next())
            .filter(|n| !n.is_empty())
            .collect()
    }

    /// The shader's `BatchParams` has `BatchParams`'s fields, in its order, four bytes each.
    #[test]
    fn batch_params_read_in_the_shader_as_they_are_written() {
        let fields = ["first", "count", "groups", "rows"];
        assert_eq!(size_of::<BatchParams>(), 4 * fields.len());
        let wgsl = super::super::context::DISCRETIZE_WGSL;
        assert_eq!(wgsl_fields(wgsl, "BatchParams"), fields);
        let p = BatchParams {
            first: 1,
            count: 2,
            groups: 3,
            rows: 4,
        };
        assert_eq!(bytemuck::cast::<_, [u32; 4]>(p), [1, 2, 3, 4]);
    }

    /// The shader's `Job` has `Job`'s fields, in its order, four bytes each.
    #[test]
    fn a_job_reads_in_the_shader_as_it_is_written() {
        let fields = [
            "start", "total", "outer", "n_a", "mid", "n_b", "inner", "m_a", "m_b", "basis_a",
            "basis_b", "src", "dst", "flags", "q", "q_stride", "q_len", "tau", "area", "tail",
        ];
        assert_eq!(size_of::<Job>(), 4 * fields.len());
        let wgsl = super::super::context::DISCRETIZE_WGSL;
        assert_eq!(wgsl_fields(wgsl, "Job"), fields);
        let consts = [
            (
                "PER_INVOCATION",
                super::super::discretize::PER_INVOCATION as u32,
            ),
            ("FINAL", Job::FINAL),
            ("HAS_Q", Job::HAS_Q),
            ("Q_ON_A", Job::Q_ON_A),
            ("Q_ON_B", Job::Q_ON_B),
        ];
        for (name, value) in consts {
            let want = format!("const {name}: u32 = {value}u;");
            assert!(wgsl.contains(&want), "{want}");
        }
        let job = Job {
            tail: 7,
            ..Job::default()
        };
        let words: &[u32] = bytemuck::cast_slice(std::slice::from_ref(&job));
        assert_eq!(words[fields.len() - 1], 7, "tail is the last word");
    }
}
