//! One file per subcommand: turn the validated arguments into a plan, apply
//! it through the kernel layer (multi-step changes through the journal in
//! `ops`), and hand the result to `render`.

pub mod agent;
pub mod apply;
pub mod attach;
pub mod capture;
pub mod chain;
pub mod confirm;
pub mod detach;
pub mod doctor;
pub mod guard;
pub mod load;
pub mod map;
pub mod net;
pub mod prog;
pub mod progtop;
pub mod save;
pub mod stats;
pub mod top;
pub mod unload;
