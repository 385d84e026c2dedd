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
// taken from grad_out, as barycentrics lie in [0, 1]); each 8x8 tile first groups its pixels by
// triangle so that one pixel per triangle scatters the tile's sum. d(u, v) is written in the
// same pass (alone in the SKIP pass, when the attributes need no gradient).
@group(0) @binding(4) var<storage, read_write> grad_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> grad_rast: array<f32>;
@group(0) @binding(6) var<storage, read_write> accumulators: array<atomic<u32>>;

const TILE: u32 = {{ wg_x }}u * {{ wg_y }}u;
// Channels this launch scatters, from params.channel_offset on (at most 4: the workgroup
// memory below holds that many). A constant of the compiled kernel (src/render/kernel.rs compiles
// one per count), so that the sums below need no arrays indexed at run time.
const CHUNK: u32 = {{ channels }}u;
// Per pixel of the tile: triangle id + 1 (0: background), and for the channels in hand its
// contributions in fixed point (x, y, z: the three corners; w unused) with a bit per
// contribution that is not finite.
var<workgroup> tile_key: array<u32, TILE>;
var<workgroup> tile_low: array<vec4<u32>, 4u * TILE>;
var<workgroup> tile_high: array<vec4<u32>, 4u * TILE>;
var<workgroup> tile_nonfinite: array<u32, TILE>;

// Rounds the pixel's contributions to this launch's channels into the tile's memory.
fn quantize_chunk(lane: u32, pixel: u32, key: u32, bary: vec3<f32>) {
    var nonfinite = 0u;
    for (var c = 0u; c < CHUNK; c++) {
        let ch = params.channel_offset + c;
        var g = 0.0;
        if key != 0u && ch < params.channels {
            g = grad_out[pixel * params.channels + ch];
        }
        let q = to_fixed4(g * vec4<f32>(bary, 0.0));
        tile_low[CHUNK * lane + c] = q.low;
        tile_high[CHUNK * lane + c] = q.high;
        nonfinite |= nonfinite_bits(q) << (4u * c);
    }
    tile_nonfinite[lane] = nonfinite;
}

// The tile's contribution c of pixel j, as quantised by quantize_chunk.
fn tile_contribution(j: u32, c: u32) -> Fixed4 {
    let flags = nonfinite_from_bits(tile_nonfinite[j] >> (4u * c));
    return Fixed4(tile_low[CHUNK * j + c], tile_high[CHUNK * j + c], flags);
}

// Scatters a channel's sums to the triangle's three corners (offsets a).
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
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
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
    tile_key[lane] = key;
    quantize_chunk(lane, pixel, key, bary);
    workgroupBarrier();
    if key == 0u {
        return;
    }
    // Only the tile's first pixel of each triangle scatters, with the sum of all of them.
    for (var j = 0u; j < lane; j++) {
        if tile_key[j] == key {
            return;
        }
    }
    // One accumulator per channel, written out; CHUNK is a constant, so unused ones vanish.
    var s0 = tile_contribution(lane, 0u);
    var s1 = tile_contribution(lane, 1u);
    var s2 = tile_contribution(lane, 2u);
    var s3 = tile_contribution(lane, 3u);
    for (var j = lane + 1u; j < TILE; j++) {
        if tile_key[j] == key {
            s0 = fixed4_add(s0, tile_contribution(j, 0u));
            if CHUNK > 1u {
                s1 = fixed4_add(s1, tile_contribution(j, 1u));
            }
            if CHUNK > 2u {
                s2 = fixed4_add(s2, tile_contribution(j, 2u));
            }
            if CHUNK > 3u {
                s3 = fixed4_add(s3, tile_contribution(j, 3u));
            }
        }
    }
    let a = attribute_offsets(b, key - 1u);
    let ch = params.channel_offset;
    scatter_channel(a, ch, s0);
    if CHUNK > 1u {
        scatter_channel(a, ch + 1u, s1);
    }
    if CHUNK > 2u {
        scatter_channel(a, ch + 2u, s2);
    }
    if CHUNK > 3u {
        scatter_channel(a, ch + 3u, s3);
    }
}
