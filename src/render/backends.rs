//! [`RenderOps`] for each backend: WGSL kernels on cubecl, CPU references on Flex, and the
//! backward passes for autodiff.

#[cfg(not(target_arch = "wasm32"))]
use burn::backend::Flex;
use burn::backend::TensorMetadata;
use burn::backend::autodiff::{
    Autodiff,
    checkpoint::{base::Checkpointer, strategy::CheckpointStrategy},
    grads::Gradients,
    ops::{Backward, Ops, OpsKind},
};
use burn::backend::ops::{FloatTensorOps, IntTensorOps};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::wgpu::{CubeBackend, CubeTensor, into_contiguous};
use burn::tensor::{DType, FloatDType, IntDType};

#[cfg(not(target_arch = "wasm32"))]
use super::cpu;
use super::{RenderOps, antialias, interpolate, rasterize, texture};

// ---------------------------------------------------------------------------------------------
// cubecl (wgpu natively, WebGPU in the browser)

fn f32_contiguous(t: CubeTensor) -> CubeTensor {
    let t = if t.dtype == DType::F32 {
        t
    } else {
        CubeBackend::float_cast(t, FloatDType::F32)
    };
    into_contiguous(t)
}

fn i32_contiguous(t: CubeTensor) -> CubeTensor {
    let t = if t.dtype == DType::I32 {
        t
    } else {
        CubeBackend::int_cast(t, IntDType::I32)
    };
    into_contiguous(t)
}

fn dims4(t: &impl TensorMetadata) -> [usize; 4] {
    let s = t.shape();
    [s[0], s[1], s[2], s[3]]
}

fn dims3(t: &impl TensorMetadata) -> [usize; 3] {
    let s = t.shape();
    [s[0], s[1], s[2]]
}

fn raster_dims(
    pos: &impl TensorMetadata,
    tri: &impl TensorMetadata,
    height: usize,
    width: usize,
) -> rasterize::Dims {
    let [batch, vertices, _] = dims3(pos);
    rasterize::Dims {
        batch,
        vertices,
        triangles: tri.shape()[0],
        height,
        width,
    }
}

fn interp_dims(
    attr: &impl TensorMetadata,
    rast: &impl TensorMetadata,
    tri: &impl TensorMetadata,
) -> interpolate::Dims {
    let [ab, vertices, channels] = dims3(attr);
    let [batch, height, width, _] = dims4(rast);
    interpolate::Dims {
        batch,
        vertices,
        triangles: tri.shape()[0],
        height,
        width,
        channels,
        attr_batched: ab > 1,
    }
}

fn texture_dims(map: &impl TensorMetadata, uv: &impl TensorMetadata, wrap: bool) -> texture::Dims {
    let [mb, map_height, map_width, channels] = dims4(map);
    let [batch, height, width, _] = dims4(uv);
    texture::Dims {
        batch,
        height,
        width,
        channels,
        map_height,
        map_width,
        map_batched: mb > 1,
        wrap,
    }
}

fn aa_dims(
    color: &impl TensorMetadata,
    pos: &impl TensorMetadata,
    tri: &impl TensorMetadata,
) -> antialias::Dims {
    let [batch, height, width, channels] = dims4(color);
    antialias::Dims {
        batch,
        vertices: pos.shape()[1],
        triangles: tri.shape()[0],
        height,
        width,
        channels,
    }
}

impl RenderOps for CubeBackend {
    fn rasterize(
        positions: CubeTensor,
        triangles: CubeTensor,
        height: usize,
        width: usize,
    ) -> CubeTensor {
        let d = raster_dims(&positions, &triangles, height, width);
        rasterize::forward_cube(f32_contiguous(positions), i32_contiguous(triangles), d)
    }

    fn rasterize_backward(
        positions: CubeTensor,
        triangles: CubeTensor,
        rast: CubeTensor,
        grad_rast: CubeTensor,
    ) -> CubeTensor {
        let [_, height, width, _] = dims4(&rast);
        let d = raster_dims(&positions, &triangles, height, width);
        rasterize::backward_cube(
            f32_contiguous(positions),
            i32_contiguous(triangles),
            f32_contiguous(rast),
            f32_contiguous(grad_rast),
            d,
        )
    }

    fn interpolate_attributes(
        attributes: CubeTensor,
        rast: CubeTensor,
        triangles: CubeTensor,
    ) -> CubeTensor {
        let d = interp_dims(&attributes, &rast, &triangles);
        interpolate::forward_cube(
            f32_contiguous(attributes),
            f32_contiguous(rast),
            i32_contiguous(triangles),
            d,
        )
    }

    fn interpolate_attributes_backward(
        attributes: CubeTensor,
        rast: CubeTensor,
        triangles: CubeTensor,
        grad_out: CubeTensor,
        attr_grad: bool,
    ) -> (CubeTensor, CubeTensor) {
        let d = interp_dims(&attributes, &rast, &triangles);
        interpolate::backward_cube(
            f32_contiguous(attributes),
            f32_contiguous(rast),
            i32_contiguous(triangles),
            f32_contiguous(grad_out),
            d,
            attr_grad,
        )
    }

    fn texture(map: CubeTensor, uv: CubeTensor, wrap: bool) -> CubeTensor {
        let d = texture_dims(&map, &uv, wrap);
        texture::forward_cube(f32_contiguous(map), f32_contiguous(uv), d)
    }

    fn texture_backward(
        map: CubeTensor,
        uv: CubeTensor,
        grad_out: CubeTensor,
        wrap: bool,
        map_grad: bool,
    ) -> (CubeTensor, CubeTensor) {
        let d = texture_dims(&map, &uv, wrap);
        texture::backward_cube(
            f32_contiguous(map),
            f32_contiguous(uv),
            f32_contiguous(grad_out),
            d,
            map_grad,
        )
    }

    fn antialias(
        color: CubeTensor,
        rast: CubeTensor,
        positions: CubeTensor,
        triangles: CubeTensor,
        wings: CubeTensor,
    ) -> CubeTensor {
        let dims = aa_dims(&color, &positions, &triangles);
        antialias::forward_cube(&antialias::CubeScene {
            color: f32_contiguous(color),
            rast: f32_contiguous(rast),
            pos: f32_contiguous(positions),
            tri: i32_contiguous(triangles),
            wings: i32_contiguous(wings),
            dims,
        })
    }

    fn antialias_backward(
        color: CubeTensor,
        rast: CubeTensor,
        positions: CubeTensor,
        triangles: CubeTensor,
        wings: CubeTensor,
        grad_out: CubeTensor,
        position_grad: bool,
    ) -> (CubeTensor, CubeTensor) {
        let dims = aa_dims(&color, &positions, &triangles);
        let scene = antialias::CubeScene {
            color: f32_contiguous(color),
            rast: f32_contiguous(rast),
            pos: f32_contiguous(positions),
            tri: i32_contiguous(triangles),
            wings: i32_contiguous(wings),
            dims,
        };
        antialias::backward_cube(&scene, f32_contiguous(grad_out), position_grad)
    }
}

// ---------------------------------------------------------------------------------------------
// Flex: the CPU references

#[cfg(not(target_arch = "wasm32"))]
mod flex {
    use super::*;

    type FlexFloat = FloatTensor<Flex>;
    type FlexInt = IntTensor<Flex>;

    impl RenderOps for Flex {
        fn rasterize(
            positions: FlexFloat,
            triangles: FlexInt,
            height: usize,
            width: usize,
        ) -> FlexFloat {
            let d = raster_dims(&positions, &triangles, height, width);
            let (pos, _) = cpu::floats(positions.clone());
            let rast = rasterize::forward_cpu(&pos, &cpu::triangles(triangles), d);
            cpu::tensor(rast, &[d.batch, height, width, 4], &positions)
        }

        fn rasterize_backward(
            positions: FlexFloat,
            triangles: FlexInt,
            rast: FlexFloat,
            grad_rast: FlexFloat,
        ) -> FlexFloat {
            let [_, height, width, _] = dims4(&rast);
            let d = raster_dims(&positions, &triangles, height, width);
            let (pos, pos_dims) = cpu::floats(positions.clone());
            let grad = rasterize::backward_cpu(
                &pos,
                &cpu::triangles(triangles),
                &cpu::floats(rast).0,
                &cpu::floats(grad_rast).0,
                d,
            );
            cpu::tensor(grad, &pos_dims, &positions)
        }

        fn interpolate_attributes(
            attributes: FlexFloat,
            rast: FlexFloat,
            triangles: FlexInt,
        ) -> FlexFloat {
            let d = interp_dims(&attributes, &rast, &triangles);
            let out = interpolate::forward_cpu(
                &cpu::floats(attributes.clone()).0,
                &cpu::floats(rast).0,
                &cpu::triangles(triangles),
                d,
            );
            cpu::tensor(out, &[d.batch, d.height, d.width, d.channels], &attributes)
        }

        fn interpolate_attributes_backward(
            attributes: FlexFloat,
            rast: FlexFloat,
            triangles: FlexInt,
            grad_out: FlexFloat,
            attr_grad: bool,
        ) -> (FlexFloat, FlexFloat) {
            let d = interp_dims(&attributes, &rast, &triangles);
            let (attr, attr_dims) = cpu::floats(attributes.clone());
            let (grad_attr, grad_rast) = interpolate::backward_cpu(
                &attr,
                &cpu::floats(rast).0,
                &cpu::triangles(triangles),
                &cpu::floats(grad_out).0,
                d,
            );
            (
                cpu::tensor_if(attr_grad, grad_attr, &attr_dims, &attributes),
                cpu::tensor(grad_rast, &[d.batch, d.height, d.width, 4], &attributes),
            )
        }

        fn texture(map: FlexFloat, uv: FlexFloat, wrap: bool) -> FlexFloat {
            let d = texture_dims(&map, &uv, wrap);
            let out = texture::forward_cpu(&cpu::floats(map.clone()).0, &cpu::floats(uv).0, d);
            cpu::tensor(out, &[d.batch, d.height, d.width, d.channels], &map)
        }

        fn texture_backward(
            map: FlexFloat,
            uv: FlexFloat,
            grad_out: FlexFloat,
            wrap: bool,
            map_grad: bool,
        ) -> (FlexFloat, FlexFloat) {
            let d = texture_dims(&map, &uv, wrap);
            let (map_values, map_dims) = cpu::floats(map.clone());
            let (uv_values, uv_dims) = cpu::floats(uv);
            let (grad_map, grad_uv) =
                texture::backward_cpu(&map_values, &uv_values, &cpu::floats(grad_out).0, d);
            (
                cpu::tensor_if(map_grad, grad_map, &map_dims, &map),
                cpu::tensor(grad_uv, &uv_dims, &map),
            )
        }

        fn antialias(
            color: FlexFloat,
            rast: FlexFloat,
            positions: FlexFloat,
            triangles: FlexInt,
            wings: FlexInt,
        ) -> FlexFloat {
            let dims = aa_dims(&color, &positions, &triangles);
            let (color_values, color_dims) = cpu::floats(color.clone());
            let (rast, pos) = (cpu::floats(rast).0, cpu::floats(positions).0);
            let (tris, wings) = (cpu::triangles(triangles), cpu::wings(wings));
            let scene = antialias::Scene {
                color: &color_values,
                rast: &rast,
                pos: &pos,
                tris: &tris,
                wings: &wings,
                dims,
            };
            cpu::tensor(antialias::forward_cpu(&scene), &color_dims, &color)
        }

        fn antialias_backward(
            color: FlexFloat,
            rast: FlexFloat,
            positions: FlexFloat,
            triangles: FlexInt,
            wings: FlexInt,
            grad_out: FlexFloat,
            position_grad: bool,
        ) -> (FlexFloat, FlexFloat) {
            let dims = aa_dims(&color, &positions, &triangles);
            let (color_values, color_dims) = cpu::floats(color.clone());
            let (pos, pos_dims) = cpu::floats(positions);
            let rast = cpu::floats(rast).0;
            let (tris, wings) = (cpu::triangles(triangles), cpu::wings(wings));
            let scene = antialias::Scene {
                color: &color_values,
                rast: &rast,
                pos: &pos,
                tris: &tris,
                wings: &wings,
                dims,
            };
            let (grad_color, grad_pos) = antialias::backward_cpu(&scene, &cpu::floats(grad_out).0);
            (
                cpu::tensor(grad_color, &color_dims, &color),
                cpu::tensor_if(position_grad, grad_pos, &pos_dims, &color),
            )
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Autodiff: each forward op records a node whose backward calls the inner backend's *_backward.
// The *_backward ops themselves are not differentiated again (first-order only).

type AdFloat<B, C> = FloatTensor<Autodiff<B, C>>;
type AdInt<B, C> = IntTensor<Autodiff<B, C>>;

fn constant<B: RenderOps, C: CheckpointStrategy>(t: FloatTensor<B>) -> AdFloat<B, C> {
    <Autodiff<B, C> as burn::backend::AutodiffBackend>::from_inner(t)
}

#[derive(Debug)]
struct RasterizeBackward;

impl<B: RenderOps> Backward<B, 1> for RasterizeBackward {
    type State = (FloatTensor<B>, IntTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (pos, tri, rast) = ops.state;
        if let Some(node) = node {
            grads.register::<B>(node.id, B::rasterize_backward(pos, tri, rast, grad));
        }
    }
}

#[derive(Debug)]
struct InterpolateBackward;

impl<B: RenderOps> Backward<B, 2> for InterpolateBackward {
    type State = (FloatTensor<B>, FloatTensor<B>, IntTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_attr, node_rast] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (attr, rast, tri) = ops.state;
        let (grad_attr, grad_rast) =
            B::interpolate_attributes_backward(attr, rast, tri, grad, node_attr.is_some());
        if let Some(node) = node_attr {
            grads.register::<B>(node.id, grad_attr);
        }
        if let Some(node) = node_rast {
            grads.register::<B>(node.id, grad_rast);
        }
    }
}

#[derive(Debug)]
struct TextureBackward;

impl<B: RenderOps> Backward<B, 2> for TextureBackward {
    type State = (FloatTensor<B>, FloatTensor<B>, bool);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_map, node_uv] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (map, uv, wrap) = ops.state;
        let (grad_map, grad_uv) = B::texture_backward(map, uv, grad, wrap, node_map.is_some());
        if let Some(node) = node_map {
            grads.register::<B>(node.id, grad_map);
        }
        if let Some(node) = node_uv {
            grads.register::<B>(node.id, grad_uv);
        }
    }
}

#[derive(Debug)]
struct AntialiasBackward;

impl<B: RenderOps> Backward<B, 2> for AntialiasBackward {
    type State = (
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        IntTensor<B>,
        IntTensor<B>,
    );

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_color, node_pos] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (color, rast, pos, tri, wings) = ops.state;
        let (grad_color, grad_pos) =
            B::antialias_backward(color, rast, pos, tri, wings, grad, node_pos.is_some());
        if let Some(node) = node_color {
            grads.register::<B>(node.id, grad_color);
        }
        if let Some(node) = node_pos {
            grads.register::<B>(node.id, grad_pos);
        }
    }
}

impl<B: RenderOps, C: CheckpointStrategy> RenderOps for Autodiff<B, C> {
    fn rasterize(
        positions: AdFloat<B, C>,
        triangles: AdInt<B, C>,
        height: usize,
        width: usize,
    ) -> AdFloat<B, C> {
        let (pos, node) = positions.into_parts();
        match RasterizeBackward
            .prepare::<C>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let rast = B::rasterize(pos.clone(), triangles.clone(), height, width);
                prep.finish((pos, triangles, rast.clone()), rast)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::rasterize(pos, triangles, height, width)),
        }
    }

    fn rasterize_backward(
        positions: AdFloat<B, C>,
        triangles: AdInt<B, C>,
        rast: AdFloat<B, C>,
        grad_rast: AdFloat<B, C>,
    ) -> AdFloat<B, C> {
        constant::<B, C>(B::rasterize_backward(
            positions.into_primitive(),
            triangles,
            rast.into_primitive(),
            grad_rast.into_primitive(),
        ))
    }

    fn interpolate_attributes(
        attributes: AdFloat<B, C>,
        rast: AdFloat<B, C>,
        triangles: AdInt<B, C>,
    ) -> AdFloat<B, C> {
        let (attr, node_attr) = attributes.into_parts();
        let (rast, node_rast) = rast.into_parts();
        match InterpolateBackward
            .prepare::<C>([node_attr, node_rast])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let out = B::interpolate_attributes(attr.clone(), rast.clone(), triangles.clone());
                prep.finish((attr, rast, triangles), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::interpolate_attributes(attr, rast, triangles))
            }
        }
    }

    fn interpolate_attributes_backward(
        attributes: AdFloat<B, C>,
        rast: AdFloat<B, C>,
        triangles: AdInt<B, C>,
        grad_out: AdFloat<B, C>,
        attr_grad: bool,
    ) -> (AdFloat<B, C>, AdFloat<B, C>) {
        let (a, r) = B::interpolate_attributes_backward(
            attributes.into_primitive(),
            rast.into_primitive(),
            triangles,
            grad_out.into_primitive(),
            attr_grad,
        );
        (constant::<B, C>(a), constant::<B, C>(r))
    }

    fn texture(map: AdFloat<B, C>, uv: AdFloat<B, C>, wrap: bool) -> AdFloat<B, C> {
        let (map, node_map) = map.into_parts();
        let (uv, node_uv) = uv.into_parts();
        match TextureBackward
            .prepare::<C>([node_map, node_uv])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let out = B::texture(map.clone(), uv.clone(), wrap);
                prep.finish((map, uv, wrap), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::texture(map, uv, wrap)),
        }
    }

    fn texture_backward(
        map: AdFloat<B, C>,
        uv: AdFloat<B, C>,
        grad_out: AdFloat<B, C>,
        wrap: bool,
        map_grad: bool,
    ) -> (AdFloat<B, C>, AdFloat<B, C>) {
        let (m, u) = B::texture_backward(
            map.into_primitive(),
            uv.into_primitive(),
            grad_out.into_primitive(),
            wrap,
            map_grad,
        );
        (constant::<B, C>(m), constant::<B, C>(u))
    }

    fn antialias(
        color: AdFloat<B, C>,
        rast: AdFloat<B, C>,
        positions: AdFloat<B, C>,
        triangles: AdInt<B, C>,
        wings: AdInt<B, C>,
    ) -> AdFloat<B, C> {
        let (color, node_color) = color.into_parts();
        let (pos, node_pos) = positions.into_parts();
        let rast = rast.into_primitive();
        match AntialiasBackward
            .prepare::<C>([node_color, node_pos])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let out = B::antialias(
                    color.clone(),
                    rast.clone(),
                    pos.clone(),
                    triangles.clone(),
                    wings.clone(),
                );
                prep.finish((color, rast, pos, triangles, wings), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::antialias(color, rast, pos, triangles, wings))
            }
        }
    }

    fn antialias_backward(
        color: AdFloat<B, C>,
        rast: AdFloat<B, C>,
        positions: AdFloat<B, C>,
        triangles: AdInt<B, C>,
        wings: AdInt<B, C>,
        grad_out: AdFloat<B, C>,
        position_grad: bool,
    ) -> (AdFloat<B, C>, AdFloat<B, C>) {
        let (c, p) = B::antialias_backward(
            color.into_primitive(),
            rast.into_primitive(),
            positions.into_primitive(),
            triangles,
            wings,
            grad_out.into_primitive(),
            position_grad,
        );
        (constant::<B, C>(c), constant::<B, C>(p))
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use burn::backend::{BackendTensor, DispatchTensorKind};
    use burn::tensor::{Int, Tensor, TensorData};

    use super::*;
    use crate::render::{self, Topology, scenes};

    /// The cubecl tensor, contiguous f32, as the op impls pass it to the kernels.
    fn cube<const D: usize>(t: Tensor<D>) -> CubeTensor {
        match t.into_dispatch().kind {
            DispatchTensorKind::Cube(BackendTensor::Float(c)) => f32_contiguous(c),
            _ => panic!("not a cubecl float tensor"),
        }
    }

    fn cube_int(t: Tensor<2, Int>) -> CubeTensor {
        match t.into_dispatch().kind {
            DispatchTensorKind::Cube(BackendTensor::Int(c)) => i32_contiguous(c),
            _ => panic!("not a cubecl int tensor"),
        }
    }

    fn bits(c: CubeTensor) -> Vec<u32> {
        let data = crate::device::block_on(CubeBackend::float_into_data(c)).unwrap();
        data.try_to_vec::<f32>()
            .unwrap()
            .iter()
            .map(|x| x.to_bits())
            .collect()
    }

    /// Fixed-point sums are exact, so the workgroups' pre-reduction cannot change a bit.
    #[test]
    fn scattered_gradients_do_not_depend_on_the_workgroup_shape() {
        let (device, _) = crate::device::gpu().expect("this test needs a wgpu adapter");
        let (h, w, batch) = (37, 45, 2);
        let mesh = scenes::random_triangles(24, 7);
        let v = mesh.positions.len();
        let mut pos = Vec::new();
        for b in 0..batch {
            pos.extend(mesh.clip_with_varying_w(7 + b as u64));
        }
        let topology = Topology::new(mesh.triangles.clone(), v, &device).unwrap();
        let clip = Tensor::<3>::from_data(TensorData::new(pos, [batch, v, 4]), &device);
        let rast = render::rasterize(clip.clone(), &topology, h, w).unwrap();
        let colors =
            Tensor::<3>::from_data(TensorData::new(mesh.colors_flat(), [1, v, 3]), &device);
        let color = render::interpolate(colors.clone(), rast.clone(), &topology).unwrap();
        let uv = color.clone().slice([0..batch, 0..h, 0..w, 0..2]) * 1.3 - 0.1;
        let map = Tensor::<4>::from_data(
            TensorData::new(
                (0..16 * 12 * 3)
                    .map(|i| ((i * 37) % 101) as f32 / 101.0)
                    .collect(),
                [1, 16, 12, 3],
            ),
            &device,
        );
        let grad = |channels: usize| {
            let values: Vec<f32> = (0..batch * h * w * channels)
                .map(|i| ((i * 7919) % 23) as f32 / 23.0 - 0.45)
                .collect();
            cube(Tensor::<4>::from_data(
                TensorData::new(values, [batch, h, w, channels]),
                &device,
            ))
        };
        let rd = raster_dims(&cube(clip.clone()), &cube_int(topology.triangles()), h, w);
        let aa = |wg: (u32, u32)| {
            let scene = antialias::CubeScene {
                color: cube(color.clone()),
                rast: cube(rast.clone()),
                pos: cube(clip.clone()),
                tri: cube_int(topology.triangles()),
                wings: cube_int(topology.wings()),
                dims: aa_dims(
                    &cube(color.clone()),
                    &cube(clip.clone()),
                    &cube_int(topology.triangles()),
                ),
            };
            antialias::backward_cube_in(wg, &scene, grad(3), true).1
        };
        let runs: Vec<[Vec<u32>; 4]> = [(8, 8), (16, 4)]
            .into_iter()
            .map(|wg| {
                [
                    bits(rasterize::backward_cube_in(
                        wg,
                        cube(clip.clone()),
                        cube_int(topology.triangles()),
                        cube(rast.clone()),
                        grad(4),
                        rd,
                    )),
                    bits(
                        interpolate::backward_cube_in(
                            wg,
                            cube(colors.clone()),
                            cube(rast.clone()),
                            cube_int(topology.triangles()),
                            grad(3),
                            interp_dims(
                                &cube(colors.clone()),
                                &cube(rast.clone()),
                                &cube_int(topology.triangles()),
                            ),
                            true,
                        )
                        .0,
                    ),
                    bits(
                        texture::backward_cube_in(
                            wg,
                            cube(map.clone()),
                            cube(uv.clone()),
                            grad(3),
                            texture_dims(&cube(map.clone()), &cube(uv.clone()), true),
                            true,
                        )
                        .0,
                    ),
                    bits(aa(wg)),
                ]
            })
            .collect();
        for (i, op) in ["rasterize", "interpolate", "texture", "antialias"]
            .iter()
            .enumerate()
        {
            assert!(
                runs[0][i].iter().any(|b| *b != 0),
                "{op}: every gradient is zero"
            );
            assert_eq!(
                runs[0][i], runs[1][i],
                "{op}: 8x8 and 16x4 workgroups differ"
            );
        }
    }
}
