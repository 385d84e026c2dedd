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
// Texel gradients are scattered with a compare-and-swap float add; each 8x8 tile first groups
// its pixels by bilinear footprint so that one pixel per footprint scatters the tile's sum
// (magnified textures put many pixels on the same four texels).
@group(0) @binding(3) var<storage, read_write> grad_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad_tex: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read_write> grad_uv: array<f32>;

const TILE: u32 = {{ wg_x }}u * {{ wg_y }}u;
// Per pixel of the tile: the footprint's first and last texel + 1 (which fix all four; 0: no
// footprint), its bilinear fractions, and the pixel's index.
var<workgroup> tile_key: array<vec2<u32>, TILE>;
var<workgroup> tile_fraction: array<vec2<f32>, TILE>;
var<workgroup> tile_pixel: array<u32, TILE>;

fn add_f32(index: u32, value: f32) {
    if value == 0.0 {
        return;
    }
    var old = atomicLoad(&grad_tex[index]);
    loop {
        let new_bits = bitcast<u32>(bitcast<f32>(old) + value);
        let r = atomicCompareExchangeWeak(&grad_tex[index], old, new_bits);
        if r.exchanged {
            break;
        }
        old = r.old_value;
    }
}

@compute @workgroup_size({{ wg_x }}, {{ wg_y }}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let channels = params.channels;
    let px = gid.x;
    let py = gid.y;
    let b = gid.z;
    var key = vec2<u32>(0u);
    var f: Footprint;
    let pixel = pixel_index(b, px, py);
    // No early return before the barrier: every invocation of the tile must reach it.
    if px < params.width && py < params.height && b < params.batch {
        let o = pixel * channels;
        let s = uv[pixel * 2u];
        let t = uv[pixel * 2u + 1u];
        if is_finite(s) && is_finite(t) {
            f = footprint(s, t);
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
            key = vec2<u32>(texel(b, f.x0, f.y0) + 1u, texel(b, f.x1, f.y1) + 1u);
        } else {
            grad_uv[pixel * 2u] = 0.0;
            grad_uv[pixel * 2u + 1u] = 0.0;
        }
    }
    tile_key[lane] = key;
    tile_fraction[lane] = vec2<f32>(f.fx, f.fy);
    tile_pixel[lane] = pixel;
    workgroupBarrier();
    if key.x == 0u {
        return;
    }
    for (var j = 0u; j < lane; j++) {
        if all(tile_key[j] == key) {
            return;
        }
    }
    // This is the tile's first pixel on its footprint: scatter the sum over all of them.
    let k = texel_offsets(b, f);
    for (var ch = 0u; ch < channels; ch++) {
        var s = vec4<f32>(0.0);
        for (var j = lane; j < TILE; j++) {
            if all(tile_key[j] == key) {
                let g = grad_out[tile_pixel[j] * channels + ch];
                let fx = tile_fraction[j].x;
                let fy = tile_fraction[j].y;
                s += g * vec4<f32>(
                    (1.0 - fx) * (1.0 - fy),
                    fx * (1.0 - fy),
                    (1.0 - fx) * fy,
                    fx * fy,
                );
            }
        }
        add_f32(k.x + ch, s.x);
        add_f32(k.y + ch, s.y);
        add_f32(k.z + ch, s.z);
        add_f32(k.w + ch, s.w);
    }
}
