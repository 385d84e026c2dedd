// Attribute interpolation over the rasterized triangles, and its backward.
//
// out[b, y, x, :] = u * A[i0] + v * A[i1] + (1 - u - v) * A[i2] for the pixel's triangle,
// zero on background. Attributes are [Ba, V, C] with Ba = 1 (shared by the batch) or B.
// info: [B, V, T, H, W, C, attr_batched]

fn add_bits(old: u32, value: f32) -> u32 {
    return bitcast<u32>(bitcast<f32>(old) + value);
}

//#kernel interpolate_forward
@group(0) @binding(0) var<storage, read_write> attr: array<f32>;
@group(0) @binding(1) var<storage, read_write> rast: array<f32>;
@group(0) @binding(2) var<storage, read_write> tri: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> info: array<u32>;

@compute @workgroup_size({{ wg_x }}, {{ wg_y }}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let height = info[3];
    let width = info[4];
    let channels = info[5];
    let px = gid.x;
    let py = gid.y;
    let b = gid.z;
    if px >= width || py >= height || b >= info[0] {
        return;
    }
    let pixel = (b * height + py) * width + px;
    let id = rast[pixel * 4u + 3u];
    let o = pixel * channels;
    if !(id >= 1.0 && id <= f32(info[2])) {
        for (var ch = 0u; ch < channels; ch++) {
            out[o + ch] = 0.0;
        }
        return;
    }
    let t = u32(id) - 1u;
    let u = rast[pixel * 4u];
    let v = rast[pixel * 4u + 1u];
    let w = 1.0 - u - v;
    let ab = select(0u, b, info[6] != 0u);
    let a0 = (ab * info[1] + u32(tri[t * 3u])) * channels;
    let a1 = (ab * info[1] + u32(tri[t * 3u + 1u])) * channels;
    let a2 = (ab * info[1] + u32(tri[t * 3u + 2u])) * channels;
    for (var ch = 0u; ch < channels; ch++) {
        out[o + ch] = u * attr[a0 + ch] + v * attr[a1 + ch] + w * attr[a2 + ch];
    }
}

//#kernel interpolate_backward
// Attribute gradients are scattered with a compare-and-swap float add; each 8x8 tile first
// groups its pixels by triangle so that one pixel per triangle scatters the tile's sum (on a
// GPU, threads contending for one vertex serialise).
@group(0) @binding(0) var<storage, read_write> attr: array<f32>;
@group(0) @binding(1) var<storage, read_write> rast: array<f32>;
@group(0) @binding(2) var<storage, read_write> tri: array<i32>;
@group(0) @binding(3) var<storage, read_write> grad_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad_attr: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read_write> grad_rast: array<f32>;
@group(0) @binding(6) var<storage, read_write> info: array<u32>;

const TILE: u32 = {{ wg_x }}u * {{ wg_y }}u;
// Per pixel of the tile: triangle id + 1 (0: background), barycentrics (u, v, 1 - u - v),
// and the pixel's index.
var<workgroup> tile_key: array<u32, TILE>;
var<workgroup> tile_bary: array<vec3<f32>, TILE>;
var<workgroup> tile_pixel: array<u32, TILE>;

fn add_f32(index: u32, value: f32) {
    if value == 0.0 {
        return;
    }
    var old = atomicLoad(&grad_attr[index]);
    loop {
        let r = atomicCompareExchangeWeak(&grad_attr[index], old, add_bits(old, value));
        if r.exchanged {
            break;
        }
        old = r.old_value;
    }
}

// Writes the pixel's d(u, v) and returns its triangle id + 1 (0 for background).
fn pixel_barycentric_gradient(px: u32, py: u32, b: u32) -> u32 {
    let channels = info[5];
    let pixel = (b * info[3] + py) * info[4] + px;
    let r = pixel * 4u;
    let id = rast[r + 3u];
    grad_rast[r + 2u] = 0.0;
    grad_rast[r + 3u] = 0.0;
    if !(id >= 1.0 && id <= f32(info[2])) {
        grad_rast[r] = 0.0;
        grad_rast[r + 1u] = 0.0;
        return 0u;
    }
    let t = u32(id) - 1u;
    let ab = select(0u, b, info[6] != 0u);
    let a0 = (ab * info[1] + u32(tri[t * 3u])) * channels;
    let a1 = (ab * info[1] + u32(tri[t * 3u + 1u])) * channels;
    let a2 = (ab * info[1] + u32(tri[t * 3u + 2u])) * channels;
    let o = pixel * channels;
    var du = 0.0;
    var dv = 0.0;
    for (var ch = 0u; ch < channels; ch++) {
        let g = grad_out[o + ch];
        let x2 = attr[a2 + ch];
        du += g * (attr[a0 + ch] - x2);
        dv += g * (attr[a1 + ch] - x2);
    }
    grad_rast[r] = du;
    grad_rast[r + 1u] = dv;
    return t + 1u;
}

@compute @workgroup_size({{ wg_x }}, {{ wg_y }}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let channels = info[5];
    let b = gid.z;
    var key = 0u;
    var bary = vec3<f32>(0.0);
    var pixel = 0u;
    // No early return before the barrier: every invocation of the tile must reach it.
    if gid.x < info[4] && gid.y < info[3] && b < info[0] {
        key = pixel_barycentric_gradient(gid.x, gid.y, b);
        pixel = (b * info[3] + gid.y) * info[4] + gid.x;
        let u = rast[pixel * 4u];
        let v = rast[pixel * 4u + 1u];
        bary = vec3<f32>(u, v, 1.0 - u - v);
    }
    tile_key[lane] = key;
    tile_bary[lane] = bary;
    tile_pixel[lane] = pixel;
    workgroupBarrier();
    if key == 0u {
        return;
    }
    for (var j = 0u; j < lane; j++) {
        if tile_key[j] == key {
            return;
        }
    }
    // This is the tile's first pixel of its triangle: scatter the sum over all of them.
    let t = key - 1u;
    let ab = select(0u, b, info[6] != 0u);
    let a0 = (ab * info[1] + u32(tri[t * 3u])) * channels;
    let a1 = (ab * info[1] + u32(tri[t * 3u + 1u])) * channels;
    let a2 = (ab * info[1] + u32(tri[t * 3u + 2u])) * channels;
    for (var ch = 0u; ch < channels; ch++) {
        var s = vec3<f32>(0.0);
        for (var j = lane; j < TILE; j++) {
            if tile_key[j] == key {
                s += grad_out[tile_pixel[j] * channels + ch] * tile_bary[j];
            }
        }
        add_f32(a0 + ch, s.x);
        add_f32(a1 + ch, s.y);
        add_f32(a2 + ch, s.z);
    }
}
