//! A differentiable 2-D convolution as im2col + matrix product, the conv2d room's training path.
//!
//! candle's own `conv2d` is fine for inference, but its backward pass runs a transposed
//! convolution as a scalar loop that took most of a training step. Here the convolution is
//! `W (C_out, C·kh·kw) × cols (C·kh·kw, N·H·W)`: forward and both gradients are matrix products
//! (candle's gemm), and the only hand-written parts are `Im2Col` and its adjoint `Col2Im`,
//! plain gathers and scatters.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

/// Geometry of one unfolding: input `(N, C, H, W)`, kernel `kh × kw`, stride 1, zero padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Geometry {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    pad_h: usize,
    pad_w: usize,
}

impl Geometry {
    fn out_h(self) -> usize {
        self.h + 2 * self.pad_h + 1 - self.kh
    }

    fn out_w(self) -> usize {
        self.w + 2 * self.pad_w + 1 - self.kw
    }

    fn rows(self) -> usize {
        self.c * self.kh * self.kw
    }

    fn cols(self) -> usize {
        self.n * self.out_h() * self.out_w()
    }

    /// For row `(ch, i, j)` and output pixel `(b, y, x)`: the input index, if inside.
    fn visit(self, row: usize, mut f: impl FnMut(usize, usize)) {
        let (ho, wo) = (self.out_h(), self.out_w());
        let ch = row / (self.kh * self.kw);
        let i = (row / self.kw) % self.kh;
        let j = row % self.kw;
        for b in 0..self.n {
            let plane = (b * self.c + ch) * self.h * self.w;
            for y in 0..ho {
                let Some(iy) = (y + i).checked_sub(self.pad_h).filter(|&v| v < self.h) else {
                    continue;
                };
                let base = (b * ho + y) * wo;
                for x in 0..wo {
                    if let Some(ix) = (x + j).checked_sub(self.pad_w).filter(|&v| v < self.w) {
                        f(base + x, plane + iy * self.w + ix);
                    }
                }
            }
        }
    }
}

/// `(N, C, H, W)` → `(C·kh·kw, N·Ho·Wo)`.
struct Im2Col(Geometry);

/// The adjoint of [`Im2Col`]: `(C·kh·kw, N·Ho·Wo)` → `(N, C, H, W)`, overlapping taps summed.
struct Col2Im(Geometry);

fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [f32]> {
    let CpuStorage::F32(values) = storage else {
        bail!("im2col: only f32 tensors are supported")
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("im2col: the input must be contiguous")
    };
    Ok(&values[start..end])
}

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "im2col"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let src = contiguous_f32(storage, layout)?;
        let cols = g.cols();
        let mut out = vec![0.0_f32; g.rows() * cols];
        out.par_chunks_mut(cols).enumerate().for_each(|(row, dst)| {
            g.visit(row, |o, i| dst[o] = src[i]);
        });
        Ok((CpuStorage::F32(out), Shape::from((g.rows(), cols))))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(
            grad_res.contiguous()?.apply_op1_no_bwd(&Col2Im(self.0))?,
        ))
    }
}

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "col2im"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let src = contiguous_f32(storage, layout)?;
        let (cols, taps) = (g.cols(), g.kh * g.kw);
        let plane = g.h * g.w;
        let mut out = vec![0.0_f32; g.n * g.c * plane];
        // One task per input channel: its rows of `cols` scatter only into its own planes.
        let mut per_channel: Vec<Vec<f32>> = (0..g.c)
            .into_par_iter()
            .map(|ch| {
                let mut acc = vec![0.0_f32; g.n * plane];
                for row in ch * taps..(ch + 1) * taps {
                    let line = &src[row * cols..(row + 1) * cols];
                    g.visit(row, |o, i| {
                        let b = i / (g.c * plane);
                        acc[b * plane + i % plane] += line[o];
                    });
                }
                acc
            })
            .collect();
        for (ch, acc) in per_channel.iter_mut().enumerate() {
            for b in 0..g.n {
                let dst = (b * g.c + ch) * plane;
                out[dst..dst + plane].copy_from_slice(&acc[b * plane..(b + 1) * plane]);
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((g.n, g.c, g.h, g.w))))
    }
}

/// Convolution of `x (N, C, H, W)` with `w (C_out, C, kh, kw)`, stride 1, zero padding
/// `pad`, no groups or dilation; differentiable in both arguments.
///
/// # Errors
/// Shapes that do not fit.
pub fn conv2d(x: &Tensor, w: &Tensor, pad: [usize; 2]) -> Result<Tensor> {
    let (n, c, h, wd) = x.dims4()?;
    let (c_out, c_in, kh, kw) = w.dims4()?;
    if c_in != c || h + 2 * pad[0] < kh || wd + 2 * pad[1] < kw {
        bail!(
            "conv2d: input {:?} does not fit kernel {:?} with padding {pad:?}",
            x.dims(),
            w.dims()
        );
    }
    let g = Geometry {
        n,
        c,
        h,
        w: wd,
        kh,
        kw,
        pad_h: pad[0],
        pad_w: pad[1],
    };
    let cols = x.contiguous()?.apply_op1(Im2Col(g))?;
    let y = w.reshape((c_out, g.rows()))?.matmul(&cols)?;
    y.reshape((c_out, n, g.out_h(), g.out_w()))?
        .transpose(0, 1)?
        .contiguous()
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;

    fn ramp(shape: &[usize], k: f32) -> Tensor {
        let n: usize = shape.iter().product();
        #[expect(clippy::cast_precision_loss, reason = "small test tensors")]
        let v: Vec<f32> = (0..n).map(|i| ((i as f32) * k).sin()).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).expect("shape")
    }

    /// The forward pass and both gradients equal candle's own convolution (an independent
    /// implementation), with padding.
    #[test]
    fn matches_candle_conv_and_its_gradients() {
        let x = Var::from_tensor(&ramp(&[2, 3, 7, 6], 0.37)).expect("var");
        let w = Var::from_tensor(&ramp(&[4, 3, 5, 3], 0.91)).expect("var");
        let mine = conv2d(x.as_tensor(), w.as_tensor(), [2, 1]).expect("conv");
        let theirs = x
            .as_tensor()
            .pad_with_zeros(2, 2, 2)
            .and_then(|t| t.pad_with_zeros(3, 1, 1))
            .and_then(|t| t.conv2d(w.as_tensor(), 0, 1, 1, 1))
            .expect("conv");
        assert_eq!(mine.dims(), theirs.dims());
        let diff = |a: &Tensor, b: &Tensor| -> f32 {
            (a - b)
                .and_then(|d| d.abs())
                .and_then(|d| d.flatten_all())
                .and_then(|d| d.max(0))
                .and_then(|d| d.to_scalar::<f32>())
                .expect("diff")
        };
        assert!(diff(&mine, &theirs) < 1e-5);
        // A loss that weights every output differently, so the gradients are not symmetric.
        let weights = ramp(mine.dims(), 0.13);
        let loss = |y: &Tensor| (y * &weights).and_then(|t| t.sum_all()).expect("loss");
        let g_mine = loss(&mine).backward().expect("backward");
        let g_theirs = loss(&theirs).backward().expect("backward");
        for v in [&x, &w] {
            let a = g_mine.get(v.as_tensor()).expect("gradient");
            let b = g_theirs.get(v.as_tensor()).expect("gradient");
            assert!(diff(a, b) < 1e-4, "gradient differs by {}", diff(a, b));
        }
    }
}
