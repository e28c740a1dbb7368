use super::*;

const EXAMPLE: &str = "\
version: 1
load:
  pin: xdpfw
devices:
  - name: eth0
  - name: veth1
    netns: blue
    mode: generic
rules:
  blocklist: [203.0.113.5, 2001:db8::5]
  cidr: [198.51.100.0/24]
  udp_ports: [53]
  drop_icmp: true
guard:
  threshold: 5000
drift: correct
";

#[test]
fn the_example_parses_and_means_these_maps() {
    let p = parse("p.yaml", EXAMPLE).unwrap();
    assert!(p.is_builtin());
    assert_eq!(p.devices[0].mode, XdpMode::Native);
    assert_eq!(p.devices[1].mode, XdpMode::Generic);
    // `driver`, as --mode takes it, is native, and written so.
    let p = parse("p.yaml", &EXAMPLE.replace("mode: generic", "mode: driver")).unwrap();
    assert_eq!(p.devices[1].mode, XdpMode::Native);
    let saved = serde_norway::to_string(&p).unwrap();
    assert!(
        !saved.contains("driver") && saved.contains("mode: native"),
        "{saved}"
    );
    assert_eq!(p.drift, Drift::Correct);
    let maps = p.rule_maps();
    assert_eq!(maps["blocklist"].len(), 1);
    assert_eq!(maps["blocklist6"].len(), 1);
    assert_eq!(maps["cidr4"].key(0), [24, 0, 0, 0, 198, 51, 100, 0]);
    assert_eq!(maps["udp_ports"].key(0), [0, 53]);
    assert_eq!(maps["config"].value(0), [1, 0]);
    // And back.
    let rules = rules_of(&maps, 0x67);
    assert_eq!(rules.cidr, p.rules.cidr);
    assert_eq!(rules.udp_ports, vec![53]);
    assert!(rules.drop_icmp && !rules.drop_icmp6_echo);
    let deltas: Vec<(String, MapDelta)> = maps
        .iter()
        .map(|(n, e)| {
            (
                n.clone(),
                delta(&Entries::new(e.key_size, e.value_size), e, None, true).0,
            )
        })
        .collect();
    assert_eq!(decode(&encode(&deltas)).unwrap(), deltas);
}

/// Feeds are read line by line into the rules, relative to the policy's
/// directory; an error names the feed and its line.
#[test]
fn feeds_add_to_the_rules_and_errors_name_their_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.txt"),
        "# a feed\n203.0.113.9\n198.51.100.1 0   # no rule\n2001:db8::9 1\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("nets.txt"),
        "192.0.2.0/24\n192.0.2.0/28 0\n",
    )
    .unwrap();
    let text = EXAMPLE.replace(
        "  udp_ports: [53]",
        "  udp_ports: [53]\n  blocklist_files: [bad.txt]\n  cidr_files: [nets.txt]",
    );
    let mut p = parse("p.yaml", &text).unwrap();
    p.read_feeds(dir.path()).unwrap();
    let want: Vec<IpAddr> = ["203.0.113.5", "2001:db8::5", "203.0.113.9", "2001:db8::9"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    assert_eq!(p.rules.blocklist, want);
    assert!(p.rules.cidr.contains(&"192.0.2.0/24".parse().unwrap()));
    assert_eq!(p.rules.cidr_except, vec!["192.0.2.0/28".parse().unwrap()]);
    std::fs::write(dir.path().join("nets.txt"), "192.0.2.0/24\n192.0.2.1/24\n").unwrap();
    let e = parse("p.yaml", &text)
        .unwrap()
        .read_feeds(dir.path())
        .unwrap_err();
    assert_eq!(
        (e.line, e.field.as_str()),
        (Some(2), "rules.cidr_files[0]"),
        "{e}"
    );
    assert!(
        e.file.ends_with("nets.txt") && e.message.contains("host bits"),
        "{e}"
    );
    // A prefix both dropped (inline) and excepted (in a feed).
    std::fs::write(dir.path().join("nets.txt"), "198.51.100.0/24 0\n").unwrap();
    let e = parse("p.yaml", &text)
        .unwrap()
        .read_feeds(dir.path())
        .unwrap_err();
    assert!(e.message.contains("both dropped and excepted"), "{e}");
    std::fs::remove_file(dir.path().join("bad.txt")).unwrap();
    let e = parse("p.yaml", &text)
        .unwrap()
        .read_feeds(dir.path())
        .unwrap_err();
    assert!(e.message.contains("cannot read it"), "{e}");
}

#[test]
fn a_json_policy_is_read_the_same() {
    let yaml = parse("p.yaml", EXAMPLE).unwrap();
    let json = serde_json::to_string(&yaml).unwrap();
    assert_eq!(parse("p.json", &json).unwrap(), yaml);
    let e = parse("p.json", &json.replace("203.0.113.5", "1.2.3.999")).unwrap_err();
    assert!(e.field.starts_with("rules.blocklist"), "{e}");
}

#[test]
fn errors_name_the_line_and_the_field() {
    let bad = EXAMPLE.replace("203.0.113.5", "203.0.113.500");
    let e = parse("p.yaml", &bad).unwrap_err();
    assert_eq!(e.line, Some(10), "{e}");
    assert!(e.field.starts_with("rules.blocklist"), "{e}");
    let e = parse("p.yaml", &EXAMPLE.replace("drift:", "drfit:")).unwrap_err();
    assert!(e.message.contains("unknown field `drfit`"), "{e}");
    let e = parse("p.yaml", &EXAMPLE.replace("/24", "/33")).unwrap_err();
    assert!(e.field.starts_with("rules.cidr"), "{e}");
    let e = parse(
        "p.yaml",
        &EXAMPLE.replace("198.51.100.0/24", "198.51.100.1/24"),
    )
    .unwrap_err();
    assert_eq!(
        e.message, "198.51.100.1/24 has host bits set; use 198.51.100.0/24",
        "{e}"
    );
    assert_eq!(e.line, Some(11), "{e}");
    let e = parse(
        "p.yaml",
        &EXAMPLE.replace("udp_ports: [53]", "udp_ports: [53, 0]"),
    )
    .unwrap_err();
    assert_eq!(e.field, "rules.udp_ports[1]", "{e}");
    assert_eq!(e.message, "port 0 is not a port; give 1 to 65535", "{e}");
    let e = parse("p.yaml", &EXAMPLE.replace("mode: generic", "mode: turbo")).unwrap_err();
    assert!(e.field.contains("mode"), "{e}");
    let e = parse(
        "p.yaml",
        &EXAMPLE.replace("threshold: 5000", "threshold: .nan"),
    )
    .unwrap_err();
    assert_eq!(e.field, "guard.threshold", "{e}");
    // The value's own line, in a block sequence and across a flow one.
    let block = EXAMPLE.replace(
        "udp_ports: [53]",
        "udp_ports:\n    - 53\n    # dns\n    - 0",
    );
    let e = parse("p.yaml", &block).unwrap_err();
    assert_eq!(
        (e.field.as_str(), e.line),
        ("rules.udp_ports[1]", Some(15)),
        "{e}"
    );
    let flow = EXAMPLE.replace("udp_ports: [53]", "udp_ports: [53,\n    7, 0]");
    let e = parse("p.yaml", &flow).unwrap_err();
    assert_eq!(
        (e.field.as_str(), e.line),
        ("rules.udp_ports[2]", Some(13)),
        "{e}"
    );
    let bad = block.replace("- 53", "- 5x3");
    let e = parse("p.yaml", &bad).unwrap_err();
    assert_eq!(
        (e.field.as_str(), e.line),
        ("rules.udp_ports[0]", Some(13)),
        "{e}"
    );
    let e = parse("p.yaml", &EXAMPLE.replace("mode: generic", "mode: turbo")).unwrap_err();
    assert_eq!(
        (e.field.as_str(), e.line),
        ("devices[1].mode", Some(8)),
        "{e}"
    );
    let e = parse("p.yaml", "version: 2\nload: {pin: x}\n").unwrap_err();
    assert_eq!((e.field.as_str(), e.line), ("version", Some(1)), "{e}");
}

/// One rule for a rule's prefix and port, the policy's and `map
/// update`'s, read back from the map keys `apply` writes.
#[test]
fn prefixes_without_host_bits_and_ports_from_1_are_the_rule() {
    let c = |s: &str| s.parse::<Cidr>().unwrap();
    assert_eq!(c("198.51.100.0/24").check_rule(), Ok(()));
    assert_eq!(
        c("198.51.100.7/24").check_rule().unwrap_err(),
        "198.51.100.7/24 has host bits set; use 198.51.100.0/24"
    );
    assert_eq!(
        c("2001:db8::1/32").check_rule().unwrap_err(),
        "2001:db8::1/32 has host bits set; use 2001:db8::/32"
    );
    assert_eq!(c("203.0.113.5").check_rule(), Ok(()));
    assert_eq!(check_rule_port(1), Ok(()));
    assert_eq!(
        check_rule_port(0).unwrap_err(),
        "port 0 is not a port; give 1 to 65535"
    );
    for cidr in ["198.51.100.0/24", "2001:db8:1::/48", "0.0.0.0/0"] {
        let (_, key) = cidr_key(&c(cidr));
        assert_eq!(Cidr::from_lpm_key(&key), Some(c(cidr)));
    }
    assert_eq!(Cidr::from_lpm_key(&[33, 0, 0, 0, 1, 2, 3, 4]), None);
    assert_eq!(Cidr::from_lpm_key(&[8, 0, 0, 0, 1, 2, 3]), None);
}

#[test]
fn the_delta_leaves_guards_entries_and_touches_only_what_differs() {
    let entries = |v: &[(u8, u8)]| {
        let mut e = Entries::new(1, 1);
        for (k, val) in v {
            e.push(&[*k], &[*val]);
        }
        e.sorted()
    };
    let live = entries(&[(1, 1), (2, 0x67), (3, 1), (4, 0)]);
    let want = entries(&[(1, 1), (4, 1), (5, 1)]);
    let (d, undo) = delta(&live, &want, Some(0x67), false);
    assert_eq!(d.put, entries(&[(4, 1), (5, 1)]));
    assert_eq!(d.remove.keys, vec![3]);
    // The inverse puts back what was there.
    assert_eq!(undo.put, entries(&[(3, 1), (4, 0)]));
    assert_eq!(undo.remove.keys, vec![5]);
    assert!(delta(&want, &want, None, false).0.is_empty());
    // Sorted, the last of equal keys kept, long keys too.
    assert_eq!(
        entries(&[(2, 1), (1, 1), (2, 9)]),
        entries(&[(1, 1), (2, 9)])
    );
    let mut long = Entries::new(20, 1);
    long.push(&[9; 20], &[1]);
    long.push(&[1; 20], &[1]);
    long.push(&[9; 20], &[2]);
    let long = long.sorted();
    assert_eq!((long.len(), long.value(1)), (2, &[2][..]));
}

/// A value 0 is no rule in the blocklist and port maps and an exception
/// in the LPM tries; a value that drops as the wanted one does is left.
#[test]
fn the_delta_knows_what_a_value_means() {
    let entries = |v: &[(u8, u8)]| {
        let mut e = Entries::new(1, 1);
        for (k, val) in v {
            e.push(&[*k], &[*val]);
        }
        e.sorted()
    };
    let live = entries(&[(1, 5), (2, 0), (3, 0x67)]);
    let want = entries(&[(1, 1), (3, 1)]);
    let (d, _) = delta(&live, &want, Some(0x67), false);
    // 5 drops as 1 does; 2 = 0 is no rule; 3 is guard's until the
    // policy takes it.
    assert_eq!(d.put, entries(&[(3, 1)]));
    assert!(d.remove.is_empty());
    let (d, _) = delta(&live, &want, None, true);
    assert_eq!(d.remove.keys, vec![2]);
}

/// save → apply is a fixed point with exceptions in the tries and
/// entries of value 0 elsewhere.
#[test]
fn rules_of_what_the_maps_hold_mean_the_same_maps() {
    let text = EXAMPLE.replace(
        "cidr: [198.51.100.0/24]",
        "cidr: [198.51.100.0/24, 2001:db8::/32]\n  cidr_except: [198.51.100.0/25, 2001:db8::/48]",
    );
    let p = parse("p.yaml", &text).unwrap();
    assert_eq!(p.rules.cidr_except.len(), 2);
    let mut maps = p.rule_maps();
    maps.get_mut("blocklist")
        .unwrap()
        .push(&[192, 0, 2, 1], &[0]);
    maps.get_mut("udp_ports")
        .unwrap()
        .push(&7u16.to_be_bytes(), &[0]);
    let maps: RuleMaps = maps.into_iter().map(|(n, e)| (n, e.sorted())).collect();
    let again = rules_of(&maps, 0x67);
    assert_eq!(again, p.rules);
    let want = Policy {
        rules: again,
        ..p.clone()
    }
    .rule_maps();
    for (name, live) in &maps {
        let (d, _) = delta(live, &want[name], Some(0x67), zero_is_rule(name));
        assert!(d.is_empty(), "{name}: {d:?}");
    }
    let e = parse(
        "p.yaml",
        &text.replace(
            "cidr_except: [198.51.100.0/25",
            "cidr_except: [198.51.100.0/24",
        ),
    )
    .unwrap_err();
    assert_eq!(e.field, "rules.cidr_except[0]", "{e}");
    assert!(e.message.contains("is in cidr too"), "{e}");
}
