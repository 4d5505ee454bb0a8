#!/usr/bin/env python3
"""Generates a large fpga-sync site repository for benchmarks.

    gen_fleet.py OUT_DIR [--hosts 2000] [--bitstreams 1000]

Writes one file per 100 bitstreams (shells and the partial bitstreams that need them,
each with a small file, half of them with a pinned sha256), 200 traits, 50 resource
classes, 100 flavors, and host groups of 10 explicitly named hosts each with two devices
and an override. Deterministic: the same arguments write the same bytes.
"""

import argparse
import hashlib
import os
import uuid

NS = uuid.UUID("6f1c1d3e-2b0a-4c55-9f3e-8d1b2a3c4d5e")


def uid(name):
    return str(uuid.uuid5(NS, name))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--hosts", type=int, default=2000)
    ap.add_argument("--bitstreams", type=int, default=1000)
    args = ap.parse_args()
    out = args.out
    os.makedirs(os.path.join(out, "files"), exist_ok=True)
    os.makedirs(os.path.join(out, "bitstreams"), exist_ok=True)
    os.makedirs(os.path.join(out, "hosts"), exist_ok=True)
    header = "apiVersion: fpga-sync/v1\n"

    shells = max(1, args.bitstreams // 10)
    docs_by_file = {}
    for i in range(args.bitstreams):
        is_shell = i < shells
        name = f"shell-{i:04d}" if is_shell else f"accel-{i:04d}"
        content = f"{name} bitstream payload\n".encode() * 64
        path = f"files/{name}.bin"
        with open(os.path.join(out, path), "wb") as f:
            f.write(content)
        lines = [header, "kind: Bitstream\n", f"name: {name}\n", f"file: {path}\n"]
        if i % 2 == 0:
            lines.append(f"sha256: {hashlib.sha256(content).hexdigest()}\n")
        lines += [
            "tags: [bench]\n",
            "metadata:\n",
            f"  bs-name: {name}\n",
            f"  bs-uuid: {uid(name)}\n",
            "  vendor: Intel\n",
            "  board: PAC-A10\n",
        ]
        if not is_shell:
            lines.append(f"  shell_id: {uid(f'shell-{i % shells:04d}')}\n")
        lines += [
            '  version: "1.0"\n',
            "  driver: OPAE\n",
            '  driver_ver: "2.1"\n',
            "  driver_path: /opt/opae\n",
            "  topology:\n",
            "    pf_num: 2\n",
            "    vf_num: 2\n",
            "    pf:\n",
            "      - {name: pf_1, pci_offset: 0, vf: [{name: vf_1, pci_offset: 1}]}\n",
            "      - {name: pf_2, pci_offset: 2, vf: [{name: vf_2, pci_offset: 3}]}\n",
            f"  region_uuid: {uid('region')}\n",
            f"  function_uuid: {uid('function-' + name)}\n",
            f"  function_name: {name}\n",
            "properties:\n",
            "  type: crypto\n",
        ]
        docs_by_file.setdefault(f"bitstreams/b{i // 100:02d}.yaml", []).append("".join(lines))

    traits = [f"CUSTOM_BENCH_TRAIT_{i:03d}" for i in range(200)]
    classes = [f"CUSTOM_BENCH_RC_{i:03d}" for i in range(50)]
    placement = [f"{header}kind: Trait\nname: {t}\n" for t in traits]
    placement += [f"{header}kind: ResourceClass\nname: {c}\n" for c in classes]
    docs_by_file["placement.yaml"] = placement

    flavors = []
    for i in range(100):
        flavors.append(
            f"{header}kind: Flavor\nname: bench.{i:03d}\nvcpus: 4\nram: 8192\ndisk: 40\n"
            f"extra_specs:\n  resources:{classes[i % 50]}: 1\n  trait:{traits[i % 200]}: required\n"
            f"  required1: {traits[(i + 1) % 200]},{traits[(i + 2) % 200]}\n"
        )
    docs_by_file["flavors.yaml"] = flavors

    per_group = 10
    groups = []
    for g in range(args.hosts // per_group):
        hosts = ", ".join(f"compute-{g * per_group + h:04d}" for h in range(per_group))
        shell = f"shell-{g % shells:04d}"
        accel = f"accel-{shells + (g % (args.bitstreams - shells)):04d}"
        # The partial bitstream's shell is shell-(i % shells); pin that one.
        i = shells + (g % (args.bitstreams - shells))
        shell = f"shell-{i % shells:04d}"
        groups.append(
            f"{header}kind: HostGroup\nname: group-{g:04d}\nhosts: [{hosts}]\nbackend: opae\n"
            "devices:\n"
            f'  - address: "0000:5e:00.0"\n    bitstream: {shell}\n'
            f'  - address: "0000:5e:00.0"\n    region: "0"\n    bitstream: {accel}\n'
            f"    resource_class: {classes[g % 50]}\n    traits: [{traits[g % 200]}]\n"
            f"overrides:\n  - hosts: [compute-{g * per_group:04d}]\n    devices:\n"
            f'      - address: "0000:86:00.0"\n        policy: manual\n'
        )
    for chunk in range(0, len(groups), 50):
        docs_by_file[f"hosts/h{chunk // 50:02d}.yaml"] = groups[chunk : chunk + 50]

    for path, docs in docs_by_file.items():
        with open(os.path.join(out, path), "w") as f:
            f.write("---\n".join(docs))


if __name__ == "__main__":
    main()
