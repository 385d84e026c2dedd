//! The deterministic gradient scatter of the backward kernels: glue for `shaders/scatter.wgsl`.
//!
//! A backward op that sends gradients from pixels to shared inputs (vertices, texels) owns an
//! [`Accumulator`] for that input, finds the launch's largest contribution (a [`MEASURE`] pass
//! of its kernel, or [`Accumulator::measure_values`] of the output gradient), runs its kernel's
//! [`ACCUMULATE`] pass, and [`Accumulator::decode`]s the f32 gradient. The sums are exact in fixed point,
//! so the result does not depend on scheduling or on the workgroup shape; the only rounding is
//! each contribution's, to a quantum of at most 2^(headroom - 61) times the launch's largest
//! contribution, where 2^headroom bounds the contributions one address receives: 2^-39 at 512²
//! batch 4.

use burn::backend::wgpu::CubeTensor;
use burn::tensor::{DType, Shape};

use super::kernel::{self, Launch, WgslKernel, kernel_params};

/// The shader whose prelude every scattering kernel includes.
pub(super) const LIBRARY: &str = include_str!("../../shaders/scatter.wgsl");

const CLEAR: WgslKernel<ScatterParams> = WgslKernel::new(LIBRARY, "scatter_clear", (64, 1));
const DECODE: WgslKernel<ScatterParams> = WgslKernel::new(LIBRARY, "scatter_decode", (64, 1));
const EXTENT: WgslKernel<ScatterParams> = WgslKernel::new(LIBRARY, "scatter_extent", (64, 1));

/// The passes of a scattering kernel (`SCATTER_PASS` in the shader).
pub(super) const MEASURE: u32 = 0;
pub(super) const ACCUMULATE: u32 = 1;
pub(super) const SKIP: u32 = 2;

/// Words per accumulated address: low and high word of the sum, non-finite flag.
const WORDS_PER_ADDRESS: usize = 3;
/// The state words in front of the scratch and the sums (`EXTENT`, `HEADROOM`, `SUMS`).
const STATE_WORDS: usize = 3;

kernel_params! {
    /// The accumulator buffer as `scatter_clear` and `scatter_decode` read it.
    pub(crate) struct ScatterParams {
        /// Words of the accumulator buffer (for `scatter_extent`: values to measure).
        words: u32,
        /// Invocations per dispatch row (see [`kernel::linear_groups`]).
        row: u32,
        /// log2 of the most contributions one address may receive in the launch.
        headroom: u32,
        /// The first sum word (after the state words and the scratch).
        base: u32,
    }
}

/// Fixed-point accumulators for the gradient of one input of `shape`, on the device, with the
/// launch's state words and an optional scratch for the kernel, in one buffer (WebGPU allows 8
/// storage buffers per kernel by default).
pub(super) struct Accumulator {
    /// u32 words (viewed as f32 by cubecl; the kernels reinterpret them): state, scratch, three
    /// words per address.
    pub words: CubeTensor,
    shape: Shape,
    params: ScatterParams,
}

impl Accumulator {
    /// Zeroed accumulators for `shape` on the template's device, for a launch in which no
    /// address receives more than `max_contributions` contributions.
    pub fn new(template: &CubeTensor, shape: Shape, max_contributions: usize) -> Self {
        Self::with_scratch(template, shape, max_contributions, 0)
    }

    /// [`Accumulator::new`] with `scratch` zeroed words for the kernel between its passes.
    pub fn with_scratch(
        template: &CubeTensor,
        shape: Shape,
        max_contributions: usize,
        scratch: usize,
    ) -> Self {
        let base = STATE_WORDS + scratch;
        let words = base + shape.num_elements() * WORDS_PER_ADDRESS;
        let (groups, row) = kernel::linear_groups(words, CLEAR.workgroup.0);
        let params = ScatterParams {
            words: words as u32,
            row,
            headroom: headroom(max_contributions),
            base: base as u32,
        };
        let client = &template.client;
        let accumulator = Self {
            words: CubeTensor::new_contiguous(
                client.clone(),
                template.device.clone(),
                Shape::new([words]),
                client.empty(words * 4),
                DType::F32,
            ),
            shape,
            params,
        };
        Launch::new(CLEAR, template)
            .arg(&accumulator.words)
            .run(&params, groups);
        accumulator
    }

    /// Takes the launch's extent from `values`, for kernels whose contributions are those
    /// values times weights in [0, 1] (they then need no measure pass).
    pub fn measure_values(&self, values: &CubeTensor) {
        let n = values.meta.shape().num_elements();
        let (groups, row) = kernel::linear_groups(n, EXTENT.workgroup.0);
        Launch::new(EXTENT, values)
            .arg(values)
            .arg(&self.words)
            .run(
                &ScatterParams {
                    words: n as u32,
                    row,
                    ..self.params
                },
                groups,
            );
    }

    /// The f32 gradient: each address's sum, NaN where a contribution was not finite.
    pub fn decode(self) -> CubeTensor {
        let out = kernel::empty(&self.words, self.shape.clone());
        let addresses = self.shape.num_elements();
        let (groups, row) = kernel::linear_groups(addresses, DECODE.workgroup.0);
        Launch::new(DECODE, &self.words)
            .arg(&self.words)
            .arg(&out)
            .run(&ScatterParams { row, ..self.params }, groups);
        out
    }
}

/// Runs a scatter whose contributions are the output gradient times weights in [0, 1]
/// (interpolate, texture): the launch's extent comes from `grad_out` alone, and
/// `launch(pass, first channel, channels, accumulator)` runs the op's kernel once per group of
/// at most `per_launch` of the gradient's `channels` (the first launch also writes the op's
/// per-pixel gradient). Returns the gradient of `shape`; with `shape` None the gradient is not
/// needed: one SKIP launch writes the per-pixel gradient alone and an empty tensor (shape `[0]`)
/// is returned.
pub(super) fn weighted(
    template: &CubeTensor,
    shape: Option<Shape>,
    grad_out: &CubeTensor,
    max_contributions: usize,
    channels: usize,
    per_launch: usize,
    mut launch: impl FnMut(u32, usize, usize, &Accumulator),
) -> CubeTensor {
    let Some(shape) = shape else {
        // A one-address accumulator, bound but untouched.
        let unused = Accumulator::new(template, Shape::new([1]), max_contributions);
        launch(SKIP, 0, channels.min(per_launch), &unused);
        return kernel::empty(template, Shape::new([0]));
    };
    let accumulator = Accumulator::new(template, shape, max_contributions);
    accumulator.measure_values(grad_out);
    for offset in (0..channels).step_by(per_launch) {
        launch(
            ACCUMULATE,
            offset,
            (channels - offset).min(per_launch),
            &accumulator,
        );
    }
    accumulator.decode()
}

/// The CPU references' f64 sums, rounded once to f32.
pub(super) fn to_f32(sums: Vec<f64>) -> Vec<f32> {
    sums.into_iter().map(|x| x as f32).collect()
}

/// log2 of a bound on the contributions one address receives, rounded up.
fn headroom(max_contributions: usize) -> u32 {
    (max_contributions.max(2) as u64)
        .next_power_of_two()
        .trailing_zeros()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headroom_covers_the_contributions() {
        assert_eq!(headroom(0), 1);
        assert_eq!(headroom(2), 1);
        assert_eq!(headroom(3), 2);
        assert_eq!(headroom(1 << 20), 20);
        assert_eq!(headroom((1 << 20) + 1), 21);
        // 512² batch 4, four contributions per pixel: a quantum of 2^-39 of the extent.
        assert_eq!(headroom(4 * 4 * 512 * 512), 22);
    }
}
