// SPDX-License-Identifier: GPL-2.0 OR MIT
/* The built-in firewall without the capture call in its datapath (its maps
 * are all there, so xdpctl loads it as a firewall): the bench's floor for
 * what capture costs while off. */
#define XDPFW_NO_CAPTURE
#include "../../crates/xdp-progs/src/bpf/xdpfw.bpf.c"
