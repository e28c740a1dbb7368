#!/usr/bin/env bash
# Installs what building and testing xdpctl needs, if it is missing:
# clang and the BPF headers for the XDP programs; iproute2, ping and nc for
# the demo and the end-to-end tests. Debian and Ubuntu; run as root. Idempotent and quiet when
# everything is there.
set -euo pipefail

need=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_file() { [ -e "$1" ]; }

have_cmd clang || need+=(clang)
have_cmd llvm-strip || need+=(llvm)
have_file /usr/include/bpf/bpf_helpers.h || need+=(libbpf-dev)
have_file /usr/include/linux/bpf.h || need+=(linux-libc-dev)
have_cmd ip || need+=(iproute2)
have_cmd ping || need+=(iputils-ping)
have_cmd setpriv || need+=(util-linux)
have_cmd nc || need+=(netcat-openbsd)
# `xdpctl capture` compiles pcap-filter expressions with libpcap; its tests
# read the captures back with tcpdump and Wireshark's tshark.
have_file /usr/include/pcap/pcap.h || need+=(libpcap-dev)
have_cmd tcpdump || need+=(tcpdump)
have_cmd tshark || need+=(tshark)
have_cmd make || need+=(make)
# The release build links with lld, which lays out the functions a command
# runs as it starts together (scripts/build.sh).
have_cmd ld.lld || need+=(lld)
# The completion tests load the scripts into each shell.
have_cmd zsh || need+=(zsh)
have_cmd fish || need+=(fish)
have_cmd groff || need+=(groff-base)
# The table test runs xdpctl in a real terminal.
have_cmd tmux || need+=(tmux)
have_cmd man || need+=(man-db)
# The benchmark compares with these peers and measures with these tools;
# the interoperability tests (tests/tests/suite/foreign.rs) make state with
# bpftool, xdp-loader, xdp-filter and libxdp's dispatcher object.
have_cmd bpftool || need+=(bpftool)
# The crash tests inject real syscall faults, as the issue reproduces them.
have_cmd strace || need+=(strace)
have_cmd nft || need+=(nftables)
have_cmd ethtool || need+=(ethtool)
have_cmd xdp-filter || need+=(xdp-tools)
have_file /usr/bin/time || need+=(time)
# The stats test checks the Prometheus output with the reference parser.
have_file /usr/lib/python3/dist-packages/prometheus_client || need+=(python3 python3-prometheus-client)
# The deploy tests verify contrib/'s systemd unit, and check deploy/ with
# kubernetes-validate from PyPI, in a venv (Debian's python refuses pip
# installs outside one).
have_cmd systemd-analyze || need+=(systemd)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)

if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "xdpctl needs these Debian packages: ${need[*]}; run as root to install them" >&2
        exit 1
    fi
    echo "installing: ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# kubernetes-validate, pinned (it carries the schemas of Kubernetes 1.25 to
# 1.37), in target/venv where tests/tests/suite/deploy.rs looks for it.
kv_version=1.37.0
root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac
venv="$target/venv"
if [ "$("$venv/bin/kubernetes-validate" --version 2>/dev/null)" != "$kv_version" ]; then
    echo "installing kubernetes-validate $kv_version in $venv" >&2
    python3 -m venv --clear "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$kv_version"
fi

# The corpus test (tests/tests/suite/corpus.rs) loads third-party BPF objects:
# xdp-tools' (installed above) and cilium/ebpf's test ELFs, from Debian's
# golang-github-cilium-ebpf-dev — downloaded and unpacked into
# target/corpus, not installed (it is a Go source package). Never committed.
corpus="$target/corpus"
cilium_pkg=golang-github-cilium-ebpf-dev
if [ ! -s "$corpus/$cilium_pkg.version" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "the corpus test needs $cilium_pkg unpacked in $corpus; run as root to fetch it" >&2
        exit 1
    fi
    echo "fetching $cilium_pkg into $corpus" >&2
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    # NB: apt downloads as the _apt user when it can; the directory must be
    # writable by it.
    chmod 0755 "$tmp"
    chown _apt "$tmp" 2>/dev/null || true
    if ! (cd "$tmp" && apt-get download -qq "$cilium_pkg" >/dev/null 2>&1); then
        apt-get update -qq
        (cd "$tmp" && apt-get download -qq "$cilium_pkg" >/dev/null)
    fi
    rm -rf "$corpus/cilium-ebpf"
    mkdir -p "$corpus"
    dpkg-deb -x "$tmp"/"$cilium_pkg"_*.deb "$corpus/cilium-ebpf"
    dpkg-deb -f "$tmp"/"$cilium_pkg"_*.deb Version >"$corpus/$cilium_pkg.version"
fi

if ! have_cmd cargo; then
    echo "cargo is missing: install Rust 1.95 or newer (https://rustup.rs), then run this again" >&2
    exit 1
fi
