//! The crate's one error type: each variant is something a user can act on.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The browser has no WebGPU (`navigator.gpu` missing) or gave no adapter/device.
    #[error("WebGPU is not available: {0}")]
    NoWebGpu(String),
    /// No native GPU adapter could be opened.
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),
    /// A model or weight file is missing, corrupt, or of another version.
    #[error("model file {path}: {reason}")]
    ModelFile { path: String, reason: String },
    /// Image bytes could not be decoded.
    #[error("cannot decode the image: {0}")]
    Image(String),
    /// No face was found in the photo.
    #[error(
        "no face found in the photo (faces narrower than about 1/30 of the photo's longer side, or than 16 px, are not found)"
    )]
    NoFace,
    /// No upright face, but one appears when the photo is turned by the given quarter turns
    /// (degrees clockwise): the photo is on its side or upside down (an orientation its EXIF
    /// data does not record).
    #[error(
        "no upright face, but one appears with the photo turned {0}° clockwise: the photo is on its side or upside down; turn it upright and try again"
    )]
    FaceRotated(u32),
    /// The face mesh does not recognise a face in the detector's box (its face flag, given,
    /// is below the gate): most often a face seen in profile.
    #[error("the face mesh sees no face in the detected box (face flag {0:.2}, the gate is 0.2)")]
    MeshRejected(f32),
    /// The caller cancelled the operation.
    #[error("cancelled")]
    Cancelled,
    /// Training produced a non-finite loss and stopped (its last checkpoint stays). A fit does
    /// not fail this way: a stage that meets a non-finite loss stops with the last good
    /// parameters, and the result carries a warning.
    #[error("the fit diverged: {0}")]
    Diverged(String),
    /// A renderer precondition failed (shapes, indices, resolution).
    #[error("render: {0}")]
    Render(#[from] RenderError),
    /// Invalid argument or option.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// Reading a tensor back from the device failed.
    #[error("device execution failed: {0}")]
    Execution(String),
    /// The GPU device was lost (a driver reset or timeout, the GPU removed, the browser taking
    /// it back): nothing more runs on it, and the engine must open a new one (the package
    /// restarts its worker and runs the fit again once).
    #[error("the GPU device was lost: {0}")]
    DeviceLost(String),
    /// File system error with the path involved.
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl Error {
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    pub fn model(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::ModelFile {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// No usable face in a photo: none at all, or only one the photo must be turned to show.
    /// Batch work (several-photo fits, evaluations, corpus building) skips such a photo.
    pub fn is_no_face(&self) -> bool {
        matches!(self, Error::NoFace | Error::FaceRotated(_))
    }

    /// A short stable name of the variant, for the JS side to switch on.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::NoWebGpu(_) => "NoWebGpu",
            Error::NoAdapter(_) => "NoAdapter",
            Error::ModelFile { .. } => "ModelFile",
            Error::Image(_) => "Image",
            Error::NoFace => "NoFace",
            Error::MeshRejected(_) => "MeshRejected",
            Error::FaceRotated(_) => "FaceRotated",
            Error::Cancelled => "Cancelled",
            Error::Diverged(_) => "Diverged",
            Error::Render(_) => "Render",
            Error::Invalid(_) => "Invalid",
            Error::Execution(_) => "Execution",
            Error::DeviceLost(_) => "DeviceLost",
            Error::Io { .. } => "Io",
        }
    }
}

/// Why a render op refused its input (kept here, under every layer, so that [`Error`] can wrap
/// it without the error type importing the renderer).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RenderError {
    #[error("the mesh has no triangles or no vertices")]
    EmptyMesh,
    #[error("triangle {triangle} uses vertex {index}, but the mesh has {vertices} vertices")]
    IndexOutOfRange {
        triangle: usize,
        index: i64,
        vertices: usize,
    },
    #[error("{what}: expected shape {expected}, got {got:?}")]
    Shape {
        what: &'static str,
        expected: String,
        got: Vec<usize>,
    },
    #[error(
        "resolution {width}x{height} (batch {batch}) is outside what the device can render (at most {max_side} per side and {max_pixels} pixels per call)"
    )]
    Resolution {
        width: usize,
        height: usize,
        batch: usize,
        max_side: usize,
        max_pixels: usize,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
