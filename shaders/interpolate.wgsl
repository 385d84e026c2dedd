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

fn add_bits(old: u32, value: f32) -> u32 {
    return bitcast<u32>(bitcast<f32>(old) + value);
}

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
// Attribute gradients are scattered with a compare-and-swap float add; each 8x8 tile first
// groups its pixels by triangle so that one pixel per triangle scatters the tile's sum (on a
// GPU, threads contending for one vertex serialise).
@group(0) @binding(4) var<storage, read_write> grad_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> grad_attr: array<atomic<u32>>;
@group(0) @binding(6) var<storage, read_write> grad_rast: array<f32>;

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
    let channels = params.channels;
    let pixel = pixel_index(b, px, py);
    let r = pixel * 4u;
    let id = rast[r + 3u];
    grad_rast[r + 2u] = 0.0;
    grad_rast[r + 3u] = 0.0;
    if !is_triangle_id(id) {
        grad_rast[r] = 0.0;
        grad_rast[r + 1u] = 0.0;
        return 0u;
    }
    let t = u32(id) - 1u;
    let a = attribute_offsets(b, t);
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
    return t + 1u;
}

@compute @workgroup_size({{ wg_x }}, {{ wg_y }}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let channels = params.channels;
    let b = gid.z;
    var key = 0u;
    var bary = vec3<f32>(0.0);
    var pixel = 0u;
    // No early return before the barrier: every invocation of the tile must reach it.
    if gid.x < params.width && gid.y < params.height && b < params.batch {
        key = pixel_barycentric_gradient(gid.x, gid.y, b);
        pixel = pixel_index(b, gid.x, gid.y);
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
    let a = attribute_offsets(b, key - 1u);
    for (var ch = 0u; ch < channels; ch++) {
        var s = vec3<f32>(0.0);
        for (var j = lane; j < TILE; j++) {
            if tile_key[j] == key {
                s += grad_out[tile_pixel[j] * channels + ch] * tile_bary[j];
            }
        }
        add_f32(a.x + ch, s.x);
        add_f32(a.y + ch, s.y);
        add_f32(a.z + ch, s.z);
    }
}
