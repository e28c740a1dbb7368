//! What the IPv4 and IPv6 CIDR index tests share: rules as a map of
//! (masked address, length) → value, the model of the longest-prefix
//! match they are judged against, the file `map update --from-file` reads,
//! and a verdict.

use std::{collections::HashMap, hash::Hash, path::Path};

/// `XDP_DROP` and `XDP_PASS`, as `BPF_PROG_TEST_RUN` returns them.
pub const XDP_DROP: u32 = 1;
/// See [`XDP_DROP`].
pub const XDP_PASS: u32 = 2;

/// An address as an unsigned integer of its width (`u32`, `u128`).
pub trait Addr: Copy + Eq + Hash {
    /// Bits in an address.
    const WIDTH: u8;
    /// The first `len` bits set.
    fn mask(len: u8) -> Self;
    /// `self & mask`.
    fn masked(self, mask: Self) -> Self;
    /// The prefix as `map update` takes it: `198.51.100.0/24`.
    fn prefix(self, len: u8) -> String;
}

impl Addr for u32 {
    const WIDTH: u8 = 32;
    fn mask(len: u8) -> Self {
        if len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(len))
        }
    }
    fn masked(self, mask: Self) -> Self {
        self & mask
    }
    fn prefix(self, len: u8) -> String {
        format!("{}/{len}", std::net::Ipv4Addr::from(self))
    }
}

impl Addr for u128 {
    const WIDTH: u8 = 128;
    fn mask(len: u8) -> Self {
        xdp_progs::cidr6_index::mask(len)
    }
    fn masked(self, mask: Self) -> Self {
        self & mask
    }
    fn prefix(self, len: u8) -> String {
        format!("{}/{len}", std::net::Ipv6Addr::from(self))
    }
}

/// A trie's rules: (masked address, length) → value.
pub type Rules<A> = HashMap<(A, u8), u8>;

/// The model: for each length from the longest, a hash lookup; a value 0
/// passes.
pub fn drops<A: Addr>(rules: &Rules<A>, addr: A) -> bool {
    (0..=A::WIDTH)
        .rev()
        .find_map(|len| rules.get(&(addr.masked(A::mask(len)), len)))
        .is_some_and(|v| *v != 0)
}

/// The rules as a `--from-file` file `name` in `dir`; its path.
pub fn rules_file<A: Addr>(dir: &Path, name: &str, rules: &Rules<A>) -> String {
    let mut text = String::new();
    for ((a, l), v) in rules {
        text.push_str(&format!("{} {v}\n", a.prefix(*l)));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The verdict the model says.
pub fn verdict(drop: bool) -> u32 {
    if drop { XDP_DROP } else { XDP_PASS }
}
