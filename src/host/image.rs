//! What a bitstream file says about itself: the id a slot reports once it is loaded and
//! the interface id it needs, read from the GBS (Intel OPAE) or AXLF/xclbin (AMD XRT)
//! header. A format without such a header is identified by its content (the first 128
//! bits of its sha256), which the `sim` and `fpga-manager` backends record. Pure: parses
//! bytes (`discover::targets::identify_file` reads a file's header).

use crate::host::id::Id128;

/// The GBS GUID 58656F6E-4650-4741-B747-425376303031.
const GBS_GUID: &[u8; 16] = b"XeonFPGA\xb7GBSv001";
/// The GBS `afu-image.magic-no`.
const GBS_MAGIC_NO: u64 = 0x1d1f_8680;
/// The AXLF magic.
const XCLBIN_MAGIC: &[u8; 8] = b"xclbin2\0";
/// Offsets in the AXLF header (`xclbin.h`).
const XCLBIN_INTERFACE_UUID: usize = 336;
const XCLBIN_UUID: usize = 416;
/// The most header bytes read: GBS JSON metadata is a few hundred bytes in practice.
pub const MAX_HEADER: usize = 1 << 20;

/// The container format of a bitstream file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    /// Intel OPAE green bitstream: GUID, JSON metadata, RBF.
    Gbs,
    /// AMD/Xilinx AXLF (`.xclbin`, `.xsabin`).
    Xclbin,
    /// Anything else (raw `.bit.bin`, `.rbf`, vendor FIM images).
    Opaque,
}

/// What a bitstream file says about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageIdentity {
    /// Its format.
    pub format: ImageFormat,
    /// The id a slot reports once it is loaded: GBS `accelerator-type-uuid`, the xclbin
    /// `uuid`, else the first 128 bits of the content's sha256.
    pub id: Id128,
    /// The interface id it needs: GBS `interface-uuid`, the xclbin interface uuid (when not
    /// zero).
    pub requires: Option<Id128>,
}

/// Identifies an image from its first bytes (at most [`MAX_HEADER`]) and the sha256 of
/// its whole content. A file that starts like a GBS or xclbin but whose header is broken is
/// an error, never silently opaque.
pub fn identify(header: &[u8], sha256: &str) -> Result<ImageIdentity, String> {
    if header.starts_with(GBS_GUID) {
        return gbs(header);
    }
    if header.starts_with(XCLBIN_MAGIC) {
        return xclbin(header);
    }
    let id = Id128::from_sha256_hex(sha256)
        .ok_or_else(|| format!("`{sha256}` is not a sha256 hex digest"))?;
    Ok(ImageIdentity {
        format: ImageFormat::Opaque,
        id,
        requires: None,
    })
}

fn gbs(bytes: &[u8]) -> Result<ImageIdentity, String> {
    let len = bytes
        .get(16..20)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
        .ok_or("GBS header ends before its metadata length")?;
    let json = bytes
        .get(20..20 + len)
        .ok_or("GBS metadata is longer than the file (or than 1 MiB)")?;
    let meta: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| format!("GBS metadata is not JSON: {e}"))?;
    let afu = &meta["afu-image"];
    if afu["magic-no"].as_u64() != Some(GBS_MAGIC_NO) {
        return Err(format!(
            "GBS `afu-image.magic-no` is {}, not {GBS_MAGIC_NO}",
            afu["magic-no"]
        ));
    }
    let field = |value: &serde_json::Value, name: &str| -> Result<Id128, String> {
        value
            .as_str()
            .ok_or(format!("GBS metadata has no `{name}`"))?
            .parse()
            .map_err(|e| format!("GBS `{name}`: {e}"))
    };
    let requires = field(&afu["interface-uuid"], "interface-uuid")?;
    let id = field(
        &afu["accelerator-clusters"][0]["accelerator-type-uuid"],
        "accelerator-clusters[0].accelerator-type-uuid",
    )?;
    Ok(ImageIdentity {
        format: ImageFormat::Gbs,
        id,
        requires: Some(requires),
    })
}

fn xclbin(bytes: &[u8]) -> Result<ImageIdentity, String> {
    let uuid_at = |offset: usize| -> Result<Id128, String> {
        let b = bytes
            .get(offset..offset + 16)
            .ok_or("xclbin header is shorter than the AXLF header")?;
        Ok(Id128(u128::from_be_bytes(b.try_into().expect("16 bytes"))))
    };
    let id = uuid_at(XCLBIN_UUID)?;
    let interface = uuid_at(XCLBIN_INTERFACE_UUID)?;
    Ok(ImageIdentity {
        format: ImageFormat::Xclbin,
        id,
        requires: (!interface.is_zero()).then_some(interface),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gbs_bytes(interface: &str, afu: &str) -> Vec<u8> {
        let meta = serde_json::json!({"version": 1, "afu-image": {
            "magic-no": GBS_MAGIC_NO, "interface-uuid": interface,
            "accelerator-clusters": [{"name": "x", "accelerator-type-uuid": afu}]}})
        .to_string();
        let mut out = GBS_GUID.to_vec();
        out.extend((meta.len() as u32).to_le_bytes());
        out.extend(meta.as_bytes());
        out.extend([0u8; 64]);
        out
    }

    #[test]
    fn gbs_gives_the_accelerator_and_interface_ids() {
        let bytes = gbs_bytes(
            "A108D99E-87EE-4F7E-A539-A23B77F2B433",
            "edbe210f-3a15-4660-a8c2-308517dccabf",
        );
        let id = identify(&bytes, "").unwrap();
        assert_eq!(id.format, ImageFormat::Gbs);
        assert_eq!(id.id.to_string(), "edbe210f3a154660a8c2308517dccabf");
        assert_eq!(
            id.requires.unwrap().to_string(),
            "a108d99e87ee4f7ea539a23b77f2b433"
        );
    }

    #[test]
    fn a_broken_gbs_is_an_error_not_opaque() {
        let mut bytes = gbs_bytes("not-a-uuid", "edbe210f-3a15-4660-a8c2-308517dccabf");
        assert!(identify(&bytes, "").unwrap_err().contains("interface-uuid"));
        bytes.truncate(18);
        assert!(identify(&bytes, "").is_err());
    }

    #[test]
    fn xclbin_gives_its_uuid_and_interface() {
        let mut bytes = vec![0u8; 512];
        bytes[..8].copy_from_slice(XCLBIN_MAGIC);
        bytes[XCLBIN_UUID..XCLBIN_UUID + 16].copy_from_slice(&0x951d9a99u128.to_be_bytes());
        let id = identify(&bytes, "").unwrap();
        assert_eq!(
            (id.format, id.id, id.requires),
            (ImageFormat::Xclbin, Id128(0x951d9a99), None)
        );
    }

    #[test]
    fn other_files_are_known_by_their_digest() {
        let sha = "53de928d10fd3939f4a6c99881dc92b3b9995ba401fedce29bf7c6bbec0daa1c";
        let id = identify(b"raw bits", sha).unwrap();
        assert_eq!(id.format, ImageFormat::Opaque);
        assert_eq!(id.id.to_string(), &sha[..32]);
        assert!(identify(b"raw bits", "short").is_err());
    }
}
