//! One file per subcommand: turn the validated arguments into a plan, apply
//! it through the kernel layer, and return what happened for `render`.

pub mod attach;
pub mod confirm;
pub mod guard;
pub mod load;
pub mod map;
pub mod net;
pub mod prog;
pub mod stats;
