// SPDX-License-Identifier: GPL-2.0 OR MIT
/* The built-in firewall as an xdpctl before mmapable indexes made it: the
 * same maps and program, its indexes without BPF_F_MMAPABLE (read with
 * bpf(2)). */
#define XDPFW_NO_MMAPABLE
#include "../../crates/xdp-progs/src/bpf/xdpfw.bpf.c"
