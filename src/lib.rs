//! rollcheck: does this rollout drop requests, and how much slower does it make them?
//! See DESIGN.md for the data flow: scenario → plan → runner (lab, load, steps, watchers)
//! → history → analysis → gate → report.

pub mod clock;
pub mod driver;
pub mod event;
pub mod outcome;
pub mod scenario;
