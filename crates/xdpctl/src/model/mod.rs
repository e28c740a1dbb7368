//! Pure logic, unit-tested without a kernel: BTF and typed values, packets,
//! verifier logs.

pub mod btf;
pub mod capture;
pub mod change;
pub mod codec;
pub mod dispatcher;
pub mod duration;
pub mod error_text;
pub mod explain;
pub mod guard;
pub mod handle;
pub mod linkpin;
pub mod manifest;
pub mod maptype;
pub mod packet;
pub mod policy;
pub mod rate;
pub mod rulehits;
pub mod rulemaps;
pub mod verifier;
pub mod xdp;
pub mod yaml_lines;
