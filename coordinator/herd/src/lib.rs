//! `herd`: the one user-facing binary, and the wiring it is made of.
//!
//! This crate is where adapters are chosen; nothing below it chooses. [`adapters`] turns a
//! `herd.toml` into the coordinator's boundary objects (embedded or external broker, embedded
//! store or DynamoDB, local processes or ECS tasks, …) and [`local`] is the embedded default
//! `herd run` uses. The CLI itself (`src/cli/`, behind `src/main.rs`) parses arguments, calls
//! these, and turns outcomes into exit codes; [`stack`] turns a hub stack's outputs into `herd.toml` (`herd init aws`), and [`regional_stack`] regional stacks' outputs into its `[[launcher.regions]]` tables. `herd agent` is the only place the agent's code
//! enters the coordinator's process.
//!
//! The library part exists so that end-to-end tests can start the same wiring in-process.

pub mod adapters;
pub mod local;
pub mod regional_stack;
pub mod stack;
pub mod swarm;
