use std::net::Ipv4Addr;

use serde_json::{Value, json};

use super::{parse::parse_raw, *};

/// `text` written over `base` as `map update` writes it.
fn parse_over(shape: &Shape, text: &str, base: &[u8]) -> Result<Vec<u8>, String> {
    let given = parse(shape, text)?;
    Ok(overlay(base, &given, &written_mask(shape, text)))
}

#[test]
fn ipv4_keys_are_network_order() {
    assert_eq!(
        parse(&Shape::Ipv4, "203.0.113.5").unwrap(),
        vec![203, 0, 113, 5]
    );
    assert_eq!(to_text(&Shape::Ipv4, &[203, 0, 113, 5]), "203.0.113.5");
    let e = parse(&Shape::Ipv4, "203.0.113.256").unwrap_err();
    assert!(e.contains("not an IPv4 address"), "{e}");
}

#[test]
fn char_arrays_take_strings_only_and_no_nul() {
    let label = Shape::Array {
        elem: Box::new(Shape::Uint { size: 1 }),
        len: 8,
        elem_size: 1,
        chars: true,
    };
    assert_eq!(
        from_json(&label, &json!("web"), "label").unwrap(),
        b"web\0\0\0\0\0"
    );
    for bad in [json!(null), json!(["w"]), json!({"a": 1}), json!("a\u{0}b")] {
        let e = from_json(&label, &bad, "label").unwrap_err();
        assert!(e.contains("label"), "{e}");
    }
    assert!(from_json(&label, &json!("12345678"), "label").is_err());
}

#[test]
fn ports_are_network_order() {
    assert_eq!(parse(&Shape::Port, "9999").unwrap(), vec![0x27, 0x0f]);
    assert_eq!(to_text(&Shape::Port, &[0x27, 0x0f]), "9999");
    assert!(parse(&Shape::Port, "65536").is_err());
}

#[test]
fn integers_check_their_range_and_take_hex() {
    let u8s = Shape::Uint { size: 1 };
    assert_eq!(parse(&u8s, "255").unwrap(), vec![255]);
    assert_eq!(parse(&u8s, "0xff").unwrap(), vec![255]);
    let e = parse(&u8s, "256").unwrap_err();
    assert_eq!(e, "256 is out of range for a u8 (0 to 255)");
    let s16 = Shape::Int { size: 2 };
    assert_eq!(to_text(&s16, &parse(&s16, "-5").unwrap()), "-5");
    assert!(parse(&s16, "40000").is_err());
}

/// A number too big for u64, typed or read from JSON as a float (serde
/// reads 100000000000000000000 as 1e20), is out of range, not "not a
/// number"; a fraction is not whole; only text is not a number.
#[test]
fn numbers_beyond_u64_say_out_of_range_not_not_a_number() {
    let u64s = Shape::Uint { size: 8 };
    let max = "0 to 18446744073709551615";
    for text in ["100000000000000000000", "0x1ffffffffffffffff"] {
        assert_eq!(
            parse(&u64s, text).unwrap_err(),
            format!("{text} is out of range for a u64 ({max})")
        );
    }
    let big: serde_json::Value = serde_json::from_str("100000000000000000000").unwrap();
    assert_eq!(
        from_json(&u64s, &big, "pps").unwrap_err(),
        format!("field pps: 100000000000000000000 is out of range for a u64 ({max})")
    );
    let half: serde_json::Value = serde_json::from_str("1.5").unwrap();
    assert_eq!(
        from_json(&u64s, &half, "pps").unwrap_err(),
        format!("field pps: 1.5 is not a whole number; a u64 ({max}) is wanted")
    );
    assert_eq!(
        parse(&u64s, "lots").unwrap_err(),
        "'lots' is not a number (decimal, or hex with 0x)"
    );
    // In range but not in digits: the number to write instead.
    let u8s = Shape::Uint { size: 1 };
    assert_eq!(
        parse(&u8s, "1e2").unwrap_err(),
        "'1e2' is not written in digits: write 100"
    );
    assert_eq!(
        parse(&u8s, "-0").unwrap_err(),
        "'-0' is not written in digits: write 0"
    );
    let thousand: serde_json::Value = serde_json::from_str("1e3").unwrap();
    assert_eq!(
        from_json(&u64s, &thousand, "pps").unwrap_err(),
        "field pps: '1000.0' is not written in digits: write 1000"
    );
    assert_eq!(
        from_json(&u64s, &serde_json::Value::Null, "pps").unwrap_err(),
        "field pps: 'null' is not a number (decimal, or hex with 0x)"
    );
    assert_eq!(
        parse(&Shape::Int { size: 1 }, "-1000").unwrap_err(),
        "-1000 is out of range for an s8 (-128 to 127)"
    );
    assert_eq!(
        parse(&Shape::Port, "70000").unwrap_err(),
        "70000 is not a port (a number up to 65535)"
    );
}

#[test]
fn cidrs_check_family_and_prefix() {
    let c4 = Shape::Cidr { v6: false };
    let bytes = parse(&c4, "203.0.113.0/24").unwrap();
    assert_eq!(
        bytes,
        [24u32.to_ne_bytes().as_slice(), &[203, 0, 113, 0]].concat()
    );
    assert_eq!(to_text(&c4, &bytes), "203.0.113.0/24");
    assert!(
        parse(&c4, "203.0.113.0/33")
            .unwrap_err()
            .contains("longer than 32")
    );
    assert!(parse(&c4, "2001:db8::/32").unwrap_err().contains("is IPv6"));
    let c6 = Shape::Cidr { v6: true };
    assert_eq!(
        to_text(&c6, &parse(&c6, "2001:db8::/32").unwrap()),
        "2001:db8::/32"
    );
}

#[test]
fn structs_round_trip_through_json_and_name_bad_fields() {
    let shape = Shape::Struct {
        size: 16,
        fields: vec![
            Field {
                name: "packets".into(),
                offset: 0,
                shape: Shape::Uint { size: 8 },
            },
            Field {
                name: "bytes".into(),
                offset: 8,
                shape: Shape::Uint { size: 8 },
            },
        ],
    };
    let b = parse(&shape, r#"{"packets":3,"bytes":180}"#).unwrap();
    assert_eq!(
        to_text(&shape, &b),
        r#"{"packets":3,"bytes":180}"#,
        "fields keep their order"
    );
    assert_eq!(to_json(&shape, &b), json!({"packets": 3, "bytes": 180}));
    let e = parse(&shape, r#"{"pkts":1}"#).unwrap_err();
    assert!(
        e.contains("no field 'pkts'") && e.contains("packets, bytes"),
        "{e}"
    );
    let e = parse(&shape, r#"{"packets":-1}"#).unwrap_err();
    assert!(e.starts_with("field packets:"), "{e}");
    let per_cpu = [b.as_slice(), b.as_slice()];
    assert_eq!(
        to_json(&shape, &sum(&shape, &per_cpu)),
        json!({"packets": 6, "bytes": 360})
    );
}

#[test]
fn raw_bytes_are_bpftool_compatible_but_never_wrap() {
    assert_eq!(parse_raw("203 0 113 5", 4).unwrap(), vec![203, 0, 113, 5]);
    assert_eq!(
        parse_raw("hex cb 00 71 05", 4).unwrap(),
        vec![203, 0, 113, 5]
    );
    assert_eq!(
        parse_raw("256 0 0 0", 4).unwrap_err(),
        "byte '256' is larger than 255"
    );
    assert_eq!(
        parse_raw("1 2", 4).unwrap_err(),
        "got 2 byte(s), expected 4"
    );
}

#[test]
fn enums_print_by_name() {
    let shape = Shape::Enum {
        size: 4,
        signed: false,
        values: vec![("PASS".into(), 2), ("DROP".into(), 1)],
    };
    assert_eq!(to_text(&shape, &2u32.to_ne_bytes()), "PASS");
    assert_eq!(parse(&shape, "DROP").unwrap(), 1u32.to_ne_bytes().to_vec());
    assert!(parse(&shape, "MAYBE").unwrap_err().contains("PASS, DROP"));
}

#[test]
fn written_json_and_text_are_what_serde_json_and_display_write() {
    let label = Shape::Array {
        elem: Box::new(Shape::Uint { size: 1 }),
        len: 8,
        elem_size: 1,
        chars: true,
    };
    let shapes_and_bytes: Vec<(Shape, Vec<u8>)> = vec![
        (Shape::Ipv4, vec![203, 0, 113, 5]),
        (Shape::Ipv4, vec![0, 0, 0, 0]),
        (Shape::Ipv4, vec![255, 255, 255, 255]),
        (
            Shape::Ipv6,
            [0x20, 1, 0x0d, 0xb8]
                .into_iter()
                .chain([0; 11])
                .chain([1])
                .collect(),
        ),
        (Shape::Port, vec![0x27, 0x0f]),
        (Shape::BigEndian { size: 8 }, vec![1, 2, 3, 4, 5, 6, 7, 8]),
        (Shape::Uint { size: 1 }, vec![255]),
        (Shape::Uint { size: 8 }, u64::MAX.to_ne_bytes().to_vec()),
        (Shape::Uint { size: 8 }, 0u64.to_ne_bytes().to_vec()),
        (Shape::Int { size: 4 }, (-5i32).to_ne_bytes().to_vec()),
        (Shape::Int { size: 8 }, i64::MIN.to_ne_bytes().to_vec()),
        (Shape::Bool, vec![1]),
        (Shape::Bool, vec![0]),
        (Shape::Raw { size: 3 }, vec![0xcb, 0, 0x71]),
        (Shape::Raw { size: 0 }, vec![]),
        (
            Shape::Cidr { v6: false },
            [24u32.to_ne_bytes().as_slice(), &[10, 0, 0, 0]].concat(),
        ),
        (label.clone(), b"a\"b\\\n\x01\0\0\0".to_vec()),
        (
            Shape::Enum {
                size: 4,
                signed: false,
                values: vec![("PA\"SS".into(), 2)],
            },
            2u32.to_ne_bytes().to_vec(),
        ),
    ];
    for (shape, bytes) in &shapes_and_bytes {
        let mut json = Vec::new();
        write_json(shape, bytes, &mut json);
        let json = String::from_utf8(json).unwrap();
        assert_eq!(
            json,
            serde_json::to_string(&to_json(shape, bytes)).unwrap(),
            "{shape:?}"
        );
        serde_json::from_str::<Value>(&json).unwrap();
    }
    assert_eq!(to_text(&Shape::Ipv4, &[10, 200, 3, 44]), "10.200.3.44");
    assert_eq!(to_text(&Shape::Raw { size: 2 }, &[0xab, 1]), "ab 01");
    assert_eq!(to_text(&Shape::Int { size: 1 }, &[0xff]), "-1");
    let mut hexed = Vec::new();
    push_hex(&mut hexed, &[0, 0x7f, 0x80, 0xff]);
    assert_eq!(hexed, hex(&[0, 0x7f, 0x80, 0xff]).as_bytes());
    let long: Vec<u8> = (0..=255).collect();
    hexed.clear();
    push_hex(&mut hexed, &long);
    assert_eq!(hexed, hex(&long).as_bytes());
    for a in 0..=255u8 {
        let bytes = [a, 255 - a, a / 2, 7];
        assert_eq!(
            to_text(&Shape::Ipv4, &bytes),
            Ipv4Addr::from(bytes).to_string()
        );
    }
}

use crate::model::btf::{Member, SecVar};

fn member(name: &str, ty: u32, bit_offset: u32) -> Member {
    Member {
        name: name.into(),
        ty,
        bit_offset,
        bitfield_size: 0,
    }
}

/// xdp-filter's `struct xdp_stats_record`: two anonymous unions of
/// two `__u64` aliases each; and a `.rodata` with two variables.
fn xdp_tools_btf() -> Btf {
    let u64_ = Type::Int {
        name: "unsigned long long".into(),
        size: 8,
        signed: false,
        bool: false,
        char: false,
    };
    Btf::from_types([
        // 1
        u64_,
        // 2
        Type::Typedef {
            name: "__u64".into(),
            ty: 1,
        },
        // 3
        Type::Struct {
            name: String::new(),
            size: 8,
            members: vec![member("packets", 2, 0), member("rx_packets", 2, 0)],
            union: true,
        },
        // 4
        Type::Struct {
            name: String::new(),
            size: 8,
            members: vec![member("bytes", 2, 0), member("rx_bytes", 2, 0)],
            union: true,
        },
        // 5
        Type::Struct {
            name: "xdp_stats_record".into(),
            size: 16,
            members: vec![member("", 3, 0), member("", 4, 64)],
            union: false,
        },
        // 6
        Type::Int {
            name: "int".into(),
            size: 4,
            signed: true,
            bool: false,
            char: false,
        },
        // 7
        Type::Modifier { ty: 6 },
        // 8
        Type::Var {
            name: "refcnt".into(),
            ty: 7,
        },
        // 9
        Type::Var {
            name: "limit".into(),
            ty: 2,
        },
        // 10
        Type::Datasec {
            name: ".rodata".into(),
            size: 16,
            vars: vec![
                SecVar {
                    ty: 8,
                    offset: 0,
                    size: 4,
                },
                SecVar {
                    ty: 9,
                    offset: 8,
                    size: 8,
                },
            ],
        },
    ])
}

#[test]
fn anonymous_unions_decode_every_member_as_the_parents() {
    let btf = xdp_tools_btf();
    let shape = Shape::from_btf(&btf, 5, 16, false);
    let mut b = 3u64.to_ne_bytes().to_vec();
    b.extend(180u64.to_ne_bytes());
    assert_eq!(
        to_json(&shape, &b),
        json!({"packets": 3, "rx_packets": 3, "bytes": 180, "rx_bytes": 180})
    );
    assert!(shape.summable(), "aliases of one counter add up");
    // What a dump prints loads back; one alias is enough.
    let all = r#"{"packets":3,"rx_packets":3,"bytes":180,"rx_bytes":180}"#;
    assert_eq!(parse(&shape, all).unwrap(), b);
    assert_eq!(parse(&shape, r#"{"rx_packets":3,"bytes":180}"#).unwrap(), b);
    let e = parse(&shape, r#"{"packets":3,"rx_packets":4}"#).unwrap_err();
    assert!(e.contains("'packets' and 'rx_packets'"), "{e}");
}

#[test]
fn a_named_union_is_an_object_of_all_its_members() {
    let mut types: Vec<Type> = (1..=4)
        .map(|i| xdp_tools_btf().get(i).unwrap().clone())
        .collect();
    // 5: struct { union { u64 packets; u64 rx_packets; } u; }
    types.push(Type::Struct {
        name: "s".into(),
        size: 8,
        members: vec![member("u", 3, 0)],
        union: false,
    });
    let btf = Btf::from_types(types);
    let shape = Shape::from_btf(&btf, 5, 8, false);
    assert_eq!(
        to_json(&shape, &7u64.to_ne_bytes()),
        json!({"u": {"packets": 7, "rx_packets": 7}})
    );
}

#[test]
fn a_datasec_is_its_variables_by_name() {
    let btf = xdp_tools_btf();
    assert_eq!(btf.datasec(".rodata"), Some(10));
    assert_eq!(btf.datasec(".bss"), None);
    let shape = Shape::from_btf(&btf, 10, 16, false);
    let mut b = 1i32.to_ne_bytes().to_vec();
    b.extend([0xee; 4]);
    b.extend(5u64.to_ne_bytes());
    assert_eq!(to_json(&shape, &b), json!({"refcnt": 1, "limit": 5}));
    assert_eq!(shape.describe(), "{refcnt:s32,limit:u64}");
    // A DATASEC whose size is not the map's is not trusted.
    assert_eq!(
        Shape::from_btf(&btf, 10, 24, false),
        Shape::Raw { size: 24 }
    );
}

#[test]
fn only_integers_that_alias_exactly_are_summable() {
    let v6 = Shape::Struct {
        size: 16,
        fields: vec![
            Field {
                name: "u6_addr8".into(),
                offset: 0,
                shape: Shape::Array {
                    elem: Box::new(Shape::Uint { size: 1 }),
                    len: 16,
                    elem_size: 1,
                    chars: false,
                },
            },
            Field {
                name: "u6_addr32".into(),
                offset: 0,
                shape: Shape::Array {
                    elem: Box::new(Shape::Uint { size: 4 }),
                    len: 4,
                    elem_size: 4,
                    chars: false,
                },
            },
        ],
    };
    assert!(!v6.summable());
    assert!(!Shape::Ipv4.summable());
}

#[test]
fn counters_are_structs_of_unsigned_fields_named_like_counters() {
    let btf = xdp_tools_btf();
    assert!(Shape::from_btf(&btf, 5, 16, false).is_counter());
    // A bare __u64 may be a flag (xdp-filter's filter_ipv4) or a count.
    assert!(!Shape::Uint { size: 8 }.is_counter());
    let mode = Shape::Struct {
        size: 16,
        fields: vec![
            Field {
                name: "packets".into(),
                offset: 0,
                shape: Shape::Uint { size: 8 },
            },
            Field {
                name: "mode".into(),
                offset: 8,
                shape: Shape::Uint { size: 8 },
            },
        ],
    };
    assert!(!mode.is_counter(), "one field is not a counter");
    assert!(mode.summable(), "but --sum may still add it up");
}

#[test]
fn global_data_updates_keep_the_variables_not_given() {
    let btf = xdp_tools_btf();
    let shape = Shape::from_btf(&btf, 10, 16, false);
    let mut base = 1i32.to_ne_bytes().to_vec();
    base.extend([0; 4]);
    base.extend(5u64.to_ne_bytes());
    let out = parse_over(&shape, r#"{"limit":9}"#, &base).unwrap();
    assert_eq!(to_json(&shape, &out), json!({"refcnt": 1, "limit": 9}));
    assert!(parse_over(&shape, r#"{"nope":9}"#, &base).is_err());
}

#[test]
fn bitfields_read_and_write_their_own_bits() {
    let int = |name: &str, signed: bool| Type::Int {
        name: name.into(),
        size: 4,
        signed,
        bool: false,
        char: false,
    };
    let bitfield = |name: &str, ty: u32, bit_offset: u32, bits: u32| Member {
        name: name.into(),
        ty,
        bit_offset,
        bitfield_size: bits,
    };
    // struct { unsigned a:3, b:7; int c:4; unsigned d; }
    let btf = Btf::from_types([
        int("unsigned int", false),
        int("int", true),
        Type::Struct {
            name: "flags".into(),
            size: 8,
            members: vec![
                bitfield("a", 1, 0, 3),
                bitfield("b", 1, 3, 7),
                bitfield("c", 2, 10, 4),
                member("d", 1, 32),
            ],
            union: false,
        },
    ]);
    let shape = Shape::from_btf(&btf, 3, 8, false);
    let b = parse(&shape, r#"{"a":5,"b":100,"c":-3,"d":7}"#).unwrap();
    let raw = 5u32 | 100 << 3 | (((-3i32) as u32) & 0xf) << 10;
    assert_eq!(b[..4], raw.to_le_bytes());
    assert_eq!(
        to_json(&shape, &b),
        json!({"a": 5, "b": 100, "c": -3, "d": 7})
    );
    assert_eq!(shape.describe(), "{a:u3,b:u7,c:s4,d:u32}");
    let e = parse(&shape, r#"{"a":8}"#).unwrap_err();
    assert!(e.contains("3-bit"), "{e}");
    // Setting one leaves its neighbours.
    let over = parse_over(&shape, r#"{"b":1}"#, &b).unwrap();
    assert_eq!(
        to_json(&shape, &over),
        json!({"a": 5, "b": 1, "c": -3, "d": 7})
    );
    assert!(!shape.summable());
}
