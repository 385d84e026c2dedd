//! Launching the hand-written WGSL kernels of `shaders/` through burn's cubecl runtime.
//!
//! A shader file holds one kernel family: a shared prelude (helpers, constants) followed by
//! sections that each start with a `//#kernel NAME` line and declare their own bindings and a
//! `main` entry point. A launch compiles the prelude plus one section, so each pipeline's
//! automatic bind-group layout holds exactly the buffers that kernel uses, in binding order.
//!
//! Every storage binding is declared `read_write`, inputs included: cubecl sub-allocates tensors
//! from shared wgpu buffers, and wgpu rejects a dispatch that uses one buffer both read-only and
//! writable.
//!
//! Each op's scalar parameters (sizes, flags, pass number) travel as one struct, declared once
//! with [`kernel_params!`], which writes the Rust struct and its WGSL twin. Every module starts
//! with that WGSL struct and `params`, the storage variable at binding 0 that holds it; a launch
//! binds the struct's bytes there, so the shaders' own bindings start at 1. The prelude's
//! helpers read `params` directly, as module-scope declarations may come in any order.
//!
//! The runtime compiles these modules without wgpu's bounds checks (cubecl's "trusted" path),
//! so every kernel checks its own indices, and the glue validates shapes and topology before
//! launching.

use std::marker::PhantomData;

use burn::backend::wgpu::{CubeTensor, KernelSource, SourceKernel, SourceTemplate};
use burn::tensor::{DType, Shape};
use cubecl::{CubeCount, CubeDim, prelude::KernelId, server::KernelArguments};

/// The scalars of one op's kernels, shared by the Rust launch and the WGSL.
///
/// Implemented by [`kernel_params!`] only, which keeps the two declarations in step: fields are
/// 4-byte scalars whose WGSL and Rust names coincide, so `#[repr(C)]` lays them out exactly as
/// WGSL does in a storage buffer (4-byte aligned, no padding).
pub trait KernelParams: bytemuck::Pod + std::fmt::Debug + Send + Sync + 'static {
    /// The struct's name, in Rust and in WGSL.
    const NAME: &'static str;
    /// The WGSL declaration `struct Name { field: type, ... }`, fields in Rust's order.
    const WGSL: &'static str;
}

/// Field types a [`kernel_params!`] struct may hold: named alike in Rust and WGSL, and 4 bytes
/// each, so that no padding can differ between the two layouts.
pub trait WgslScalar: bytemuck::Pod {}
impl WgslScalar for u32 {}
impl WgslScalar for i32 {}
impl WgslScalar for f32 {}

/// Declares a kernel parameter struct: the Rust struct (`#[repr(C)]`, `Pod`) and, through
/// [`KernelParams::WGSL`], the same struct in WGSL.
macro_rules! kernel_params {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($(#[$field_meta:meta])* $field:ident: $ty:ident,)+
        }
    ) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        $vis struct $name {
            $($(#[$field_meta])* pub $field: $ty,)+
        }

        impl $crate::render::kernel::KernelParams for $name {
            const NAME: &'static str = stringify!($name);
            const WGSL: &'static str = concat!(
                "struct ", stringify!($name), " {\n",
                $("    ", stringify!($field), ": ", stringify!($ty), ",\n",)+
                "}\n",
            );
        }

        const _: () = {
            const fn scalar<T: $crate::render::kernel::WgslScalar>() {}
            $(scalar::<$ty>();)+
        };
    };
}
pub(crate) use kernel_params;

/// One `//#kernel` section of a WGSL file of `shaders/`, launched with parameters `P`.
#[derive(Debug, Clone, Copy)]
pub struct WgslKernel<P> {
    /// File contents, from `include_str!`.
    pub file: &'static str,
    /// The section's name after `//#kernel`.
    pub name: &'static str,
    /// Workgroup size, substituted for `{{ wg_x }}` and `{{ wg_y }}`.
    pub workgroup: (u32, u32),
    /// A shader file whose prelude (what precedes its first `//#kernel`) goes in front of the
    /// file prelude: shared helpers such as the scatter of `shaders/scatter.wgsl`.
    pub library: &'static str,
    /// Substituted for `{{ scatter_pass }}`: which pass of a scattering kernel this is.
    pub scatter_pass: u32,
    /// Substituted for `{{ channels }}`, for kernels whose loops over channels hold barriers
    /// (their trip count must be a constant under the uniformity rules of WGSL).
    pub channels: u32,
    params: PhantomData<fn() -> P>,
}

impl<P: KernelParams> WgslKernel<P> {
    /// Section `name` of `file`, run by workgroups of `workgroup`.
    pub const fn new(file: &'static str, name: &'static str, workgroup: (u32, u32)) -> Self {
        Self {
            file,
            name,
            workgroup,
            library: "",
            scatter_pass: 0,
            channels: 0,
            params: PhantomData,
        }
    }

    /// The same kernel with the prelude of `library` in front of its own.
    pub const fn with_library(self, library: &'static str) -> Self {
        Self { library, ..self }
    }

    /// The same kernel run by workgroups of another shape.
    pub const fn with_workgroup(self, workgroup: (u32, u32)) -> Self {
        Self { workgroup, ..self }
    }

    /// The same kernel compiled for `channels` channels.
    pub const fn with_channels(self, channels: u32) -> Self {
        Self { channels, ..self }
    }

    /// The same kernel compiled for another scatter pass.
    pub const fn in_pass(self, scatter_pass: u32) -> Self {
        Self {
            scatter_pass,
            ..self
        }
    }

    /// The WGSL module for this kernel: `params` and its struct, the prelude and the section.
    pub fn module_source(&self) -> String {
        let mut sections = self.file.split("//#kernel ");
        let prelude = sections.next().unwrap_or_default();
        let body = sections
            .find(|s| s.lines().next().map(str::trim) == Some(self.name))
            .unwrap_or_else(|| panic!("shader section `{}` is missing", self.name));
        // Skip the section's name line.
        let body = body
            .split_once('\n')
            .map(|(_, rest)| rest)
            .unwrap_or_default();
        let library = self.library.split("//#kernel ").next().unwrap_or_default();
        format!(
            "{}\n{library}\n{prelude}\n{body}",
            params_declaration::<P>()
        )
    }
}

impl<P: KernelParams> KernelSource for WgslKernel<P> {
    fn source(&self) -> SourceTemplate {
        SourceTemplate::new(self.module_source())
            .register("wg_x", self.workgroup.0.to_string())
            .register("wg_y", self.workgroup.1.to_string())
            .register("scatter_pass", self.scatter_pass.to_string())
            .register("channels", self.channels.to_string())
    }

    fn id(&self) -> KernelId {
        // `Self` names `P`, which fixes the prepended declaration.
        let (wg_x, wg_y) = self.workgroup;
        KernelId::new::<Self>().info((
            self.name,
            wg_x,
            wg_y,
            self.file.len(),
            self.library.len(),
            self.scatter_pass,
            self.channels,
        ))
    }

    fn lang(&self) -> &'static str {
        "wgsl"
    }
}

/// The WGSL that declares `params`, the kernel parameters at binding 0.
fn params_declaration<P: KernelParams>() -> String {
    format!(
        "// Written by src/render/kernel.rs from the Rust struct `{name}`.\n{wgsl}\
         @group(0) @binding(0) var<storage, read_write> params: {name};\n",
        name = P::NAME,
        wgsl = P::WGSL,
    )
}

/// The parameters and buffers of one launch, in binding order.
pub struct Launch<'a, P> {
    kernel: WgslKernel<P>,
    template: &'a CubeTensor,
    buffers: Vec<cubecl::server::BufferBinding>,
}

impl<'a, P: KernelParams> Launch<'a, P> {
    /// Starts a launch; `template` provides the client and device.
    pub fn new(kernel: WgslKernel<P>, template: &'a CubeTensor) -> Self {
        Self {
            kernel,
            template,
            buffers: Vec::new(),
        }
    }

    /// Binds the next buffer, from binding 1 on.
    pub fn arg(mut self, tensor: &CubeTensor) -> Self {
        self.buffers.push(tensor.handle.clone().binding());
        self
    }

    /// Binds `params` at binding 0 and dispatches `groups` workgroups.
    pub fn run(self, params: &P, groups: (u32, u32, u32)) {
        let client = &self.template.client;
        let params = client.create_from_slice(bytemuck::bytes_of(params));
        let mut buffers = vec![params.binding()];
        buffers.extend(self.buffers);
        let cube_dim = CubeDim::new_3d(self.kernel.workgroup.0, self.kernel.workgroup.1, 1);
        client.launch(
            Box::new(SourceKernel::new(self.kernel, cube_dim)),
            CubeCount::Static(groups.0.max(1), groups.1.max(1), groups.2.max(1)),
            KernelArguments::new().with_buffers(buffers),
        );
    }
}

/// A new u32 scratch buffer of `len` elements, each set to `value`, viewed as an f32 tensor
/// (the kernels reinterpret it; it never escapes the op).
pub fn filled_u32(template: &CubeTensor, len: usize, value: u32) -> CubeTensor {
    let handle = template
        .client
        .create_from_slice(bytemuck::cast_slice(&vec![value; len.max(1)]));
    CubeTensor::new_contiguous(
        template.client.clone(),
        template.device.clone(),
        Shape::new([len.max(1)]),
        handle,
        DType::F32,
    )
}

/// An uninitialised f32 tensor whose every element the kernel writes.
pub fn empty(template: &CubeTensor, shape: Shape) -> CubeTensor {
    let n = shape.num_elements();
    let handle = template.client.empty(n.max(1) * 4);
    CubeTensor::new_contiguous(
        template.client.clone(),
        template.device.clone(),
        shape,
        handle,
        DType::F32,
    )
}

/// Workgroups needed to cover `n` items with groups of `size`.
pub fn groups(n: usize, size: u32) -> u32 {
    (n as u32).div_ceil(size)
}

/// The WebGPU limit on workgroups along one dispatch dimension.
const MAX_GROUPS_PER_DIMENSION: u32 = 65535;

/// Workgroups of `size` covering `n` items laid out in rows (a grid, as one dimension could not
/// hold them past 65535 groups), and the items per row: item `gid.y * row + gid.x`.
pub fn linear_groups(n: usize, size: u32) -> ((u32, u32, u32), u32) {
    let total = groups(n.max(1), size);
    let x = total.min(MAX_GROUPS_PER_DIMENSION);
    ((x, total.div_ceil(x), 1), x * size)
}

#[cfg(test)]
mod tests {
    use super::super::{
        antialias::AntialiasParams, interpolate::InterpolateParams, rasterize::RasterizeParams,
        texture::TextureParams,
    };
    use super::*;

    kernel_params! {
        /// Every scalar type, to see each one land where WGSL expects it.
        struct Mixed {
            first: u32,
            second: f32,
            third: i32,
            fourth: u32,
        }
    }

    /// (name, type) of each field of a generated WGSL struct, in declaration order.
    fn wgsl_fields(wgsl: &str) -> Vec<(&str, &str)> {
        let body = wgsl
            .split_once('{')
            .and_then(|(_, rest)| rest.split_once('}'))
            .unwrap()
            .0;
        body.split(',')
            .map(str::trim)
            .filter(|field| !field.is_empty())
            .map(|field| field.split_once(": ").unwrap())
            .collect()
    }

    /// (name, value) of each field as Rust's `Debug` lists them: in declaration order.
    fn rust_fields(debug: &str) -> Vec<(String, String)> {
        let body = debug
            .split_once('{')
            .and_then(|(_, rest)| rest.split_once('}'))
            .unwrap()
            .0;
        body.split(',')
            .map(|field| field.split_once(": ").unwrap())
            .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
            .collect()
    }

    #[test]
    fn generated_wgsl_matches_the_rust_layout() {
        let expected = "struct Mixed {\n    first: u32,\n    second: f32,\n    third: i32,\n    \
                        fourth: u32,\n}\n";
        assert_eq!(Mixed::WGSL, expected);
        assert_eq!(Mixed::NAME, "Mixed");
        let mixed = Mixed {
            first: 7,
            second: 1.5,
            third: -2,
            fourth: 9,
        };
        let words: &[u32] = bytemuck::cast_slice(bytemuck::bytes_of(&mixed));
        assert_eq!(words, [7, 1.5f32.to_bits(), (-2i32).cast_unsigned(), 9]);
    }

    /// Fills a params struct with 1, 2, 3, ... in memory order and checks that Rust's field
    /// order, the memory order and the WGSL declaration agree, one 4-byte word per field.
    fn check_layout<P: KernelParams>() {
        let mut params = P::zeroed();
        let words: &mut [u32] = bytemuck::cast_slice_mut(bytemuck::bytes_of_mut(&mut params));
        for (i, word) in words.iter_mut().enumerate() {
            *word = i as u32 + 1;
        }
        let rust = rust_fields(&format!("{params:?}"));
        let wgsl = wgsl_fields(P::WGSL);
        assert_eq!(size_of::<P>(), 4 * wgsl.len(), "{}", P::NAME);
        assert_eq!(rust.len(), wgsl.len(), "{}", P::NAME);
        for (i, ((rust_name, value), (wgsl_name, ty))) in rust.iter().zip(&wgsl).enumerate() {
            assert_eq!(rust_name, wgsl_name, "{}: field {i}", P::NAME);
            assert_eq!(
                *value,
                (i + 1).to_string(),
                "{}.{rust_name} is not word {i}",
                P::NAME
            );
            assert_eq!(*ty, "u32", "{}.{rust_name}", P::NAME);
        }
    }

    #[test]
    fn op_params_declare_their_fields_in_rust_order() {
        check_layout::<RasterizeParams>();
        check_layout::<InterpolateParams>();
        check_layout::<TextureParams>();
        check_layout::<AntialiasParams>();
    }

    /// A shader reads only fields its params struct declares, and leaves binding 0 to `params`.
    fn check_shader<P: KernelParams>(file: &str) {
        let fields: Vec<&str> = wgsl_fields(P::WGSL)
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        for (at, _) in file.match_indices("params.") {
            let rest = &file[at + "params.".len()..];
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
            let field = &rest[..end.unwrap_or(rest.len())];
            assert!(
                fields.contains(&field),
                "{} has no field `{field}`",
                P::NAME
            );
        }
        assert!(!file.contains("@binding(0)"), "binding 0 holds {}", P::NAME);
        assert!(
            !file.contains("info["),
            "a kernel still reads a positional `info` array"
        );
    }

    #[test]
    fn shaders_read_declared_params() {
        check_shader::<RasterizeParams>(include_str!("../../shaders/rasterize.wgsl"));
        check_shader::<InterpolateParams>(include_str!("../../shaders/interpolate.wgsl"));
        check_shader::<TextureParams>(include_str!("../../shaders/texture.wgsl"));
        check_shader::<AntialiasParams>(include_str!("../../shaders/antialias.wgsl"));
    }

    #[test]
    fn module_starts_with_params() {
        let file = "fn helper() {}\n//#kernel first\nfn main() {}\n//#kernel second\nfn other() {}";
        let source = WgslKernel::<Mixed>::new(file, "second", (8, 8)).module_source();
        let params = "@group(0) @binding(0) var<storage, read_write> params: Mixed;\n";
        assert!(
            source.contains(Mixed::WGSL) && source.contains(params),
            "{source}"
        );
        assert!(source.find(params) < source.find("fn helper"), "{source}");
        assert!(
            source.contains("fn other") && !source.contains("fn main"),
            "{source}"
        );
    }
}
