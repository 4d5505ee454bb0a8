//! What a bitstream file says about itself: the id a slot reports once it is loaded and
//! the interface id it needs, read from the GBS (Intel OPAE) or AXLF/xclbin (AMD XRT)
//! header. A format without such a header is identified by its content (the first 128
//! bits of its sha256), which the `sim` and `fpga-manager` backends record. Pure: parses
//! bytes (`discover::targets::identify_file` reads a file's header).
//!
//! GBS files are read as OPAE reads them (`libbitstream` `opae_load_bitstream`, then
//! `xfpga` `validate_bitstream_metadata`/`read_gbs_metadata`, see
//! `tests/fixtures/hw/SOURCES.md` §6.1): the 16-byte GBS GUID, a little-endian u32
//! metadata length, and that many bytes of metadata which are cut at the first NUL and
//! parsed as the *first* JSON value, ignoring whatever follows it (NUL padding, a newline,
//! other bytes) as json-c does. What OPAE refuses is refused here, each with the check
//! that failed. A legacy GBS (u32 magic `0x1d1f8680`, then the interface id byte-reversed,
//! no metadata; §6.2) is recognised: it has an interface id but no accelerator id, so it is
//! known by its content and marked [`ImageFormat::LegacyGbs`]; OPAE's programming refuses
//! it, and so does fpga-sync.
//!
//! xclbin files are read as xocl reads them (§6.3): the `xclbin2` magic, a non-zero uuid,
//! and the interface from the `PARTITION_METADATA` section's `/interfaces/*/interface_uuid`
//! (a flattened device tree) when that section is within the bytes read, else the
//! header's copy of it.

use crate::host::id::Id128;

/// The GBS GUID 58656F6E-4650-4741-B747-425376303031.
const GBS_GUID: &[u8; 16] = b"XeonFPGA\xb7GBSv001";
/// The GBS `afu-image.magic-no`, also the first u32 of a legacy GBS.
const GBS_MAGIC_NO: u64 = 0x1d1f_8680;
/// `sizeof(opae_bitstream_header)`: the GUID, the length and `char metadata[1]`.
const GBS_MIN_LEN: usize = 21;
/// xfpga's `METADATA_MAX_LEN`: longer metadata is refused.
const GBS_METADATA_MAX: usize = 8192;
/// The AXLF magic.
const XCLBIN_MAGIC: &[u8; 8] = b"xclbin2\0";
/// Offsets in the AXLF header (`xclbin.h`).
const XCLBIN_INTERFACE_UUID: usize = 336;
const XCLBIN_UUID: usize = 416;
const XCLBIN_NUM_SECTIONS: usize = 448;
const XCLBIN_SECTIONS: usize = 456;
const XCLBIN_SECTION_HEADER: usize = 40;
/// `axlf_section_kind::PARTITION_METADATA`.
const PARTITION_METADATA: u32 = 20;
/// The most header bytes read: GBS JSON metadata is a few hundred bytes in practice.
pub const MAX_HEADER: usize = 1 << 20;

/// The container format of a bitstream file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    /// Intel OPAE green bitstream: GUID, JSON metadata, RBF.
    Gbs,
    /// The legacy GBS layout (magic `0x1d1f8680`, reversed interface id, RBF): an
    /// interface id but no metadata, so no accelerator id. OPAE no longer programs it.
    #[serde(rename = "gbs-legacy")]
    LegacyGbs,
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
    /// `uuid`, else (a legacy GBS too) the first 128 bits of the content's sha256.
    pub id: Id128,
    /// The interface id it needs: GBS `interface-uuid` (a legacy GBS's reversed id), the
    /// xclbin's `interface_uuid`.
    pub requires: Option<Id128>,
}

impl ImageIdentity {
    /// Why no backend programs this image, when none does: a legacy GBS.
    pub fn unprogrammable(&self) -> Option<String> {
        (self.format == ImageFormat::LegacyGbs).then(|| {
            format!(
                "it is a legacy GBS (magic 0x1d1f8680, interface {}, no metadata): it carries no accelerator id to read back, and OPAE's fpgaReconfigureSlot refuses it (fpgaconf exits 5)",
                self.requires.map_or("-".to_owned(), |i| i.to_string())
            )
        })
    }
}

/// Identifies an image from its first bytes (at most [`MAX_HEADER`]; the whole file when
/// it is shorter, which the GBS length check relies on) and the sha256 of its whole
/// content. A file that starts like a GBS or xclbin but that OPAE or xocl would refuse is
/// an error naming the check, never silently opaque.
pub fn identify(header: &[u8], sha256: &str) -> Result<ImageIdentity, String> {
    let digest = || {
        Id128::from_sha256_hex(sha256)
            .ok_or_else(|| format!("`{sha256}` is not a sha256 hex digest"))
    };
    // OPAE checks for the legacy layout first (opae_is_legacy_bitstream).
    if header.len() >= 20
        && u32::from_le_bytes(header[..4].try_into().expect("4")) as u64 == GBS_MAGIC_NO
    {
        let mut reversed: [u8; 16] = header[4..20].try_into().expect("16 bytes");
        reversed.reverse();
        return Ok(ImageIdentity {
            format: ImageFormat::LegacyGbs,
            id: digest()?,
            requires: Some(Id128(u128::from_be_bytes(reversed))),
        });
    }
    if header.starts_with(GBS_GUID) {
        return gbs(header);
    }
    if looks_like_gbs(header) {
        return Err(format!(
            "GBS check: its first 16 bytes are not the GBS GUID {} (OPAE: \"GBS guid is invalid\")",
            Id128(u128::from_be_bytes(*GBS_GUID)).dashed()
        ));
    }
    if header.starts_with(XCLBIN_MAGIC) {
        return xclbin(header);
    }
    if header.starts_with(b"xclbin") {
        return Err(
            "xclbin check: the magic is not `xclbin2` (xocl: \"invalid xclbin magic string\")"
                .to_owned(),
        );
    }
    Ok(ImageIdentity {
        format: ImageFormat::Opaque,
        id: digest()?,
        requires: None,
    })
}

/// A GBS whose GUID is damaged: JSON metadata with `afu-image` right after a length at
/// byte 16, or a GUID that differs in a few bytes.
fn looks_like_gbs(bytes: &[u8]) -> bool {
    let Some(guid) = bytes.get(..16) else {
        return false;
    };
    let differing = guid.iter().zip(GBS_GUID).filter(|(a, b)| a != b).count();
    let metadata = bytes.get(20..).unwrap_or_default();
    differing <= 4
        || (metadata.first() == Some(&b'{')
            && metadata
                .windows(b"\"afu-image\"".len())
                .take(GBS_METADATA_MAX)
                .any(|w| w == b"\"afu-image\""))
}

/// libuuid's `uuid_parse`: 36 characters, dashes at 8, 13, 18 and 23, hex elsewhere.
fn uuid_parse(text: &str) -> Option<Id128> {
    let b = text.as_bytes();
    let shaped = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    shaped.then(|| text.parse().ok()).flatten()
}

/// json-c's idea of an integer: a JSON number without fraction or exponent.
fn json_int(value: &serde_json::Value) -> Option<i128> {
    value
        .as_i64()
        .map(i128::from)
        .or_else(|| value.as_u64().map(i128::from))
}

fn gbs(bytes: &[u8]) -> Result<ImageIdentity, String> {
    if bytes.len() < GBS_MIN_LEN {
        return Err(format!(
            "GBS check: the file has {} bytes, fewer than the {GBS_MIN_LEN}-byte GBS header",
            bytes.len()
        ));
    }
    let len = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes")) as usize;
    if len >= GBS_METADATA_MAX {
        return Err(format!(
            "GBS check: metadata_length is {len}; OPAE refuses {GBS_METADATA_MAX} or more (METADATA_MAX_LEN)"
        ));
    }
    let Some(raw) = bytes.get(20..20 + len) else {
        return Err(format!(
            "GBS check: metadata_length {len} runs past the end of the file ({} bytes) (OPAE: \"invalid metadata length\")",
            bytes.len()
        ));
    };
    // OPAE copies the metadata into a NUL-terminated buffer and json-c parses it as a C
    // string: it stops at the first NUL and takes the first complete value.
    let text = raw.split(|b| *b == 0).next().unwrap_or_default();
    let meta = match serde_json::Deserializer::from_slice(text)
        .into_iter::<serde_json::Value>()
        .next()
    {
        None => {
            return Err(
                "GBS metadata check: the metadata is empty (OPAE: \"invalid JSON metadata\")"
                    .to_owned(),
            );
        }
        Some(Err(e)) => {
            return Err(format!(
                "GBS metadata check: it does not start with a JSON value: {e} (OPAE: \"invalid JSON metadata\")"
            ));
        }
        Some(Ok(v)) => v,
    };
    let check = |what: &str| format!("GBS metadata check: {what}");
    let Some(version) = meta.get("version") else {
        return Err(check(
            "no `version` key (the metadata must be a JSON object with one)",
        ));
    };
    match json_int(version) {
        // BBS 6.4.0 and 6.5.0 era files wrote their BBS version here.
        Some(1 | 640 | 650) => {}
        Some(other) => {
            return Err(check(&format!(
                "unsupported `version` {other}; OPAE reads version 1"
            )));
        }
        None => {
            return Err(check(&format!(
                "`version` is {version}, not a JSON integer"
            )));
        }
    }
    let afu = meta
        .get("afu-image")
        .filter(|a| a.is_object())
        .ok_or_else(|| check("no `afu-image` object"))?;
    match afu.get("magic-no") {
        None => return Err(check("no `afu-image.magic-no`")),
        Some(m) if json_int(m) == Some(i128::from(GBS_MAGIC_NO)) => {}
        Some(m) if json_int(m).is_some() => {
            return Err(check(&format!(
                "`afu-image.magic-no` is {m}, not {GBS_MAGIC_NO} (OPAE: \"invalid GBS magic\")"
            )));
        }
        Some(m) => {
            return Err(check(&format!(
                "`afu-image.magic-no` is {m}, not a JSON integer"
            )));
        }
    }
    let interface = afu
        .get("interface-uuid")
        .and_then(|v| v.as_str())
        .ok_or_else(|| check("no `afu-image.interface-uuid` string"))?;
    let requires = uuid_parse(interface).ok_or_else(|| {
        check(&format!(
            "`afu-image.interface-uuid` `{interface}` is not a dashed uuid (OPAE parses it with uuid_parse: 36 characters, dashes at 8-13-18-23)"
        ))
    })?;
    let clusters = afu
        .get("accelerator-clusters")
        .and_then(|v| v.as_array())
        .ok_or_else(|| check("no `afu-image.accelerator-clusters` list"))?;
    for (i, c) in clusters.iter().enumerate() {
        let at = |key: &str| format!("`afu-image.accelerator-clusters[{i}].{key}`");
        if c.get("total-contexts").and_then(json_int).is_none() {
            return Err(check(&format!("no integer {}", at("total-contexts"))));
        }
        if !c.get("name").is_some_and(serde_json::Value::is_string) {
            return Err(check(&format!("no string {}", at("name"))));
        }
        if !c
            .get("accelerator-type-uuid")
            .is_some_and(serde_json::Value::is_string)
        {
            return Err(check(&format!("no string {}", at("accelerator-type-uuid"))));
        }
    }
    let Some(first) = clusters.first() else {
        return Err(check(
            "`afu-image.accelerator-clusters` is empty, so there is no accelerator id (OPAE's fpgaReconfigureSlot: \"No accelerator-type-uuid in JSON metadata\")",
        ));
    };
    let afu_id = first["accelerator-type-uuid"].as_str().unwrap_or_default();
    let id = afu_id.parse().map_err(|e| {
        check(&format!(
            "`afu-image.accelerator-clusters[0].accelerator-type-uuid`: {e}"
        ))
    })?;
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
            .ok_or("xclbin check: the file is shorter than the AXLF header")?;
        Ok(Id128(u128::from_be_bytes(b.try_into().expect("16 bytes"))))
    };
    let id = uuid_at(XCLBIN_UUID)?;
    if id.is_zero() {
        return Err(
            "xclbin check: its uuid is all zeros (xocl: \"invalid xclbin uuid\")".to_owned(),
        );
    }
    let requires = match partition_interfaces(bytes)? {
        Some(interfaces) => match interfaces.as_slice() {
            [] => None,
            [one] => Some(interface_id(one)?),
            more => {
                return Err(format!(
                    "xclbin check: PARTITION_METADATA names {} interfaces ({}); xclbinutil builds a PR xclbin for one",
                    more.len(),
                    more.join(", ")
                ));
            }
        },
        // Not within the bytes read: xclbinutil copies interfaces[0] into the header.
        None => Some(uuid_at(XCLBIN_INTERFACE_UUID)?).filter(|i| !i.is_zero()),
    };
    Ok(ImageIdentity {
        format: ImageFormat::Xclbin,
        id,
        requires,
    })
}

/// An xclbin `interface_uuid` as xocl compares it: exactly as the shell's FDT writes them
/// (32 lower-case hex digits), by `strcmp`.
fn interface_id(text: &str) -> Result<Id128, String> {
    let exact = text.len() == 32
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !exact {
        return Err(format!(
            "xclbin check: PARTITION_METADATA interface_uuid `{text}` is not 32 lower-case hex digits; xocl compares it with the shell's interface_uuids as an exact string, so no shell accepts it"
        ));
    }
    text.parse().map_err(|e| format!("xclbin check: {e}"))
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn le_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// The `interface_uuid` strings under `/interfaces/*` of the `PARTITION_METADATA` section;
/// `None` when there is no such section within `bytes`.
fn partition_interfaces(bytes: &[u8]) -> Result<Option<Vec<String>>, String> {
    let count = bytes
        .get(XCLBIN_NUM_SECTIONS..XCLBIN_NUM_SECTIONS + 4)
        .map_or(0, |b| u32::from_le_bytes(b.try_into().expect("4 bytes")));
    for i in 0..count as usize {
        let at = XCLBIN_SECTIONS + i * XCLBIN_SECTION_HEADER;
        let Some(kind) = bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
        else {
            return Ok(None);
        };
        if kind != PARTITION_METADATA {
            continue;
        }
        let (Some(offset), Some(size)) = (le_u64(bytes, at + 24), le_u64(bytes, at + 32)) else {
            return Ok(None);
        };
        let Some(dtb) = usize::try_from(offset)
            .ok()
            .zip(usize::try_from(size).ok())
            .and_then(|(o, s)| bytes.get(o..o.checked_add(s)?))
        else {
            return Ok(None);
        };
        return fdt_interfaces(dtb).map(Some).ok_or_else(|| {
            "xclbin check: its PARTITION_METADATA is not a flattened device tree".to_owned()
        });
    }
    Ok(None)
}

/// The `interface_uuid` properties of the nodes below `/interfaces` in a flattened device
/// tree (DTB), in order.
fn fdt_interfaces(dtb: &[u8]) -> Option<Vec<String>> {
    const BEGIN_NODE: u32 = 1;
    const END_NODE: u32 = 2;
    const PROP: u32 = 3;
    const NOP: u32 = 4;
    const END: u32 = 9;
    if be32(dtb, 0)? != 0xd00d_feed {
        return None;
    }
    let structs = be32(dtb, 8)? as usize;
    let strings = be32(dtb, 12)? as usize;
    let c_str = |at: usize| -> Option<&[u8]> {
        let rest = dtb.get(at..)?;
        Some(&rest[..rest.iter().position(|b| *b == 0)?])
    };
    let mut path: Vec<&[u8]> = Vec::new();
    let mut out = Vec::new();
    let mut at = structs;
    loop {
        let token = be32(dtb, at)?;
        at += 4;
        match token {
            BEGIN_NODE => {
                let name = c_str(at)?;
                at += (name.len() + 1).next_multiple_of(4);
                path.push(name);
            }
            END_NODE => {
                path.pop()?;
            }
            PROP => {
                let len = be32(dtb, at)? as usize;
                let name = c_str(strings + be32(dtb, at + 4)? as usize)?;
                let value = dtb.get(at + 8..at + 8 + len)?;
                at += 8 + len.next_multiple_of(4);
                // path: ["", "interfaces", "@0"].
                if name == b"interface_uuid" && path.len() == 3 && path[1] == b"interfaces" {
                    let text = value.split(|b| *b == 0).next().unwrap_or_default();
                    out.push(String::from_utf8_lossy(text).into_owned());
                }
            }
            NOP => {}
            END => return Some(out),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gbs_bytes(interface: &str, afu: &str) -> Vec<u8> {
        let meta = serde_json::json!({"version": 1, "afu-image": {
            "magic-no": GBS_MAGIC_NO, "interface-uuid": interface,
            "accelerator-clusters": [{"name": "x", "total-contexts": 1,
                "accelerator-type-uuid": afu}]}})
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
        assert_eq!(id.unprogrammable(), None);
    }

    #[test]
    fn a_broken_gbs_is_an_error_not_opaque() {
        let mut bytes = gbs_bytes("not-a-uuid", "edbe210f-3a15-4660-a8c2-308517dccabf");
        assert!(identify(&bytes, "").unwrap_err().contains("interface-uuid"));
        bytes.truncate(18);
        assert!(identify(&bytes, "").is_err());
    }

    #[test]
    fn the_metadata_is_cut_at_its_first_nul_and_read_up_to_its_first_value() {
        let good = gbs_bytes(
            "a108d99e-87ee-4f7e-a539-a23b77f2b433",
            "edbe210f-3a15-4660-a8c2-308517dccabf",
        );
        let len = u32::from_le_bytes(good[16..20].try_into().unwrap()) as usize;
        // The length now also covers 8 NULs and then bytes that are not JSON.
        let mut padded = good[..20 + len].to_vec();
        padded.extend([0u8; 8]);
        padded.extend(b"} not json");
        padded[16..20].copy_from_slice(&((len + 18) as u32).to_le_bytes());
        assert_eq!(identify(&padded, "").unwrap(), identify(&good, "").unwrap());
        // A NUL inside the object leaves an incomplete value: refused.
        let mut cut = good.clone();
        cut[20 + len / 2] = 0;
        assert!(
            identify(&cut, "")
                .unwrap_err()
                .contains("invalid JSON metadata"),
            "{:?}",
            identify(&cut, "")
        );
    }

    #[test]
    fn a_legacy_gbs_gives_its_reversed_interface_and_is_known_by_content() {
        let interface: u128 = 0x027f3a1a_cb3b0c87_534b567d_4af693e9;
        let mut bytes = 0x1d1f_8680u32.to_le_bytes().to_vec();
        let mut reversed = interface.to_be_bytes();
        reversed.reverse();
        bytes.extend(reversed);
        bytes.extend(b"rbf");
        let sha = "53de928d10fd3939f4a6c99881dc92b3b9995ba401fedce29bf7c6bbec0daa1c";
        let id = identify(&bytes, sha).unwrap();
        assert_eq!(id.format, ImageFormat::LegacyGbs);
        assert_eq!(id.requires, Some(Id128(interface)));
        assert_eq!(id.id.to_string(), &sha[..32]);
        assert!(id.unprogrammable().unwrap().contains("legacy GBS"));
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
        bytes[XCLBIN_UUID..XCLBIN_UUID + 16].fill(0);
        assert!(
            identify(&bytes, "")
                .unwrap_err()
                .contains("invalid xclbin uuid")
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
