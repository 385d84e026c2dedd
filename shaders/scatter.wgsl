// Deterministic gradient scatter: fixed-point sums with integer atomics.
//
// Why: WebGPU has no float atomics. A compare-and-swap loop on the float's bits serialises every
// thread that hits one address (the cost grows with the square of the contributions per address
// on a real GPU), and float addition in scheduling order gives different bits run after run.
// Integer addition is associative: every contribution is rounded once to a multiple of a quantum
// 2^-k, and 64-bit sums of those integers are exact, whatever the order of the adds and however
// the work is split into workgroups.
//
// The scale needs the launch's largest |contribution| first, kept in the word EXTENT
// (atomicMax on the bit pattern of a non-negative float, which orders like the value; only by
// invocations that hold a new maximum). Where a contribution is the output gradient times a weight in [0, 1] (interpolate,
// texture) `scatter_extent` takes it from the output gradient alone; elsewhere (rasterize,
// antialias) the scattering kernel runs a MEASURE pass first that computes every contribution.
// SCATTER_PASS, a template constant, says which pass a kernel is compiled for:
// - MEASURE: contributions only go into the extent;
// - ACCUMULATE: begin_accumulate() derives k from that extent and from the word HEADROOM
//   (log2 of the most contributions one address can receive in the launch, written by the host),
//   such that no address can overflow a signed 64-bit sum; each contribution is rounded to a
//   Fixed, in texture summed over the workgroup first (in fixed point, exact), and added to
//   its address's accumulator with two atomicAdds (low word, then the carry into the high
//   word);
// - SKIP: the scattered gradient is not needed; only per-pixel outputs are written.
// The bound on the extent may be off by a factor of two (weights up to 2): k leaves that room.
// `scatter_decode` turns each accumulator back into f32; an address that received a non-finite
// contribution decodes to NaN (the measure pass leaves non-finite values out of the extent, so
// one NaN never spoils the scale of the others).
//
// This file's prelude is prepended to the kernels that scatter (src/render/kernel.rs); each of
// them declares `accumulators` among its own bindings: one buffer (WebGPU allows only 8 storage
// buffers per kernel by default) of u32 words laid out as
//   [EXTENT, HEADROOM, SUMS, scratch words..., sums: three words per address (low, high,
//    non-finite flag)]
// where the word SUMS holds the index of the first sum word (the scratch is the kernel's own:
// the antialias kernel counts each pixel's sends there between its passes).

const SCATTER_MEASURE: u32 = 0u;
const SCATTER_ACCUMULATE: u32 = 1u;
const SCATTER_SKIP: u32 = 2u;
const SCATTER_PASS: u32 = {{ scatter_pass }}u;
// Indices of the launch's state words in `accumulators`, and of its first scratch word.
const EXTENT: u32 = 0u;
const HEADROOM: u32 = 1u;
const SUMS: u32 = 2u;
const SCRATCH: u32 = 3u;
const TWO_32: f32 = 4294967296.0;

// A contribution in fixed point: x low word, y high word (two's complement), z 1 if non-finite.
alias Fixed = vec3<u32>;

// The largest |contribution| this invocation has noted, as bits (the measure pass).
var<private> lane_extent: u32;
// 2^k, the reciprocal of this launch's quantum, and the first sum word, set by
// begin_accumulate().
var<private> scatter_scale: f32;
var<private> scatter_base: u32;

fn scatter_finite(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
}

// Measure pass: folds |value| into this invocation's extent.
fn note_extent(value: f32) {
    if value != 0.0 && scatter_finite(value) {
        lane_extent = max(lane_extent, bitcast<u32>(abs(value)));
    }
}

// Measure pass, after this invocation's notes: raises the launch's extent. The launch's extent is
// read first, so that only the few invocations holding a new maximum write it (no barrier, no
// contention once the maximum is found).
fn publish_extent() {
    if lane_extent > atomicLoad(&accumulators[EXTENT]) {
        atomicMax(&accumulators[EXTENT], lane_extent);
    }
}

// The quantum's exponent: the launch's largest |contribution| M is below 2^(e + 1), and at most
// 2^HEADROOM contributions reach one address, so every sum stays below 2^62 in units of 2^-k.
// Clamped so that 2^k and 2^-k are normal floats; the clamp at 126 only binds for extents below
// 2^-65 (their contributions then lose precision, never range).
fn quantum_exponent() -> i32 {
    let e = i32((atomicLoad(&accumulators[EXTENT]) >> 23u) & 0xffu) - 127;
    let headroom = i32(atomicLoad(&accumulators[HEADROOM]));
    return clamp(61 - headroom - e, -126, 126);
}

// 2^n as a float, exactly, for n in [-126, 127]. (A multiplication by it is exact where ldexp
// would be, and ldexp is slow on some software adapters.)
fn power_of_two(n: i32) -> f32 {
    return bitcast<f32>(u32(n + 127) << 23u);
}

fn begin_accumulate() {
    scatter_scale = power_of_two(quantum_exponent());
    scatter_base = atomicLoad(&accumulators[SUMS]);
}

// Two's complement negation of a 64-bit (low, high) pair.
fn negate64(v: vec2<u32>) -> vec2<u32> {
    let low = ~v.x + 1u;
    return vec2<u32>(low, ~v.y + select(0u, 1u, low == 0u));
}

// Four contributions in fixed point at once (vector operations, no per-component loops): low and
// high words, and 1 where a contribution is not finite.
struct Fixed4 {
    low: vec4<u32>,
    high: vec4<u32>,
    nonfinite: vec4<u32>,
}

// Rounds each component to the nearest multiple of the quantum.
fn to_fixed4(value: vec4<f32>) -> Fixed4 {
    let exponent = (bitcast<vec4<u32>>(value) & vec4<u32>(0x7f800000u));
    let finite = exponent != vec4<u32>(0x7f800000u);
    let q = round(select(vec4<f32>(0.0), value, finite) * scatter_scale);
    let a = abs(q);
    let high = floor(a * (1.0 / TWO_32));
    let low = vec4<u32>(a - high * TWO_32);
    let negated_low = ~low + vec4<u32>(1u);
    let negated_high = ~vec4<u32>(high) + select(vec4<u32>(0u), vec4<u32>(1u), negated_low == vec4<u32>(0u));
    let negative = q < vec4<f32>(0.0);
    return Fixed4(
        select(low, negated_low, negative),
        select(vec4<u32>(high), negated_high, negative),
        select(vec4<u32>(1u), vec4<u32>(0u), finite),
    );
}

fn fixed4_add(a: Fixed4, b: Fixed4) -> Fixed4 {
    let low = a.low + b.low;
    let carry = select(vec4<u32>(0u), vec4<u32>(1u), low < a.low);
    return Fixed4(low, a.high + b.high + carry, a.nonfinite | b.nonfinite);
}

// Component i of a Fixed4.
fn fixed4_component(v: Fixed4, i: u32) -> Fixed {
    return vec3<u32>(v.low[i], v.high[i], v.nonfinite[i]);
}

// The non-finite flags of a Fixed4 as four bits, and back.
fn nonfinite_bits(v: Fixed4) -> u32 {
    return v.nonfinite.x | (v.nonfinite.y << 1u) | (v.nonfinite.z << 2u) | (v.nonfinite.w << 3u);
}

fn nonfinite_from_bits(bits: u32) -> vec4<u32> {
    return (vec4<u32>(bits) >> vec4<u32>(0u, 1u, 2u, 3u)) & vec4<u32>(1u);
}

// Adds a fixed-point sum to the accumulator of `address`.
fn scatter_fixed(address: u32, v: Fixed) {
    let word = scatter_base + address * 3u;
    if v.z != 0u {
        atomicOr(&accumulators[word + 2u], 1u);
        return;
    }
    if v.x == 0u && v.y == 0u {
        return;
    }
    let old = atomicAdd(&accumulators[word], v.x);
    // The low word wrapped exactly when its new value is below the old one.
    let high = v.y + select(0u, 1u, old + v.x < old);
    if high != 0u {
        atomicAdd(&accumulators[word + 1u], high);
    }
}

//#kernel scatter_clear
// Zeroes the sums and the scratch (one invocation per word) and sets the launch's state words.
@group(0) @binding(1) var<storage, read_write> accumulators: array<atomic<u32>>;

@compute @workgroup_size({{ wg_x }}, {{ wg_y }}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.y * params.row + gid.x;
    if i >= SCRATCH && i < params.words {
        atomicStore(&accumulators[i], 0u);
    }
    if i == 0u {
        atomicStore(&accumulators[EXTENT], 0u);
        atomicStore(&accumulators[HEADROOM], params.headroom);
        atomicStore(&accumulators[SUMS], params.base);
    }
}

//#kernel scatter_extent
// The extent of a launch whose contributions are `values` (params.words of them) times weights
// in [0, 1]: one invocation per value.
@group(0) @binding(1) var<storage, read_write> values: array<f32>;
@group(0) @binding(2) var<storage, read_write> accumulators: array<atomic<u32>>;

@compute @workgroup_size({{ wg_x }}, {{ wg_y }}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.y * params.row + gid.x;
    if i < params.words {
        note_extent(values[i]);
        publish_extent();
    }
}

//#kernel scatter_decode
// One invocation per address: its 64-bit sum times 2^-k as f32, NaN if flagged.
@group(0) @binding(1) var<storage, read_write> accumulators: array<atomic<u32>>;
// The f32 results as bits: a NaN constant cannot be written as an f32 expression in WGSL.
@group(0) @binding(2) var<storage, read_write> decoded: array<u32>;

@compute @workgroup_size({{ wg_x }}, {{ wg_y }}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.y * params.row + gid.x;
    if i >= (params.words - params.base) / 3u {
        return;
    }
    let word = params.base + i * 3u;
    if atomicLoad(&accumulators[word + 2u]) != 0u {
        decoded[i] = 0x7fc00000u;
        return;
    }
    var v = vec2<u32>(atomicLoad(&accumulators[word]), atomicLoad(&accumulators[word + 1u]));
    let negative = (v.y & 0x80000000u) != 0u;
    if negative {
        v = negate64(v);
    }
    let magnitude = (f32(v.y) * TWO_32 + f32(v.x)) * power_of_two(-quantum_exponent());
    decoded[i] = bitcast<u32>(select(magnitude, -magnitude, negative));
}
