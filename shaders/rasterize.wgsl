// Rasterization: clip-space triangles -> per-pixel (u, v, z/w, triangle id + 1), and its backward.
//
// Conventions (shared with src/render/rasterize.rs, which holds the CPU reference):
// - positions: [B, V, 4] clip space (x, y, z, w), NDC x right, y up, z in [-1, 1];
// - pixel (px, py) has row 0 at the TOP; its centre is at NDC ((px+0.5)/W*2-1, 1-(py+0.5)/H*2);
// - barycentrics are perspective-correct: the clip-space point is u*p0 + v*p1 + (1-u-v)*p2;
// - triangles with a vertex at w <= W_MIN (at or behind the eye) or non-finite are not drawn;
//   pixels whose z/w falls outside [-1, 1] are clipped.
//
// Coverage uses homogeneous edge values k_m = a_i*c_j - a_j*c_i with a = x - px*w, c = y - py*w
// (m opposite the directed edge i->j). Each edge value is evaluated with its lower vertex index
// first, so two triangles sharing an edge compute bit-identical magnitudes, and a pixel exactly
// on an edge goes to one triangle by a top-left rule on the edge's NDC direction: watertight.
//
// Depth test: pass 0 takes atomicMin of the depth bits, pass 1 (same kernel, same arithmetic)
// takes atomicMin of the triangle id among the triangles that hit the minimum; ties go to the
// lower id. Neither depends on scheduling.
//
// `params` (binding 0, a `RasterizeParams` of src/render/rasterize.rs) is declared by the
// launcher, src/render/kernel.rs.

const W_MIN: f32 = 1e-6;
const NO_TRIANGLE: u32 = 0xffffffffu;
const ROW_SPLIT: u32 = 4u;
// `params.pass_index` of raster_triangles.
const DEPTH_PASS: u32 = 0u;
const ID_PASS: u32 = 1u;

// Bindings 1-2 are shared by the three kernels; each section declares the rest from 3 on.
@group(0) @binding(1) var<storage, read_write> pos: array<f32>;
@group(0) @binding(2) var<storage, read_write> tri: array<i32>;

fn pixel_index(b: u32, px: u32, py: u32) -> u32 {
    return (b * params.height + py) * params.width + px;
}

// Index of the first coordinate of vertex v of image b in `pos` (and in its gradient).
fn vertex_offset(b: u32, v: u32) -> u32 {
    return (b * params.vertices + v) * 4u;
}

fn vertex(b: u32, v: u32) -> vec4<f32> {
    let o = vertex_offset(b, v);
    return vec4<f32>(pos[o], pos[o + 1u], pos[o + 2u], pos[o + 3u]);
}

// The vertex indices of triangle t.
fn corners(t: u32) -> vec3<u32> {
    return vec3<u32>(u32(tri[t * 3u]), u32(tri[t * 3u + 1u]), u32(tri[t * 3u + 2u]));
}

fn is_finite(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
}

fn vec4_finite(p: vec4<f32>) -> bool {
    return is_finite(p.x) && is_finite(p.y) && is_finite(p.z) && is_finite(p.w);
}

fn pixel_ndc(px: u32, py: u32, width: u32, height: u32) -> vec2<f32> {
    return vec2<f32>(
        (f32(px) + 0.5) / f32(width) * 2.0 - 1.0,
        1.0 - (f32(py) + 0.5) / f32(height) * 2.0,
    );
}

// Edge value of the directed edge i->j at the pixel, computed in canonical vertex order.
fn edge_value(pi: vec4<f32>, pj: vec4<f32>, vi: u32, vj: u32, ndc: vec2<f32>) -> f32 {
    var lo = pi;
    var hi = pj;
    if vi > vj {
        lo = pj;
        hi = pi;
    }
    let a_lo = lo.x - ndc.x * lo.w;
    let c_lo = lo.y - ndc.y * lo.w;
    let a_hi = hi.x - ndc.x * hi.w;
    let c_hi = hi.y - ndc.y * hi.w;
    let k = a_lo * c_hi - a_hi * c_lo;
    if vi > vj {
        return -k;
    }
    return k;
}

// Top-left rule for a pixel exactly on the directed edge i->j of a triangle of orientation s.
fn edge_claims(pi: vec4<f32>, pj: vec4<f32>, s: f32) -> bool {
    let d = s * (pj.xy / pj.w - pi.xy / pi.w);
    return d.y < 0.0 || (d.y == 0.0 && d.x > 0.0);
}

fn edge_inside(k: f32, s: f32, pi: vec4<f32>, pj: vec4<f32>) -> bool {
    let sk = s * k;
    return sk > 0.0 || (sk == 0.0 && edge_claims(pi, pj, s));
}

// Signed area of the triangle in NDC; 0 for degenerate triangles.
fn orientation(p0: vec4<f32>, p1: vec4<f32>, p2: vec4<f32>) -> f32 {
    let a = p0.xy / p0.w;
    let b = p1.xy / p1.w;
    let c = p2.xy / p2.w;
    let area = (b.x - a.x) * (c.y - a.y) - (c.x - a.x) * (b.y - a.y);
    if area > 0.0 {
        return 1.0;
    }
    if area < 0.0 {
        return -1.0;
    }
    return 0.0;
}

//#kernel raster_triangles
// One thread per (triangle, row phase, image): walks the triangle's pixel bounding box.
@group(0) @binding(3) var<storage, read_write> depth: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> ids: array<atomic<u32>>;

@compute @workgroup_size({{ wg_x }}, {{ wg_y }}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let height = params.height;
    let width = params.width;
    let depth_pass = params.pass_index == DEPTH_PASS;
    let t = gid.x;
    let phase = gid.y;
    let b = gid.z;
    if t >= params.triangles || b >= params.batch || phase >= ROW_SPLIT {
        return;
    }
    let i = corners(t);
    let i0 = i.x;
    let i1 = i.y;
    let i2 = i.z;
    let p0 = vertex(b, i0);
    let p1 = vertex(b, i1);
    let p2 = vertex(b, i2);
    if !(vec4_finite(p0) && vec4_finite(p1) && vec4_finite(p2)) {
        return;
    }
    if p0.w <= W_MIN || p1.w <= W_MIN || p2.w <= W_MIN {
        return;
    }
    let s = orientation(p0, p1, p2);
    if s == 0.0 {
        return;
    }
    // Pixel-space bounding box (x right, y down).
    let x0 = (p0.x / p0.w + 1.0) * 0.5 * f32(width);
    let x1 = (p1.x / p1.w + 1.0) * 0.5 * f32(width);
    let x2 = (p2.x / p2.w + 1.0) * 0.5 * f32(width);
    let y0 = (1.0 - p0.y / p0.w) * 0.5 * f32(height);
    let y1 = (1.0 - p1.y / p1.w) * 0.5 * f32(height);
    let y2 = (1.0 - p2.y / p2.w) * 0.5 * f32(height);
    let bx_min = clamp(ceil(min(x0, min(x1, x2)) - 0.5), 0.0, f32(width));
    let bx_max = clamp(floor(max(x0, max(x1, x2)) - 0.5), -1.0, f32(width) - 1.0);
    let by_min = clamp(ceil(min(y0, min(y1, y2)) - 0.5), 0.0, f32(height));
    let by_max = clamp(floor(max(y0, max(y1, y2)) - 0.5), -1.0, f32(height) - 1.0);
    if bx_max < bx_min || by_max < by_min {
        return;
    }
    let px_min = u32(bx_min);
    let px_max = u32(bx_max);
    let py_min = u32(by_min);
    let py_max = u32(by_max);
    let image_base = b * height * width;
    for (var py = py_min + phase; py <= py_max; py += ROW_SPLIT) {
        for (var px = px_min; px <= px_max; px++) {
            let ndc = pixel_ndc(px, py, width, height);
            let k0 = edge_value(p1, p2, i1, i2, ndc);
            let k1 = edge_value(p2, p0, i2, i0, ndc);
            let k2 = edge_value(p0, p1, i0, i1, ndc);
            if !(edge_inside(k0, s, p1, p2) && edge_inside(k1, s, p2, p0) && edge_inside(k2, s, p0, p1)) {
                continue;
            }
            let den = k0 * p0.w + k1 * p1.w + k2 * p2.w;
            if den == 0.0 {
                continue;
            }
            let zw = (k0 * p0.z + k1 * p1.z + k2 * p2.z) / den;
            if !(zw >= -1.0 && zw <= 1.0) {
                continue;
            }
            let bits = bitcast<u32>(zw * 0.5 + 0.5);
            let pixel = image_base + py * width + px;
            if depth_pass {
                atomicMin(&depth[pixel], bits);
            } else if bits == atomicLoad(&depth[pixel]) {
                atomicMin(&ids[pixel], t);
            }
        }
    }
}

//#kernel raster_resolve
// One thread per pixel: perspective-correct barycentrics and depth of the winning triangle.
@group(0) @binding(3) var<storage, read_write> ids: array<u32>;
@group(0) @binding(4) var<storage, read_write> rast: array<f32>;

@compute @workgroup_size({{ wg_x }}, {{ wg_y }}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let height = params.height;
    let width = params.width;
    let px = gid.x;
    let py = gid.y;
    let b = gid.z;
    if px >= width || py >= height || b >= params.batch {
        return;
    }
    let pixel = pixel_index(b, px, py);
    let o = pixel * 4u;
    let t = ids[pixel];
    if t == NO_TRIANGLE || t >= params.triangles {
        rast[o] = 0.0;
        rast[o + 1u] = 0.0;
        rast[o + 2u] = 0.0;
        rast[o + 3u] = 0.0;
        return;
    }
    let i = corners(t);
    let i0 = i.x;
    let i1 = i.y;
    let i2 = i.z;
    let p0 = vertex(b, i0);
    let p1 = vertex(b, i1);
    let p2 = vertex(b, i2);
    let ndc = pixel_ndc(px, py, width, height);
    let k0 = edge_value(p1, p2, i1, i2, ndc);
    let k1 = edge_value(p2, p0, i2, i0, ndc);
    let k2 = edge_value(p0, p1, i0, i1, ndc);
    let sum = k0 + k1 + k2;
    let den = k0 * p0.w + k1 * p1.w + k2 * p2.w;
    rast[o] = k0 / sum;
    rast[o + 1u] = k1 / sum;
    rast[o + 2u] = (k0 * p0.z + k1 * p1.z + k2 * p2.z) / den;
    rast[o + 3u] = f32(t + 1u);
}

//#kernel raster_backward
// One thread per pixel: d(u, v, z/w) -> d(clip positions) of the pixel's triangle, scattered in
// fixed point (shaders/scatter.wgsl, two passes). Each pixel adds its own 12 contributions to
// its triangle's vertices. An earlier version first summed each 8x8 tile's contributions per
// triangle in workgroup memory (which a compare-and-swap scatter needed); with integer atomicAdd
// nothing retries, and on lavapipe that tile sum cost more than all the atomics it saved (the
// backward took twice as long). The sums are exact either way, so the result is the same.
@group(0) @binding(3) var<storage, read_write> rast: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad_rast: array<f32>;
@group(0) @binding(5) var<storage, read_write> accumulators: array<atomic<u32>>;

struct VertexGrads {
    key: u32,
    g0: vec4<f32>,
    g1: vec4<f32>,
    g2: vec4<f32>,
}

// The gradients one pixel sends to its triangle's vertices (key 0 when it sends none).
fn pixel_gradients(px: u32, py: u32, b: u32) -> VertexGrads {
    var out = VertexGrads(0u, vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    let height = params.height;
    let width = params.width;
    let pixel = pixel_index(b, px, py);
    let o = pixel * 4u;
    let id = rast[o + 3u];
    if !(id >= 1.0 && id <= f32(params.triangles)) {
        return out;
    }
    let t = u32(id) - 1u;
    let du = grad_rast[o];
    let dv = grad_rast[o + 1u];
    let dz = grad_rast[o + 2u];
    if du == 0.0 && dv == 0.0 && dz == 0.0 {
        return out;
    }
    let i = corners(t);
    let p0 = vertex(b, i.x);
    let p1 = vertex(b, i.y);
    let p2 = vertex(b, i.z);
    let ndc = pixel_ndc(px, py, width, height);
    let a = vec3<f32>(p0.x - ndc.x * p0.w, p1.x - ndc.x * p1.w, p2.x - ndc.x * p2.w);
    let c = vec3<f32>(p0.y - ndc.y * p0.w, p1.y - ndc.y * p1.w, p2.y - ndc.y * p2.w);
    let k = vec3<f32>(a.y * c.z - a.z * c.y, a.z * c.x - a.x * c.z, a.x * c.y - a.y * c.x);
    let sum = k.x + k.y + k.z;
    let w = vec3<f32>(p0.w, p1.w, p2.w);
    let z = vec3<f32>(p0.z, p1.z, p2.z);
    let den = dot(k, w);
    if sum == 0.0 || den == 0.0 {
        return out;
    }
    let u = k.x / sum;
    let v = k.y / sum;
    let zw = dot(k, z) / den;
    // d/dk of u = k0/S, v = k1/S and z/w = (k.z)/(k.w).
    var gk = vec3<f32>(du * (1.0 - u) - dv * v, dv * (1.0 - v) - du * u, -du * u - dv * v) / sum;
    gk += dz * (z - zw * w) / den;
    let gz = dz * k / den;
    var gw = -dz * zw * k / den;
    // k0 = a1 c2 - a2 c1, k1 = a2 c0 - a0 c2, k2 = a0 c1 - a1 c0.
    let ga = vec3<f32>(
        gk.z * c.y - gk.y * c.z,
        gk.x * c.z - gk.z * c.x,
        gk.y * c.x - gk.x * c.y,
    );
    let gc = vec3<f32>(
        gk.y * a.z - gk.z * a.y,
        gk.z * a.x - gk.x * a.z,
        gk.x * a.y - gk.y * a.x,
    );
    // a = x - ndc.x * w, c = y - ndc.y * w.
    gw += -ndc.x * ga - ndc.y * gc;
    out.key = t + 1u;
    out.g0 = vec4<f32>(ga.x, gc.x, gz.x, gw.x);
    out.g1 = vec4<f32>(ga.y, gc.y, gz.y, gw.y);
    out.g2 = vec4<f32>(ga.z, gc.z, gz.z, gw.z);
    return out;
}

@compute @workgroup_size({{ wg_x }}, {{ wg_y }}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let b = gid.z;
    if gid.x >= params.width || gid.y >= params.height || b >= params.batch {
        return;
    }
    let mine = pixel_gradients(gid.x, gid.y, b);
    if mine.key == 0u {
        return;
    }
    if SCATTER_PASS == SCATTER_MEASURE {
        for (var c = 0u; c < 4u; c++) {
            note_extent(mine.g0[c]);
            note_extent(mine.g1[c]);
            note_extent(mine.g2[c]);
        }
        publish_extent();
        return;
    }
    begin_accumulate();
    let q0 = to_fixed4(mine.g0);
    let q1 = to_fixed4(mine.g1);
    let q2 = to_fixed4(mine.g2);
    let i = corners(mine.key - 1u);
    let o0 = vertex_offset(b, i.x);
    let o1 = vertex_offset(b, i.y);
    let o2 = vertex_offset(b, i.z);
    for (var c = 0u; c < 4u; c++) {
        scatter_fixed(o0 + c, fixed4_component(q0, c));
        scatter_fixed(o1 + c, fixed4_component(q1, c));
        scatter_fixed(o2 + c, fixed4_component(q2, c));
    }
}
