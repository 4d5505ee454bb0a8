//! Digests computed while data streams: sha256 (fpga-sync's content identity) and Glance's
//! multihash (`os_hash_algo`, sha512 by default) side by side, in one pass. Pure.

use sha2::{Digest, Sha256, Sha384, Sha512};

/// A secure hash Glance may use for `os_hash_value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlgo {
    /// sha256.
    Sha256,
    /// sha384.
    Sha384,
    /// sha512, Glance's default.
    Sha512,
}

impl HashAlgo {
    /// The algorithm Glance names `name`, if fpga-sync knows it.
    pub fn from_name(name: &str) -> Option<HashAlgo> {
        match name {
            "sha256" => Some(HashAlgo::Sha256),
            "sha384" => Some(HashAlgo::Sha384),
            "sha512" => Some(HashAlgo::Sha512),
            _ => None,
        }
    }

    /// Glance's name for it.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgo::Sha256 => "sha256",
            HashAlgo::Sha384 => "sha384",
            HashAlgo::Sha512 => "sha512",
        }
    }
}

enum Multi {
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

/// sha256 and a multihash, fed chunk by chunk.
pub struct Hashers {
    sha256: Sha256,
    multi: Multi,
    algo: HashAlgo,
    bytes: u64,
}

/// The digests of a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digests {
    /// Bytes seen.
    pub size: u64,
    /// sha256, lower-case hex.
    pub sha256: String,
    /// The multihash algorithm.
    pub algo: HashAlgo,
    /// The multihash, lower-case hex.
    pub multihash: String,
}

impl Hashers {
    /// Fresh hashers with `algo` as the multihash.
    pub fn new(algo: HashAlgo) -> Self {
        let multi = match algo {
            HashAlgo::Sha256 => Multi::Sha256(Sha256::new()),
            HashAlgo::Sha384 => Multi::Sha384(Sha384::new()),
            HashAlgo::Sha512 => Multi::Sha512(Sha512::new()),
        };
        Hashers {
            sha256: Sha256::new(),
            multi,
            algo,
            bytes: 0,
        }
    }

    /// Feeds a chunk.
    pub fn update(&mut self, chunk: &[u8]) {
        self.sha256.update(chunk);
        match &mut self.multi {
            Multi::Sha256(h) => h.update(chunk),
            Multi::Sha384(h) => h.update(chunk),
            Multi::Sha512(h) => h.update(chunk),
        }
        self.bytes += chunk.len() as u64;
    }

    /// Bytes fed so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The digests.
    pub fn finish(self) -> Digests {
        let multihash = match self.multi {
            Multi::Sha256(h) => hex(&h.finalize()),
            Multi::Sha384(h) => hex(&h.finalize()),
            Multi::Sha512(h) => hex(&h.finalize()),
        };
        Digests {
            size: self.bytes,
            sha256: hex(&self.sha256.finalize()),
            algo: self.algo,
            multihash,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_digests_equal_one_shot_ones() {
        let mut h = Hashers::new(HashAlgo::Sha512);
        h.update(b"ab");
        h.update(b"c");
        let d = h.finish();
        assert_eq!(d.size, 3);
        assert_eq!(
            d.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(d.multihash.starts_with("ddaf35a193617aba"));
        assert_eq!(
            HashAlgo::from_name("sha384").map(HashAlgo::name),
            Some("sha384")
        );
        assert_eq!(HashAlgo::from_name("md5"), None);
    }
}
