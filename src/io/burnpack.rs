//! Burnpack records, the one weight format of every network and texture model: modules to
//! bytes (f32, or f16 storage) with metadata, and bytes back into a freshly built module.

use burn::module::Module;
use burn::store::{BurnpackStore, FloatCastAdapter, ModuleSnapshot};
use burn::tensor::DType;

use crate::error::{Error, Result};

/// Serialises `module`, storing floats as f16 when `half`, with `metadata` entries.
pub(crate) fn write<M: Module + ModuleSnapshot>(
    module: &M,
    half: bool,
    metadata: &[(&str, String)],
    name: &str,
) -> Result<Vec<u8>> {
    let mut store = BurnpackStore::from_bytes(None);
    for (k, v) in metadata {
        store = store.metadata(*k, v.clone());
    }
    if half {
        store = store.with_to_adapter(FloatCastAdapter::to(DType::F16));
    }
    module
        .save_into(&mut store)
        .map_err(|e| Error::model(name, e.to_string()))?;
    Ok(store
        .get_bytes()
        .map_err(|e| Error::model(name, e.to_string()))?
        .to_vec())
}

/// Fills a freshly built `module` with the record in `bytes`, widening any float storage to
/// f32. Every parameter must be present with the right shape and nothing left over;
/// `mismatch` opens the error that says otherwise.
pub(crate) fn read<M: Module + ModuleSnapshot>(
    mut module: M,
    bytes: Vec<u8>,
    name: &str,
    mismatch: &str,
) -> Result<M> {
    let mut store = BurnpackStore::from_bytes(Some(burn::tensor::Bytes::from_bytes_vec(bytes)))
        .with_from_adapter(FloatCastAdapter::to(DType::F32));
    let result = module
        .load_from(&mut store)
        .map_err(|e| Error::model(name, e.to_string()))?;
    if !result.errors.is_empty() || !result.missing.is_empty() || !result.unused.is_empty() {
        return Err(Error::model(
            name,
            format!(
                "{mismatch}: errors {:?}, missing {:?}, unused {:?}",
                result.errors, result.missing, result.unused
            ),
        ));
    }
    Ok(module)
}

/// A metadata entry of a burnpack file; `what` names the kind of file expected.
pub(crate) fn metadata(bytes: &[u8], key: &str, what: &str, name: &str) -> Result<String> {
    let reader = burn_pack::Reader::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes.to_vec()))
        .map_err(|e| Error::model(name, format!("not a burnpack file: {e:?}")))?;
    reader
        .metadata()
        .get(key)
        .cloned()
        .ok_or_else(|| Error::model(name, format!("no `{key}` metadata: not a {what}")))
}
