//! The `topology` of a bitstream: its physical functions and their virtual functions, as
//! structured YAML, checked for consistency and turned into the spec's JSON for Glance.
//! Pure: no I/O.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The functions a loaded bitstream exposes (the spec's reference template).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Number of physical functions; must equal the length of `pf`.
    pub pf_num: u32,
    /// Number of virtual functions; must equal the number of entries in all `pf[].vf`.
    pub vf_num: u32,
    /// The physical functions.
    #[serde(default)]
    pub pf: Vec<PhysicalFunction>,
}

/// One physical function.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PhysicalFunction {
    /// Name, unique in the topology, e.g. `pf_1`.
    #[schemars(length(min = 1))]
    pub name: String,
    /// What the function can do (free text).
    #[serde(default)]
    pub capability: String,
    /// Key performance indicator (free text).
    #[serde(default)]
    pub kpi: String,
    /// Offset of the function from the device's PCI function number.
    pub pci_offset: u32,
    /// The virtual functions of this physical function.
    #[serde(default)]
    pub vf: Vec<VirtualFunction>,
}

/// One virtual function.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VirtualFunction {
    /// Name, unique in the topology, e.g. `vf_1`.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Offset of the function from the device's PCI function number.
    pub pci_offset: u32,
}

/// An inconsistency inside a topology, with the JSON pointer (relative to the topology) of
/// the value at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopologyProblem {
    /// Pointer relative to the topology, e.g. `/pf_num` or `/pf/1/vf/0/name`.
    pub pointer: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: String,
}

impl Topology {
    /// Every inconsistency: counts that disagree with the lists, names or PCI offsets used
    /// twice.
    pub fn problems(&self) -> Vec<TopologyProblem> {
        let mut problems = Vec::new();
        if self.pf.len() != self.pf_num as usize {
            problems.push(TopologyProblem {
                pointer: "/pf_num".into(),
                message: format!(
                    "`pf_num` is {} but `pf` lists {} physical functions",
                    self.pf_num,
                    self.pf.len()
                ),
                help: format!(
                    "set `pf_num: {}` or list {} entries under `pf`",
                    self.pf.len(),
                    self.pf_num
                ),
            });
        }
        let vfs: usize = self.pf.iter().map(|pf| pf.vf.len()).sum();
        if vfs != self.vf_num as usize {
            problems.push(TopologyProblem {
                pointer: "/vf_num".into(),
                message: format!(
                    "`vf_num` is {} but the physical functions list {vfs} virtual functions",
                    self.vf_num
                ),
                help: format!(
                    "set `vf_num: {vfs}` or change the `vf` lists to hold {} in all",
                    self.vf_num
                ),
            });
        }
        let mut names = std::collections::BTreeMap::new();
        let mut offsets = std::collections::BTreeMap::new();
        for (i, pf) in self.pf.iter().enumerate() {
            let entries = std::iter::once((format!("/pf/{i}"), &pf.name, pf.pci_offset)).chain(
                pf.vf
                    .iter()
                    .enumerate()
                    .map(move |(j, vf)| (format!("/pf/{i}/vf/{j}"), &vf.name, vf.pci_offset)),
            );
            for (pointer, name, offset) in entries {
                if let Some(first) = names.insert(name.clone(), pointer.clone()) {
                    problems.push(TopologyProblem {
                        pointer: format!("{pointer}/name"),
                        message: format!("function name `{name}` is used twice in this topology"),
                        help: format!(
                            "it is first used at `{first}`; give each function its own name"
                        ),
                    });
                }
                if let Some(first) = offsets.insert(offset, pointer.clone()) {
                    problems.push(TopologyProblem {
                        pointer: format!("{pointer}/pci_offset"),
                        message: format!("PCI offset {offset} is used twice in this topology"),
                        help: format!(
                            "it is first used at `{first}`; each function has its own PCI function"
                        ),
                    });
                }
            }
        }
        problems
    }

    /// The spec's JSON template, compact, with `pci_offset` as strings as the spec writes
    /// them. This is the value of the `topology` image property.
    pub fn to_glance_json(&self) -> String {
        let pf: Vec<serde_json::Value> = self
            .pf
            .iter()
            .map(|pf| {
                serde_json::json!({
                    "name": pf.name,
                    "capability": pf.capability,
                    "kpi": pf.kpi,
                    "pci_offset": pf.pci_offset.to_string(),
                    "vf": pf.vf.iter().map(|vf| serde_json::json!({
                        "name": vf.name,
                        "pci_offset": vf.pci_offset.to_string(),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        serde_json::json!({"pf_num": self.pf_num, "vf_num": self.vf_num, "pf": pf}).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_example() -> Topology {
        let pf = |n: u32| PhysicalFunction {
            name: format!("pf_{n}"),
            capability: String::new(),
            kpi: String::new(),
            pci_offset: 2 * (n - 1),
            vf: vec![VirtualFunction {
                name: format!("vf_{n}"),
                pci_offset: 2 * (n - 1) + 1,
            }],
        };
        Topology {
            pf_num: 2,
            vf_num: 2,
            pf: vec![pf(1), pf(2)],
        }
    }

    #[test]
    fn spec_example_is_consistent_and_renders_the_spec_json() {
        let topology = spec_example();
        assert_eq!(topology.problems(), vec![]);
        assert_eq!(
            topology.to_glance_json(),
            r#"{"pf_num":2,"vf_num":2,"pf":[{"name":"pf_1","capability":"","kpi":"","pci_offset":"0","vf":[{"name":"vf_1","pci_offset":"1"}]},{"name":"pf_2","capability":"","kpi":"","pci_offset":"2","vf":[{"name":"vf_2","pci_offset":"3"}]}]}"#
        );
    }

    #[test]
    fn counts_names_and_offsets_are_checked() {
        let mut topology = spec_example();
        topology.pf_num = 3;
        topology.vf_num = 1;
        topology.pf[1].vf[0].name = "vf_1".into();
        topology.pf[1].pci_offset = 1;
        let pointers: Vec<String> = topology.problems().into_iter().map(|p| p.pointer).collect();
        assert_eq!(
            pointers,
            ["/pf_num", "/vf_num", "/pf/1/pci_offset", "/pf/1/vf/0/name"]
        );
    }
}
