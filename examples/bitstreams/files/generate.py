#!/usr/bin/env python3
"""Writes the example bitstream files of this site repository, deterministically.

Run it from anywhere: `python3 examples/bitstreams/files/generate.py`. It rewrites the
same bytes every time (no clock, no randomness) and prints each file's sha256, which is
what the `sha256:` pins in `examples/bitstreams/*.yaml` hold. Python 3 standard library
only.

None of these files programs real hardware. The payloads are pseudo-random filler; only
the headers carry meaning:

* `*.gbs` (Intel OPAE "green bitstream" / AF file): a valid GBS header, i.e. the 16-byte
  GUID 58656F6E-4650-4741-B747-425376303031 (b"XeonFPGA\\xb7GBSv001"), a little-endian u32
  metadata length, the JSON metadata (version 1, `afu-image.magic-no` 0x1d1f8680,
  `interface-uuid` = the bitstream's `region_uuid`, `accelerator-type-uuid` = its
  `function_uuid`), then the payload that would be the RBF. `packager gbs-info` and
  OPAE's `fpgaconf` read such a header.
* `pac_a10_fim_1.2.1.bin` (the PAC A10 static region, "FIM", i.e. the shell): no standard
  container; a short ASCII banner naming the shell's `bs-uuid`, then filler. fpga-sync
  checks the shell on a device and never flashes it, so the bytes only need to be stable.
* `*.xsabin` / `*.xclbin` (Xilinx AXLF): a minimal but well-formed AXLF header: magic
  "xclbin2\\0", signature length -1, reserved bytes 0xFF, an empty key block, the
  152-byte `axlf_header` (length, timestamps, version 2.16.204, mode, interface uuid,
  platform VBNV, the xclbin `uuid` = the bitstream's `bs-uuid`, one section), and one
  40-byte section header for a BITSTREAM section holding the filler.
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent

# The ids, as in examples/bitstreams/*.yaml. Keep the two in step.
INTEL_SHELL_BS_UUID = "b1daf096-461e-4638-a36a-db06ffecb638"   # pac-a10-fim-1.2.1  bs-uuid
INTEL_REGION_UUID = "a108d99e-87ee-4f7e-a539-a23b77f2b433"     # PR interface id of that FIM
AES_FUNCTION_UUID = "edbe210f-3a15-4660-a8c2-308517dccabf"     # aes-128 function / AFU id
XILINX_SHELL_BS_UUID = "6ec0c6bb-71ca-48c4-bf48-1190fab7bdc5"  # u250 xdma shell bs-uuid
XILINX_REGION_UUID = "9e842030-8628-48e8-a810-c0a37d87fa61"    # interface uuid of that shell
GZIP_BS_UUID = "951d9a99-c119-4bb7-922d-5a0f7026942f"          # u250 gzip xclbin bs-uuid

GBS_GUID = b"XeonFPGA\xb7GBSv001"
GBS_MAGIC_NO = 0x1D1F8680  # 488605312
U250_VBNV = "xilinx_u250_gen3x16_xdma_shell_4_1"
# 2024-01-15T00:00:00Z, fixed so the files never change.
BUILD_TIME = 1705276800


def filler(seed: str, size: int) -> bytes:
    """`size` pseudo-random bytes: sha256(seed || counter) blocks, cut to size."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}/{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def gbs(platform: str, interface_uuid: str, afu_name: str, afu_uuid: str, seed: str) -> bytes:
    metadata = {
        "version": 1,
        "platform-name": platform,
        "afu-image": {
            "magic-no": GBS_MAGIC_NO,
            "interface-uuid": interface_uuid,
            "accelerator-clusters": [
                {"name": afu_name, "total-contexts": 1, "accelerator-type-uuid": afu_uuid}
            ],
        },
    }
    text = json.dumps(metadata).encode()
    return GBS_GUID + struct.pack("<I", len(text)) + text + filler(seed, 2048)


def fim(bs_uuid: str, seed: str) -> bytes:
    banner = (
        "fpga-sync example FIM image (not flashable)\n"
        f"board=PAC-A10 fim=1.2.1 bs-uuid={bs_uuid}\n"
    ).encode()
    return banner.ljust(128, b"\0") + filler(seed, 4096 - 128)


def axlf(mode: int, interface_uuid: str | None, xclbin_uuid: str, seed: str, payload_size: int) -> bytes:
    """A minimal AXLF file with one BITSTREAM section (layout of XRT's xclbin.h)."""
    headers_end = 304 + 152 + 40  # struct axlf with one section header: 496 bytes
    payload = filler(seed, payload_size)
    length = headers_end + len(payload)
    unique_id = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "little")
    out = bytearray()
    out += b"xclbin2\0"
    out += struct.pack("<i", -1)            # m_signature_length: unsigned
    out += b"\xff" * 28                     # reserved
    out += b"\0" * 256                      # m_keyBlock
    out += struct.pack("<Q", unique_id)     # m_uniqueId
    # axlf_header
    out += struct.pack("<QQQ", length, BUILD_TIME, 0)  # m_length, m_timeStamp, m_featureRomTimeStamp
    out += struct.pack("<HBB", 204, 2, 16)  # version 2.16.204 (patch, major, minor)
    out += struct.pack("<HH", mode, 0)      # m_mode, m_actionMask
    out += uuid.UUID(interface_uuid).bytes if interface_uuid else b"\0" * 16
    out += U250_VBNV.encode().ljust(64, b"\0")
    out += uuid.UUID(xclbin_uuid).bytes     # uuid of this xclbin
    out += b"\0" * 16                       # m_debug_bin
    out += struct.pack("<I", 1) + b"\0" * 4  # m_numSections, padding to 8
    # axlf_section_header
    out += struct.pack("<I", 0)             # BITSTREAM
    out += b"bitstream".ljust(16, b"\0") + b"\0" * 4
    out += struct.pack("<QQ", headers_end, len(payload))
    assert len(out) == headers_end
    return bytes(out + payload)


FILES = {
    "pac_a10_fim_1.2.1.bin": lambda: fim(INTEL_SHELL_BS_UUID, "pac-a10-fim-1.2.1"),
    "pac_a10_aes128_1.0.gbs": lambda: gbs(
        "PAC-A10", INTEL_REGION_UUID, "aes_128", AES_FUNCTION_UUID, "pac-a10-aes128-1.0"
    ),
    "pac_a10_aes128_1.1.gbs": lambda: gbs(
        "PAC-A10", INTEL_REGION_UUID, "aes_128", AES_FUNCTION_UUID, "pac-a10-aes128-1.1"
    ),
    # The shell partition of a 2RP platform: an AXLF too (mode 0, FLAT), no interface uuid.
    "u250_gen3x16_xdma_shell_4_1.xsabin": lambda: axlf(
        0, None, XILINX_SHELL_BS_UUID, "u250-xdma-shell-4.1", 3072
    ),
    # The user xclbin for the shell's dynamic region: mode 1 (PR).
    "u250_gzip_1.0.xclbin": lambda: axlf(
        1, XILINX_REGION_UUID, GZIP_BS_UUID, "u250-gzip-1.0", 1536
    ),
}


def main() -> int:
    for name, build in FILES.items():
        data = build()
        (HERE / name).write_bytes(data)
        print(f"{hashlib.sha256(data).hexdigest()}  {name}  ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
