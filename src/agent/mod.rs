//! Distributed load (issue 17, in progress): rollcheck's own load generators, deployed as a
//! Swarm job on the cluster's nodes, each sending one [`Shard`](crate::load::shard::Shard) of
//! the load and reporting through its container log ([`wire`]); the `rollcheck run` process
//! merges their results. Built so far: the split of the load and the wire format. Not yet:
//! the `rollcheck agent` subcommand, the job, the start barrier and the merge into a run.

pub mod wire;
