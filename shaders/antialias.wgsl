// Analytic silhouette antialiasing (after Laine et al. 2020, "Modular primitives for
// high-performance differentiable rendering"), and its backward.
//
// For each pair of horizontally or vertically neighbouring pixels whose triangle ids differ, the
// nearer triangle (or the only one, against background) is examined from its own pixel centre
// towards the neighbour's. If the edge it leaves through is a silhouette edge (no triangle on the
// other side, or the triangle across it folds behind: `wing` holds the vertex opposite each edge
// in the adjacent triangle, -1 on open edges) and crosses the segment between the two centres at
// fraction t, the pixel on the far side of the crossing takes |0.5 - t| of the other pixel's
// colour. Because the crossing point moves with the vertices, the backward pass gives position
// gradients at occlusion boundaries, which plain rasterization cannot.
//
// Each pixel gathers the pairs it belongs to (forward and colour backward), so those passes are
// deterministic; position gradients are scattered once per pair, by its left/top pixel.
//
// `params` (binding 0, an `AntialiasParams` of src/render/antialias.rs) is declared by the
// launcher, src/render/kernel.rs.

const W_MIN: f32 = 1e-6;
const CROSSING_SLACK: f32 = 0.0625;

// Bindings 1-4 are shared by the three kernels; each section declares the rest from 5 on
// (the colour gradient does not read the colours, and a pipeline binds only what it uses).
@group(0) @binding(1) var<storage, read_write> rast: array<f32>;
@group(0) @binding(2) var<storage, read_write> pos: array<f32>;
@group(0) @binding(3) var<storage, read_write> tri: array<i32>;
@group(0) @binding(4) var<storage, read_write> wing: array<i32>;

struct Pair {
    valid: bool,
    // Pixel indices (within the whole batch) of the modified pixel and of the one it blends in.
    target_pixel: u32,
    source_pixel: u32,
    weight: f32,
    // d weight / d t; zero when the crossing was clamped.
    dweight: f32,
    // The silhouette edge's vertices and d t / d(local position) of each.
    va: u32,
    vb: u32,
    dt_da: vec2<f32>,
    dt_db: vec2<f32>,
    // Local frame: local = (sigma * (P - R)[along], (P - R)[across]); `down` swaps x and y.
    sigma: f32,
    down: bool,
}

fn inactive() -> Pair {
    var p: Pair;
    p.valid = false;
    return p;
}

fn pixel_index(b: u32, x: u32, y: u32) -> u32 {
    return (b * params.height + y) * params.width + x;
}

// Index of the first coordinate of vertex v of image b in `pos` (and in its gradient).
fn vertex_offset(b: u32, v: u32) -> u32 {
    return (b * params.vertices + v) * 4u;
}

fn vertex(b: u32, v: u32) -> vec4<f32> {
    let o = vertex_offset(b, v);
    return vec4<f32>(pos[o], pos[o + 1u], pos[o + 2u], pos[o + 3u]);
}

fn to_pixel(p: vec4<f32>) -> vec2<f32> {
    return vec2<f32>(
        (p.x / p.w + 1.0) * 0.5 * f32(params.width),
        (1.0 - p.y / p.w) * 0.5 * f32(params.height),
    );
}

fn to_local(q: vec2<f32>, centre: vec2<f32>, sigma: f32, down: bool) -> vec2<f32> {
    let d = q - centre;
    if down {
        return vec2<f32>(sigma * d.y, d.x);
    }
    return vec2<f32>(sigma * d.x, d.y);
}

fn cross2(a: vec2<f32>, b: vec2<f32>) -> f32 {
    return a.x * b.y - a.y * b.x;
}

fn triangle_id(pixel: u32) -> u32 {
    let id = rast[pixel * 4u + 3u];
    if id >= 1.0 && id <= f32(params.triangles) {
        return u32(id);
    }
    return 0u;
}

// The pair made of pixel (x, y) of image b and its right (down = false) or lower neighbour.
fn analyse_pair(b: u32, x: u32, y: u32, down: bool) -> Pair {
    var nx = x + 1u;
    var ny = y;
    if down {
        nx = x;
        ny = y + 1u;
    }
    if nx >= params.width || ny >= params.height {
        return inactive();
    }
    let p0 = pixel_index(b, x, y);
    let p1 = pixel_index(b, nx, ny);
    let id0 = triangle_id(p0);
    let id1 = triangle_id(p1);
    if id0 == id1 {
        return inactive();
    }
    var use_first = id1 == 0u;
    if id0 != 0u && id1 != 0u {
        use_first = rast[p0 * 4u + 2u] <= rast[p1 * 4u + 2u];
    }
    var t = id1 - 1u;
    var ref_pixel = p1;
    var other_pixel = p0;
    var centre = vec2<f32>(f32(nx) + 0.5, f32(ny) + 0.5);
    var sigma = -1.0;
    if use_first {
        t = id0 - 1u;
        ref_pixel = p0;
        other_pixel = p1;
        centre = vec2<f32>(f32(x) + 0.5, f32(y) + 0.5);
        sigma = 1.0;
    }
    var idx = array<u32, 3>(u32(tri[t * 3u]), u32(tri[t * 3u + 1u]), u32(tri[t * 3u + 2u]));
    var local: array<vec2<f32>, 3>;
    for (var i = 0u; i < 3u; i++) {
        let p = vertex(b, idx[i]);
        if !(p.w > W_MIN) {
            return inactive();
        }
        local[i] = to_local(to_pixel(p), centre, sigma, down);
    }
    // The edge the ray from the centre along +x leaves through: the crossing furthest along.
    var best = -1;
    var best_x = -3.0e38;
    for (var m = 0; m < 3; m++) {
        let a = local[(m + 1) % 3];
        let c = local[(m + 2) % 3];
        if (a.y < 0.0) == (c.y < 0.0) {
            continue;
        }
        let xc = (a.x * c.y - c.x * a.y) / (c.y - a.y);
        if xc > best_x {
            best_x = xc;
            best = m;
        }
    }
    if best < 0 {
        return inactive();
    }
    let m = u32(best);
    let ia = (m + 1u) % 3u;
    let ib = (m + 2u) % 3u;
    let a = local[ia];
    let c = local[ib];
    // Edges running along the pair direction belong to the perpendicular pairs.
    if abs(c.y - a.y) < abs(c.x - a.x) {
        return inactive();
    }
    // Silhouette test: the triangle across the edge lies on the same side as this one.
    let opposite = wing[t * 3u + m];
    if opposite >= 0 {
        let po = vertex(b, u32(opposite));
        if po.w > W_MIN {
            let o = to_local(to_pixel(po), centre, sigma, down);
            let own = cross2(c - a, local[m] - a);
            let other = cross2(c - a, o - a);
            if !(own * other > 0.0) {
                return inactive();
            }
        }
    }
    let xc = best_x;
    if !(xc > -CROSSING_SLACK && xc < 1.0 + CROSSING_SLACK) {
        return inactive();
    }
    let tc = clamp(xc, 0.0, 1.0);
    // A zero weight (edge exactly between the centres) changes no colour but keeps its
    // one-sided position gradient.
    let weight = abs(0.5 - tc);
    var pair: Pair;
    pair.valid = true;
    pair.weight = weight;
    pair.va = idx[ia];
    pair.vb = idx[ib];
    pair.sigma = sigma;
    pair.down = down;
    if tc < 0.5 {
        pair.target_pixel = ref_pixel;
        pair.source_pixel = other_pixel;
        pair.dweight = -1.0;
    } else {
        pair.target_pixel = other_pixel;
        pair.source_pixel = ref_pixel;
        pair.dweight = 1.0;
    }
    if xc < 0.0 || xc > 1.0 {
        pair.dweight = 0.0;
    }
    let d = c.y - a.y;
    pair.dt_da = vec2<f32>(c.y / d, (xc - c.x) / d);
    pair.dt_db = vec2<f32>(-a.y / d, (a.x - xc) / d);
    return pair;
}

// The (up to four) pairs pixel (x, y) belongs to: with its right, lower, left and upper neighbours.
fn pair_of(b: u32, x: u32, y: u32, k: u32) -> Pair {
    if k == 0u {
        return analyse_pair(b, x, y, false);
    }
    if k == 1u {
        return analyse_pair(b, x, y, true);
    }
    if k == 2u {
        if x == 0u {
            return inactive();
        }
        return analyse_pair(b, x - 1u, y, false);
    }
    if y == 0u {
        return inactive();
    }
    return analyse_pair(b, x, y - 1u, true);
}

//#kernel antialias_forward
@group(0) @binding(5) var<storage, read_write> color: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

@compute @workgroup_size({{ wg_x }}, {{ wg_y }}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let channels = params.channels;
    let x = gid.x;
    let y = gid.y;
    let b = gid.z;
    if x >= params.width || y >= params.height || b >= params.batch {
        return;
    }
    let pixel = pixel_index(b, x, y);
    let o = pixel * channels;
    for (var ch = 0u; ch < channels; ch++) {
        out[o + ch] = color[o + ch];
    }
    for (var k = 0u; k < 4u; k++) {
        let pair = pair_of(b, x, y, k);
        if pair.valid && pair.target_pixel == pixel {
            let s = pair.source_pixel * channels;
            for (var ch = 0u; ch < channels; ch++) {
                out[o + ch] += pair.weight * (color[s + ch] - color[o + ch]);
            }
        }
    }
}

//#kernel antialias_backward_color
@group(0) @binding(5) var<storage, read_write> grad_out: array<f32>;
@group(0) @binding(6) var<storage, read_write> grad_color: array<f32>;

@compute @workgroup_size({{ wg_x }}, {{ wg_y }}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let channels = params.channels;
    let x = gid.x;
    let y = gid.y;
    let b = gid.z;
    if x >= params.width || y >= params.height || b >= params.batch {
        return;
    }
    let pixel = pixel_index(b, x, y);
    let o = pixel * channels;
    for (var ch = 0u; ch < channels; ch++) {
        grad_color[o + ch] = grad_out[o + ch];
    }
    for (var k = 0u; k < 4u; k++) {
        let pair = pair_of(b, x, y, k);
        if !pair.valid {
            continue;
        }
        // out[target] += weight * (color[source] - color[target]).
        let g = pair.target_pixel * channels;
        if pair.target_pixel == pixel {
            for (var ch = 0u; ch < channels; ch++) {
                grad_color[o + ch] -= pair.weight * grad_out[g + ch];
            }
        } else if pair.source_pixel == pixel {
            for (var ch = 0u; ch < channels; ch++) {
                grad_color[o + ch] += pair.weight * grad_out[g + ch];
            }
        }
    }
}

//#kernel antialias_backward_position
// Position gradients, scattered in fixed point (shaders/scatter.wgsl). The pair analysis is the
// costly part: the MEASURE pass takes every pixel's contributions into the launch's extent and
// counts the pairs that send in the accumulator's scratch (one word per pixel; only silhouette
// pixels have any); the ACCUMULATE pass redoes the analysis of those pixels alone and scatters.
// Only silhouette pixels send, so there is no tile pre-reduction.
@group(0) @binding(5) var<storage, read_write> color: array<f32>;
@group(0) @binding(6) var<storage, read_write> grad_out: array<f32>;
@group(0) @binding(7) var<storage, read_write> accumulators: array<atomic<u32>>;

// Chains d loss / d(local position) of vertex v back to its clip-space position: (x, y, w).
fn vertex_grad(b: u32, v: u32, g_local: vec2<f32>, sigma: f32, down: bool) -> vec3<f32> {
    var g_pixel = vec2<f32>(sigma * g_local.x, g_local.y);
    if down {
        g_pixel = vec2<f32>(g_local.y, sigma * g_local.x);
    }
    let p = vertex(b, v);
    let sx = 0.5 * f32(params.width);
    let sy = 0.5 * f32(params.height);
    let inv_w = 1.0 / p.w;
    let gx = g_pixel.x * sx * inv_w;
    let gy = -g_pixel.y * sy * inv_w;
    let gw = (-g_pixel.x * sx * p.x + g_pixel.y * sy * p.y) * inv_w * inv_w;
    return vec3<f32>(gx, gy, gw);
}

// d loss / d t of a pair (the crossing parameter its edge vertices move), 0 if it sends nothing.
fn crossing_gradient(pair: Pair) -> f32 {
    if !pair.valid || pair.dweight == 0.0 {
        return 0.0;
    }
    let channels = params.channels;
    let tg = pair.target_pixel * channels;
    let sc = pair.source_pixel * channels;
    var g_t = 0.0;
    for (var ch = 0u; ch < channels; ch++) {
        g_t += grad_out[tg + ch] * (color[sc + ch] - color[tg + ch]);
    }
    return g_t * pair.dweight;
}

// Scatters the position gradients of a pair with crossing gradient g_t.
fn scatter_pair(b: u32, pair: Pair, g_t: f32) {
    let ga = vertex_grad(b, pair.va, g_t * pair.dt_da, pair.sigma, pair.down);
    let gb = vertex_grad(b, pair.vb, g_t * pair.dt_db, pair.sigma, pair.down);
    let oa = vertex_offset(b, pair.va);
    let ob = vertex_offset(b, pair.vb);
    let qa = to_fixed4(vec4<f32>(ga, 0.0));
    let qb = to_fixed4(vec4<f32>(gb, 0.0));
    scatter_fixed(oa, fixed4_component(qa, 0u));
    scatter_fixed(oa + 1u, fixed4_component(qa, 1u));
    scatter_fixed(oa + 3u, fixed4_component(qa, 2u));
    scatter_fixed(ob, fixed4_component(qb, 0u));
    scatter_fixed(ob + 1u, fixed4_component(qb, 1u));
    scatter_fixed(ob + 3u, fixed4_component(qb, 2u));
}

@compute @workgroup_size({{ wg_x }}, {{ wg_y }}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let x = gid.x;
    let y = gid.y;
    let b = gid.z;
    if x >= params.width || y >= params.height || b >= params.batch {
        return;
    }
    let sends = SCRATCH + pixel_index(b, x, y);
    if SCATTER_PASS == SCATTER_ACCUMULATE {
        if atomicLoad(&accumulators[sends]) == 0u {
            return;
        }
        begin_accumulate();
    }
    var sending = 0u;
    // The first two pairs are the ones this pixel owns (see pair_of): their edge vertices get
    // position gradients.
    for (var k = 0u; k < 2u; k++) {
        let pair = pair_of(b, x, y, k);
        let g_t = crossing_gradient(pair);
        if g_t == 0.0 {
            continue;
        }
        if SCATTER_PASS == SCATTER_ACCUMULATE {
            scatter_pair(b, pair, g_t);
        } else {
            let ga = vertex_grad(b, pair.va, g_t * pair.dt_da, pair.sigma, pair.down);
            let gb = vertex_grad(b, pair.vb, g_t * pair.dt_db, pair.sigma, pair.down);
            note_extent(ga.x);
            note_extent(ga.y);
            note_extent(ga.z);
            note_extent(gb.x);
            note_extent(gb.y);
            note_extent(gb.z);
            sending += 1u;
        }
    }
    if SCATTER_PASS == SCATTER_MEASURE {
        atomicStore(&accumulators[sends], sending);
        publish_extent();
    }
}
