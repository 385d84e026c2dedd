// Bilinear texture sampling and its backward.
//
// texture: [Bt, Ht, Wt, C] (Bt = 1 shared, or B), row 0 at t = 0; uv: [B, H, W, 2] with s along
// the width and t along the height, both in [0, 1] over the whole map. Texel centres sit at
// ((i + 0.5) / Wt, (j + 0.5) / Ht). Addressing is clamp-to-edge, or wrap when info[7] = 1.
// Non-finite uv samples zero and gets no gradient.
// info: [B, H, W, C, Ht, Wt, tex_batched, wrap]

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

fn footprint(s: f32, t: f32, wt: u32, ht: u32, wrap: bool) -> Footprint {
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

//#kernel texture_forward
@group(0) @binding(0) var<storage, read_write> tex: array<f32>;
@group(0) @binding(1) var<storage, read_write> uv: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> info: array<u32>;

@compute @workgroup_size({{ wg_x }}, {{ wg_y }}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let height = info[1];
    let width = info[2];
    let channels = info[3];
    let ht = info[4];
    let wt = info[5];
    let px = gid.x;
    let py = gid.y;
    let b = gid.z;
    if px >= width || py >= height || b >= info[0] {
        return;
    }
    let pixel = (b * height + py) * width + px;
    let o = pixel * channels;
    let s = uv[pixel * 2u];
    let t = uv[pixel * 2u + 1u];
    if !(is_finite(s) && is_finite(t)) {
        for (var ch = 0u; ch < channels; ch++) {
            out[o + ch] = 0.0;
        }
        return;
    }
    let f = footprint(s, t, wt, ht, info[7] != 0u);
    let base = select(0u, b, info[6] != 0u) * ht * wt;
    let t00 = (base + f.y0 * wt + f.x0) * channels;
    let t01 = (base + f.y0 * wt + f.x1) * channels;
    let t10 = (base + f.y1 * wt + f.x0) * channels;
    let t11 = (base + f.y1 * wt + f.x1) * channels;
    for (var ch = 0u; ch < channels; ch++) {
        let top = mix(tex[t00 + ch], tex[t01 + ch], f.fx);
        let bottom = mix(tex[t10 + ch], tex[t11 + ch], f.fx);
        out[o + ch] = mix(top, bottom, f.fy);
    }
}

//#kernel texture_backward
// Texel gradients are scattered with a compare-and-swap float add; each 8x8 tile first groups
// its pixels by bilinear footprint so that one pixel per footprint scatters the tile's sum
// (magnified textures put many pixels on the same four texels).
@group(0) @binding(0) var<storage, read_write> tex: array<f32>;
@group(0) @binding(1) var<storage, read_write> uv: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad_out: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad_tex: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> grad_uv: array<f32>;
@group(0) @binding(5) var<storage, read_write> info: array<u32>;

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
        let r = atomicCompareExchangeWeak(&grad_tex[index], old, bitcast<u32>(bitcast<f32>(old) + value));
        if r.exchanged {
            break;
        }
        old = r.old_value;
    }
}

@compute @workgroup_size({{ wg_x }}, {{ wg_y }}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let height = info[1];
    let width = info[2];
    let channels = info[3];
    let ht = info[4];
    let wt = info[5];
    let px = gid.x;
    let py = gid.y;
    let b = gid.z;
    let base = select(0u, b, info[6] != 0u) * ht * wt;
    var key = vec2<u32>(0u);
    var f: Footprint;
    let pixel = (b * height + py) * width + px;
    // No early return before the barrier: every invocation of the tile must reach it.
    if px < width && py < height && b < info[0] {
        let o = pixel * channels;
        let s = uv[pixel * 2u];
        let t = uv[pixel * 2u + 1u];
        if is_finite(s) && is_finite(t) {
            f = footprint(s, t, wt, ht, info[7] != 0u);
            let t00 = (base + f.y0 * wt + f.x0) * channels;
            let t01 = (base + f.y0 * wt + f.x1) * channels;
            let t10 = (base + f.y1 * wt + f.x0) * channels;
            let t11 = (base + f.y1 * wt + f.x1) * channels;
            var gx = 0.0;
            var gy = 0.0;
            for (var ch = 0u; ch < channels; ch++) {
                let g = grad_out[o + ch];
                let c00 = tex[t00 + ch];
                let c01 = tex[t01 + ch];
                let c10 = tex[t10 + ch];
                let c11 = tex[t11 + ch];
                gx += g * ((1.0 - f.fy) * (c01 - c00) + f.fy * (c11 - c10));
                gy += g * (mix(c10, c11, f.fx) - mix(c00, c01, f.fx));
            }
            grad_uv[pixel * 2u] = gx * f32(wt);
            grad_uv[pixel * 2u + 1u] = gy * f32(ht);
            key = vec2<u32>(base + f.y0 * wt + f.x0 + 1u, base + f.y1 * wt + f.x1 + 1u);
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
    let t00 = (base + f.y0 * wt + f.x0) * channels;
    let t01 = (base + f.y0 * wt + f.x1) * channels;
    let t10 = (base + f.y1 * wt + f.x0) * channels;
    let t11 = (base + f.y1 * wt + f.x1) * channels;
    for (var ch = 0u; ch < channels; ch++) {
        var s = vec4<f32>(0.0);
        for (var j = lane; j < TILE; j++) {
            if all(tile_key[j] == key) {
                let g = grad_out[tile_pixel[j] * channels + ch];
                let fx = tile_fraction[j].x;
                let fy = tile_fraction[j].y;
                s += g * vec4<f32>((1.0 - fx) * (1.0 - fy), fx * (1.0 - fy), (1.0 - fx) * fy, fx * fy);
            }
        }
        add_f32(t00 + ch, s.x);
        add_f32(t01 + ch, s.y);
        add_f32(t10 + ch, s.z);
        add_f32(t11 + ch, s.w);
    }
}
