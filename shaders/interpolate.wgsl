// Attribute interpolation over the rasterized triangles, and its backward.
//
// out[b, y, x, :] = u * A[i0] + v * A[i1] + (1 - u - v) * A[i2] for the pixel's triangle,
// zero on background. Attributes are [Ba, V, C] with Ba = 1 (shared by the batch) or B.
//
// `params` (binding 0, an `InterpolateParams` of src/render/interpolate.rs) is declared by the
// launcher, src/render/kernel.rs.

// Bindings 1-3 are shared by both kernels; each section declares the rest from 4 on.
@group(0) @binding(1) var<storage, read_write> attr: array<f32>;
@group(0) @binding(2) var<storage, read_write> rast: array<f32>;
@group(0) @binding(3) var<storage, read_write> tri: array<i32>;

fn pixel_index(b: u32, px: u32, py: u32) -> u32 {
    return (b * params.height + py) * params.width + px;
}

// Whether a rast id (triangle id + 1, 0 on background) names a triangle.
fn is_triangle_id(id: f32) -> bool {
    return id >= 1.0 && id <= f32(params.triangles);
}

// Offsets in `attr` (and in its gradient) of the first channel of triangle t's three vertices,
// for image b.
fn attribute_offsets(b: u32, t: u32) -> vec3<u32> {
    let row = select(0u, b, params.attr_batched != 0u) * params.vertices;
    let i = vec3<u32>(u32(tri[t * 3u]), u32(tri[t * 3u + 1u]), u32(tri[t * 3u + 2u]));
    return (row + i) * params.channels;
}

//#kernel interpolate_forward
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size({{ wg_x }}, {{ wg_y }}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let channels = params.channels;
    let px = gid.x;
    let py = gid.y;
    let b = gid.z;
    if px >= params.width || py >= params.height || b >= params.batch {
        return;
    }
    let pixel = pixel_index(b, px, py);
    let id = rast[pixel * 4u + 3u];
    let o = pixel * channels;
    if !is_triangle_id(id) {
        for (var ch = 0u; ch < channels; ch++) {
            out[o + ch] = 0.0;
        }
        return;
    }
    let t = u32(id) - 1u;
    let u = rast[pixel * 4u];
    let v = rast[pixel * 4u + 1u];
    let w = 1.0 - u - v;
    let a = attribute_offsets(b, t);
    for (var ch = 0u; ch < channels; ch++) {
        out[o + ch] = u * attr[a.x + ch] + v * attr[a.y + ch] + w * attr[a.z + ch];
    }
}

//#kernel interpolate_backward
// Attribute gradients are scattered in fixed point (shaders/scatter.wgsl; the launch's extent is
// taken from grad_out, as barycentrics lie in [0, 1]): each pixel adds its own contributions.
// Fixed-point sums are exact in any order, and integer atomicAdd never retries; a per-tile sum
// in workgroup memory (one scatter per triangle and tile) cost more than the atomics it saved
// (lavapipe, 512² batch 4: backward/forward 8.5 with it, 2.8 without). d(u, v) is written in
// the same pass (alone in the SKIP pass, when the attributes need no gradient).
@group(0) @binding(4) var<storage, read_write> grad_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> grad_rast: array<f32>;
@group(0) @binding(6) var<storage, read_write> accumulators: array<atomic<u32>>;

// Channels this launch scatters, from params.channel_offset on: a constant of the compiled
// kernel (src/render/kernel.rs compiles one per count), so the loop below unrolls.
const CHUNK: u32 = {{ channels }}u;

// Scatters a channel's contributions to the triangle's three corners (offsets a).
fn scatter_channel(a: vec3<u32>, ch: u32, sums: Fixed4) {
    if ch < params.channels {
        scatter_fixed(a.x + ch, fixed4_component(sums, 0u));
        scatter_fixed(a.y + ch, fixed4_component(sums, 1u));
        scatter_fixed(a.z + ch, fixed4_component(sums, 2u));
    }
}

// Writes the pixel's d(u, v).
fn write_barycentric_gradient(pixel: u32, key: u32, b: u32) {
    let channels = params.channels;
    let r = pixel * 4u;
    grad_rast[r + 2u] = 0.0;
    grad_rast[r + 3u] = 0.0;
    if key == 0u {
        grad_rast[r] = 0.0;
        grad_rast[r + 1u] = 0.0;
        return;
    }
    let a = attribute_offsets(b, key - 1u);
    let o = pixel * channels;
    var du = 0.0;
    var dv = 0.0;
    for (var ch = 0u; ch < channels; ch++) {
        let g = grad_out[o + ch];
        let x2 = attr[a.z + ch];
        du += g * (attr[a.x + ch] - x2);
        dv += g * (attr[a.y + ch] - x2);
    }
    grad_rast[r] = du;
    grad_rast[r + 1u] = dv;
}

@compute @workgroup_size({{ wg_x }}, {{ wg_y }}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let channels = params.channels;
    let b = gid.z;
    var key = 0u;
    var bary = vec3<f32>(0.0);
    var pixel = 0u;
    let inside = gid.x < params.width && gid.y < params.height && b < params.batch;
    if inside {
        pixel = pixel_index(b, gid.x, gid.y);
        let id = rast[pixel * 4u + 3u];
        if is_triangle_id(id) {
            key = u32(id);
            let u = rast[pixel * 4u];
            let v = rast[pixel * 4u + 1u];
            bary = vec3<f32>(u, v, 1.0 - u - v);
        }
        if params.channel_offset == 0u {
            write_barycentric_gradient(pixel, key, b);
        }
    }
    if SCATTER_PASS == SCATTER_SKIP {
        return;
    }
    begin_accumulate();
    if key == 0u {
        return;
    }
    let a = attribute_offsets(b, key - 1u);
    for (var c = 0u; c < CHUNK; c++) {
        let ch = params.channel_offset + c;
        if ch < channels {
            scatter_channel(a, ch, to_fixed4(grad_out[pixel * channels + ch] * vec4<f32>(bary, 0.0)));
        }
    }
}
