//! The kernel layer: the only code in xdpctl that makes system calls —
//! `bpf(2)`, rtnetlink, network namespaces, bpffs. Typed handles, checked
//! buffer sizes, errors that name the object, the path and the syscall.

pub mod btf;
pub mod chain;
pub mod clock;
pub mod datamaps;
pub mod dispatcher;
pub mod fwindex;
pub mod holders;
pub mod layout;
pub mod links;
pub mod map;
pub mod mapview;
pub mod netdev;
pub mod netlink;
pub mod netns;
pub mod objects;
pub mod process;
pub mod steps;
pub mod store;
pub mod sys;
