//! Distributed load (issue 17): rollcheck's own load generators, deployed as a Swarm job on
//! the cluster lab's nodes, each sending one [`Shard`](crate::load::shard::Shard) of the load
//! and reporting through its container log ([`wire`]); the `rollcheck run` process merges
//! their records into its own history and gates on the merged data.

pub mod placement;
pub mod run;
pub mod spec;
pub mod wire;
