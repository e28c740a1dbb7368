//! The end-to-end tests: the built xdpctl binary against the real kernel, in
//! namespaces, veth pairs and private bpffs mounts each test makes, one module
//! per area (one binary: one link, and the areas run side by side). Shared
//! fixtures are in the `xdpctl-tests` library (tests/src/).
//!
//! NB: libtest starts the tests in the order of their names, two at a time
//! here: the whole-system walk (`all_features`, two minutes) is named to
//! start among the first, beside the other long ones (`cidr_index`,
//! `crash`), not alone at the end with one CPU idle.

mod all_features;
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
mod tables;
mod tc;
mod tcx;
mod traffic;
