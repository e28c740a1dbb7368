//! Rate limits, the firewall's `rate4`/`rate6`: a source prefix's packets
//! and bytes per second with their bursts, as a policy says them and as
//! the maps hold them, and the one rule of what a limit may be (kept by
//! `apply` and by every `map update`).

use serde::{Deserialize, Serialize};
use xdp_progs::xdpfw::{RATE_RULE_BYTES, Rate};

use crate::model::guard::{Cidr, GUARD_MARK};

/// Bytes of a `rate4`/`rate6` value: the rule, then the datapath's
/// buckets of a per-prefix limit.
pub const VALUE_LEN: usize = std::mem::size_of::<Rate>();

/// Where a value's `owner` is (its low byte: the mark of guard's limits).
pub const OWNER_AT: usize = 36;

/// The fields of a value that make the rule (what an operator writes);
/// the others are the datapath's (`owner`, the buckets).
pub const RULE_FIELDS: [&str; 5] = ["pps", "burst", "bytes_per_sec", "burst_bytes", "per_prefix"];

/// The most packets per second a limit takes (a packet's cost in the
/// datapath is whole nanoseconds: 1 at 10^9 pps).
pub const MAX_PPS: u64 = 1_000_000_000;
/// The most bytes per second a limit takes (a terabyte: far beyond a NIC).
pub const MAX_BYTES_PER_SEC: u64 = 1_000_000_000_000;
/// The largest burst, in packets or bytes (the datapath's bound).
pub const MAX_BURST: u64 = 1 << 32;

/// Who shares a limit's buckets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Per {
    /// Each source of the prefix has buckets of its own.
    #[default]
    Source,
    /// The prefix's sources share one pair of buckets.
    Prefix,
}

/// One rate limit of a policy's `rules.rate_limits`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// The sources limited: a prefix (`10.0.0.0/8`) or an address.
    #[serde(with = "cidr_text")]
    pub cidr: Cidr,
    /// Packets per second; 0 or absent: no packet limit.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pps: u64,
    /// Packets at once; 0 or absent: a tenth of a second of `pps`, at
    /// least 1.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub burst: u64,
    /// Bytes per second, frames as received; 0 or absent: no byte limit.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bytes_per_sec: u64,
    /// Bytes at once; 0 or absent: a tenth of a second of
    /// `bytes_per_sec`, at least the frame.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub burst_bytes: u64,
    /// A bucket per source (the default) or one for the prefix.
    #[serde(default)]
    pub per: Per,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

mod cidr_text {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use crate::model::guard::Cidr;

    pub fn serialize<S: Serializer>(c: &Cidr, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}/{}", c.addr, c.len))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Cidr, D::Error> {
        String::deserialize(d)?.parse().map_err(D::Error::custom)
    }
}

impl RateLimit {
    /// The map that holds it.
    pub fn map(&self) -> &'static str {
        if self.cidr.addr.is_ipv4() {
            "rate4"
        } else {
            "rate6"
        }
    }

    /// Its LPM key: prefix length (host order), then the address.
    pub fn key(&self) -> Vec<u8> {
        self.cidr.lpm_key()
    }

    /// Its value, buckets empty.
    pub fn value(&self) -> Vec<u8> {
        encode(&Rate {
            pps: self.pps,
            burst: self.burst,
            bytes_per_sec: self.bytes_per_sec,
            burst_bytes: self.burst_bytes,
            per_prefix: u32::from(self.per == Per::Prefix),
            ..Rate::default()
        })
    }

    /// The limit a map entry holds, if its key is a prefix and its value
    /// a rate.
    pub fn of_entry(key: &[u8], value: &[u8]) -> Option<RateLimit> {
        let cidr = Cidr::from_lpm_key(key)?;
        let r = decode(value)?;
        Some(RateLimit {
            cidr,
            pps: r.pps,
            burst: r.burst,
            bytes_per_sec: r.bytes_per_sec,
            burst_bytes: r.burst_bytes,
            per: if r.per_prefix != 0 {
                Per::Prefix
            } else {
                Per::Source
            },
        })
    }

    /// The rule of a limit: its prefix without host bits, and a value
    /// [`check_value`] takes.
    pub fn check(&self) -> Result<(), String> {
        self.cidr.check_rule()?;
        check(&decode(&self.value()).expect("encoded"))
    }
}

/// A rate as the map holds it (native byte order, as the datapath reads it).
pub fn encode(r: &Rate) -> Vec<u8> {
    let mut out = Vec::with_capacity(VALUE_LEN);
    for n in [r.pps, r.burst, r.bytes_per_sec, r.burst_bytes] {
        out.extend(n.to_ne_bytes());
    }
    out.extend(r.per_prefix.to_ne_bytes());
    out.extend(r.owner.to_ne_bytes());
    out.extend(r.tat.to_ne_bytes());
    out.extend(r.tat_bytes.to_ne_bytes());
    out
}

/// A map's value as a rate, if it is one's size.
pub fn decode(v: &[u8]) -> Option<Rate> {
    if v.len() != VALUE_LEN {
        return None;
    }
    let u64_at = |i: usize| u64::from_ne_bytes(v[i..i + 8].try_into().expect("8 bytes"));
    let u32_at = |i: usize| u32::from_ne_bytes(v[i..i + 4].try_into().expect("4 bytes"));
    Some(Rate {
        pps: u64_at(0),
        burst: u64_at(8),
        bytes_per_sec: u64_at(16),
        burst_bytes: u64_at(24),
        per_prefix: u32_at(32),
        owner: u32_at(36),
        tat: u64_at(40),
        tat_bytes: u64_at(48),
    })
}

/// A rate limit's value as any write leaves it: its buckets empty (a
/// limit written starts with a full burst, whatever the one before had
/// taken), and, where the write did not name `owner` (`mask`: the bytes
/// it gave; `None`, all of them), the operator's (0): an update of
/// guard's limit makes it the operator's, which guard never removes.
pub fn as_written(value: &mut [u8], mask: Option<&[u8]>) {
    if value.len() < VALUE_LEN {
        return;
    }
    value[RATE_RULE_BYTES..VALUE_LEN].fill(0);
    if let Some(mask) = mask
        && mask
            .get(OWNER_AT..OWNER_AT + 4)
            .is_none_or(|m| m.contains(&0))
    {
        value[OWNER_AT..OWNER_AT + 4].fill(0);
    }
}

/// The rule of a rate limit's value as JSON, the fields an operator
/// writes (the buckets and the owner left out): what `map update` says it
/// wrote.
pub fn rule_text(value: &[u8]) -> Option<String> {
    let r = decode(value)?;
    Some(
        serde_json::json!({
            "pps": r.pps,
            "burst": r.burst,
            "bytes_per_sec": r.bytes_per_sec,
            "burst_bytes": r.burst_bytes,
            "per_prefix": r.per_prefix,
        })
        .to_string(),
    )
}

/// Whether two values of a rate map are the same rule (the buckets
/// aside).
pub fn same_rule(a: &[u8], b: &[u8]) -> bool {
    a.len() == VALUE_LEN && b.len() == VALUE_LEN && a[..RATE_RULE_BYTES] == b[..RATE_RULE_BYTES]
}

/// The rule of a rate limit's value, whoever writes it: a limit at all,
/// rates and bursts the datapath computes with, `per_prefix` 0 or 1. The
/// error names the field, the reason and the fix.
pub fn check(r: &Rate) -> Result<(), String> {
    if r.pps == 0 && r.bytes_per_sec == 0 {
        return Err("limits nothing: give pps, bytes_per_sec or both (above 0)".into());
    }
    if r.pps > MAX_PPS {
        return Err(format!(
            "pps {} is above the most a limit takes ({MAX_PPS})",
            r.pps
        ));
    }
    if r.bytes_per_sec > MAX_BYTES_PER_SEC {
        return Err(format!(
            "bytes_per_sec {} is above the most a limit takes ({MAX_BYTES_PER_SEC})",
            r.bytes_per_sec
        ));
    }
    for (field, n) in [("burst", r.burst), ("burst_bytes", r.burst_bytes)] {
        if n > MAX_BURST {
            return Err(format!(
                "{field} {n} is above the largest burst ({MAX_BURST})"
            ));
        }
    }
    for (burst, n, rate) in [
        ("burst", r.burst, ("pps", r.pps)),
        (
            "burst_bytes",
            r.burst_bytes,
            ("bytes_per_sec", r.bytes_per_sec),
        ),
    ] {
        if n > 0 && rate.1 == 0 {
            return Err(format!(
                "{burst} {n} without {}: a burst is of a rate; give {} too, or leave {burst} out",
                rate.0, rate.0
            ));
        }
    }
    if r.per_prefix > 1 {
        return Err(format!(
            "per_prefix {} is neither 0 (a bucket per source) nor 1 (one for the prefix)",
            r.per_prefix
        ));
    }
    if r.owner != 0 && r.owner != u32::from(GUARD_MARK) {
        return Err(format!(
            "owner {} is neither 0 (the operator's) nor {GUARD_MARK} (guard's); leave it out",
            r.owner
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(text: &str) -> RateLimit {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn a_limit_is_its_map_entry_and_back() {
        let l = limit(r#"{"cidr":"10.0.0.0/8","pps":1000,"burst":50,"per":"prefix"}"#);
        assert_eq!(l.map(), "rate4");
        assert_eq!(l.key(), [8, 0, 0, 0, 10, 0, 0, 0]);
        assert_eq!(l.value().len(), VALUE_LEN);
        assert_eq!(RateLimit::of_entry(&l.key(), &l.value()), Some(l.clone()));
        assert_eq!(l.check(), Ok(()));
        let six = limit(r#"{"cidr":"2001:db8::/32","bytes_per_sec":125000}"#);
        assert_eq!((six.map(), six.per), ("rate6", Per::Source));
        assert_eq!(RateLimit::of_entry(&six.key(), &six.value()), Some(six));
        // Serialized, the defaults stay out.
        let text = serde_json::to_string(&l).unwrap();
        assert_eq!(
            text,
            r#"{"cidr":"10.0.0.0/8","pps":1000,"burst":50,"per":"prefix"}"#
        );
    }

    #[test]
    fn buckets_are_no_part_of_the_rule() {
        let l = limit(r#"{"cidr":"10.0.0.0/8","pps":1000}"#);
        let mut live = decode(&l.value()).unwrap();
        live.tat = 123_456;
        live.tat_bytes = 7;
        assert!(same_rule(&encode(&live), &l.value()));
        live.pps = 999;
        assert!(!same_rule(&encode(&live), &l.value()));
    }

    #[test]
    fn a_written_limit_starts_full_and_is_the_operators_unless_it_says() {
        let mut r = decode(&limit(r#"{"cidr":"10.0.0.0/8","pps":1000}"#).value()).unwrap();
        r.tat = 5;
        r.tat_bytes = 6;
        r.owner = u32::from(GUARD_MARK);
        let mut v = encode(&r);
        // A write naming pps only: buckets empty, owner the operator's.
        let mut mask = vec![0u8; VALUE_LEN];
        mask[..8].fill(0xff);
        as_written(&mut v, Some(&mask));
        let w = decode(&v).unwrap();
        assert_eq!((w.pps, w.tat, w.tat_bytes, w.owner), (1000, 0, 0, 0));
        // A whole value keeps the owner it gives.
        let mut v = encode(&r);
        as_written(&mut v, None);
        assert_eq!(decode(&v).unwrap().owner, u32::from(GUARD_MARK));
        assert_eq!(decode(&v).unwrap().tat, 0);
    }

    #[test]
    fn what_a_limit_may_not_be_is_refused_with_its_field() {
        let refused = |text: &str| limit(text).check().unwrap_err();
        assert!(refused(r#"{"cidr":"10.0.0.0/8"}"#).contains("limits nothing"));
        assert!(refused(r#"{"cidr":"10.0.0.7/8","pps":1}"#).contains("host bits"));
        assert!(refused(r#"{"cidr":"10.0.0.0/8","pps":1000000001}"#).contains("pps"));
        assert!(refused(r#"{"cidr":"::/0","pps":1,"burst":4294967297}"#).contains("burst"));
        assert!(refused(r#"{"cidr":"::/0","bytes_per_sec":1,"burst":4}"#).contains("without pps"));
        assert!(
            serde_json::from_str::<RateLimit>(r#"{"cidr":"::/0","pps":1,"per":"cpu"}"#).is_err()
        );
        let mut r = decode(&limit(r#"{"cidr":"::/0","pps":1}"#).value()).unwrap();
        r.per_prefix = 2;
        assert!(check(&r).unwrap_err().contains("per_prefix"));
    }

    #[test]
    fn a_written_limit_is_told_by_its_rule_fields_alone() {
        let mut r =
            decode(&limit(r#"{"cidr":"10.0.0.0/8","pps":100,"burst":20}"#).value()).unwrap();
        r.tat = 5;
        r.owner = 1;
        assert_eq!(
            rule_text(&encode(&r)).unwrap(),
            r#"{"pps":100,"burst":20,"bytes_per_sec":0,"burst_bytes":0,"per_prefix":0}"#
        );
        assert_eq!(rule_text(&[0; 3]), None);
    }
}
