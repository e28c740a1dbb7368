//! The end-to-end tests: the built xdpctl binary against the real kernel, in
//! namespaces, veth pairs and private bpffs mounts each test makes, one module
//! per area (one binary: one link, and the areas run side by side). Shared
//! fixtures are in the `xdpctl-tests` library (tests/src/).

mod attach;
mod basics;
mod bench;
mod bpffs;
mod capture;
mod chain;
mod cidr6_index;
mod cidr_index;
mod completion;
mod corpus;
mod counters;
mod crash;
mod datapath;
mod demo;
mod deploy;
mod dispatcher;
mod dump;
mod explain;
mod floor;
mod foreign;
mod inputs;
mod json;
mod kinds;
mod load;
mod man;
mod maps;
mod operate;
mod policy;
mod programs;
mod ratelimit;
mod syncookie;
mod system;
mod tables;
mod tc;
mod tcx;
mod traffic;
