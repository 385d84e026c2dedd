// Bilinear texture sampling and its backward.
//
// texture: [Bt, Ht, Wt, C] (Bt = 1 shared, or B), row 0 at t = 0; uv: [B, H, W, 2] with s along
// the width and t along the height, both in [0, 1] over the whole map. Texel centres sit at
// ((i + 0.5) / Wt, (j + 0.5) / Ht). Addressing is clamp-to-edge, or wrap when params.wrap = 1.
// Non-finite uv samples zero and gets no gradient.
//
// `params` (binding 0, a `TextureParams` of src/render/texture.rs) is declared by the launcher,
// src/render/kernel.rs.

// Bindings 1-2 are shared by both kernels; each section declares the rest from 3 on.
@group(0) @binding(1) var<storage, read_write> tex: array<f32>;
@group(0) @binding(2) var<storage, read_write> uv: array<f32>;

fn is_finite(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
}

fn texel_index(i: i32, n: u32, wrap: bool) -> u32 {
    let n_i = i32(n);
    if wrap {
        return u32(((i % n_i) + n_i) % n_i);
    }
    return u32(clamp(i, 0, n_i - 1));
}

struct Footprint {
    x0: u32,
    x1: u32,
    y0: u32,
    y1: u32,
    fx: f32,
    fy: f32,
}

fn footprint(s: f32, t: f32) -> Footprint {
    let wt = params.map_width;
    let ht = params.map_height;
    let wrap = params.wrap != 0u;
    // Keep huge coordinates inside i32 range before flooring; clamping them is exact here
    // because any coordinate beyond the map clamps (or wraps) to a valid texel anyway.
    let x = clamp(s * f32(wt) - 0.5, -1.0e6, 1.0e6);
    let y = clamp(t * f32(ht) - 0.5, -1.0e6, 1.0e6);
    let xf = floor(x);
    let yf = floor(y);
    var f: Footprint;
    f.x0 = texel_index(i32(xf), wt, wrap);
    f.x1 = texel_index(i32(xf) + 1, wt, wrap);
    f.y0 = texel_index(i32(yf), ht, wrap);
    f.y1 = texel_index(i32(yf) + 1, ht, wrap);
    f.fx = x - xf;
    f.fy = y - yf;
    return f;
}

// Index of texel (x, y) of the map that image b samples, counted in texels.
fn texel(b: u32, x: u32, y: u32) -> u32 {
    let layer = select(0u, b, params.map_batched != 0u);
    return (layer * params.map_height + y) * params.map_width + x;
}

// Offsets in `tex` (and in its gradient) of the first channel of the footprint's four texels:
// (x0, y0), (x1, y0), (x0, y1), (x1, y1).
fn texel_offsets(b: u32, f: Footprint) -> vec4<u32> {
    let texels = vec4<u32>(
        texel(b, f.x0, f.y0),
        texel(b, f.x1, f.y0),
        texel(b, f.x0, f.y1),
        texel(b, f.x1, f.y1),
    );
    return texels * params.channels;
}

fn pixel_index(b: u32, px: u32, py: u32) -> u32 {
    return (b * params.height + py) * params.width + px;
}

//#kernel texture_forward
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

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
    let o = pixel * channels;
    let s = uv[pixel * 2u];
    let t = uv[pixel * 2u + 1u];
    if !(is_finite(s) && is_finite(t)) {
        for (var ch = 0u; ch < channels; ch++) {
            out[o + ch] = 0.0;
        }
        return;
    }
    let f = footprint(s, t);
    let k = texel_offsets(b, f);
    for (var ch = 0u; ch < channels; ch++) {
        let top = mix(tex[k.x + ch], tex[k.y + ch], f.fx);
        let bottom = mix(tex[k.z + ch], tex[k.w + ch], f.fx);
        out[o + ch] = mix(top, bottom, f.fy);
    }
}

//#kernel texture_backward
// Texel gradients are scattered in fixed point (shaders/scatter.wgsl; the launch's extent is
// taken from grad_out, as bilinear weights lie in [0, 1]); each 8x8 tile first groups its pixels
// by bilinear footprint so that one pixel per footprint scatters the tile's sum (magnified
// textures put many pixels on the same four texels). d uv is written in the same pass (alone in
// the SKIP pass, when the map needs no gradient).
@group(0) @binding(3) var<storage, read_write> grad_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad_uv: array<f32>;
@group(0) @binding(5) var<storage, read_write> accumulators: array<atomic<u32>>;

const TILE: u32 = {{ wg_x }}u * {{ wg_y }}u;
// Channels this launch scatters, from params.channel_offset on (at most 3: the workgroup
// memory below holds that many). A constant of the compiled kernel (src/render/kernel.rs compiles
// one per count), so that the sums below need no arrays indexed at run time.
const CHUNK: u32 = {{ channels }}u;
// Per pixel of the tile: the footprint's first and last texel + 1 (which fix all four; 0: no
// footprint), and for the channels in hand its contributions in fixed point (one per texel of
// the footprint) with a bit per contribution that is not finite.
var<workgroup> tile_key: array<vec2<u32>, TILE>;
var<workgroup> tile_low: array<vec4<u32>, 3u * TILE>;
var<workgroup> tile_high: array<vec4<u32>, 3u * TILE>;
var<workgroup> tile_nonfinite: array<u32, TILE>;

// The bilinear weights of texels (x0, y0), (x1, y0), (x0, y1), (x1, y1).
fn bilinear(fx: f32, fy: f32) -> vec4<f32> {
    return vec4<f32>((1.0 - fx) * (1.0 - fy), fx * (1.0 - fy), (1.0 - fx) * fy, fx * fy);
}

// Rounds the pixel's contributions to this launch's channels into the tile's memory.
fn quantize_chunk(lane: u32, pixel: u32, sampled: bool, w: vec4<f32>) {
    var nonfinite = 0u;
    for (var c = 0u; c < CHUNK; c++) {
        let ch = params.channel_offset + c;
        var g = 0.0;
        if sampled && ch < params.channels {
            g = grad_out[pixel * params.channels + ch];
        }
        let q = to_fixed4(g * w);
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

// Scatters a channel's sums to the footprint's four texels (offsets k).
fn scatter_channel(k: vec4<u32>, ch: u32, sums: Fixed4) {
    if ch < params.channels {
        scatter_fixed(k.x + ch, fixed4_component(sums, 0u));
        scatter_fixed(k.y + ch, fixed4_component(sums, 1u));
        scatter_fixed(k.z + ch, fixed4_component(sums, 2u));
        scatter_fixed(k.w + ch, fixed4_component(sums, 3u));
    }
}

// Writes the pixel's d uv.
fn write_uv_gradient(pixel: u32, b: u32, f: Footprint, sampled: bool) {
    if !sampled {
        grad_uv[pixel * 2u] = 0.0;
        grad_uv[pixel * 2u + 1u] = 0.0;
        return;
    }
    let channels = params.channels;
    let o = pixel * channels;
    let k = texel_offsets(b, f);
    var gx = 0.0;
    var gy = 0.0;
    for (var ch = 0u; ch < channels; ch++) {
        let g = grad_out[o + ch];
        let c00 = tex[k.x + ch];
        let c01 = tex[k.y + ch];
        let c10 = tex[k.z + ch];
        let c11 = tex[k.w + ch];
        gx += g * ((1.0 - f.fy) * (c01 - c00) + f.fy * (c11 - c10));
        gy += g * (mix(c10, c11, f.fx) - mix(c00, c01, f.fx));
    }
    grad_uv[pixel * 2u] = gx * f32(params.map_width);
    grad_uv[pixel * 2u + 1u] = gy * f32(params.map_height);
}

@compute @workgroup_size({{ wg_x }}, {{ wg_y }}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let channels = params.channels;
    let px = gid.x;
    let py = gid.y;
    let b = gid.z;
    var key = vec2<u32>(0u);
    var f: Footprint;
    let inside = px < params.width && py < params.height && b < params.batch;
    let pixel = pixel_index(b, px, py);
    if inside {
        let s = uv[pixel * 2u];
        let t = uv[pixel * 2u + 1u];
        if is_finite(s) && is_finite(t) {
            f = footprint(s, t);
            key = vec2<u32>(texel(b, f.x0, f.y0) + 1u, texel(b, f.x1, f.y1) + 1u);
        }
        if params.channel_offset == 0u {
            write_uv_gradient(pixel, b, f, key.x != 0u);
        }
    }
    if SCATTER_PASS == SCATTER_SKIP {
        return;
    }
    begin_accumulate();
    tile_key[lane] = key;
    quantize_chunk(lane, pixel, key.x != 0u, bilinear(f.fx, f.fy));
    workgroupBarrier();
    if key.x == 0u {
        return;
    }
    // Only the tile's first pixel on each footprint scatters, with the sum of all of them.
    for (var j = 0u; j < lane; j++) {
        if all(tile_key[j] == key) {
            return;
        }
    }
    // One accumulator per channel, written out; CHUNK is a constant, so unused ones vanish.
    var s0 = tile_contribution(lane, 0u);
    var s1 = tile_contribution(lane, 1u);
    var s2 = tile_contribution(lane, 2u);
    for (var j = lane + 1u; j < TILE; j++) {
        if all(tile_key[j] == key) {
            s0 = fixed4_add(s0, tile_contribution(j, 0u));
            if CHUNK > 1u {
                s1 = fixed4_add(s1, tile_contribution(j, 1u));
            }
            if CHUNK > 2u {
                s2 = fixed4_add(s2, tile_contribution(j, 2u));
            }
        }
    }
    let k = texel_offsets(b, f);
    let ch = params.channel_offset;
    scatter_channel(k, ch, s0);
    if CHUNK > 1u {
        scatter_channel(k, ch + 1u, s1);
    }
    if CHUNK > 2u {
        scatter_channel(k, ch + 2u, s2);
    }
}
