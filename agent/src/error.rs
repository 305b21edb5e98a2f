//! The crate's error type.
//!
//! One enum, so that the `herd agent` subcommand can print a single clear line and pick an exit
//! code; every variant says what failed and, where it helps, what to check.

use herd_protocol::plan::PlanErrors;

/// Why an agent could not run or finish its share of a test.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The broker address is not something the agent can connect to.
    #[error(transparent)]
    InvalidBroker(#[from] herd_protocol::broker::BrokerAddrError),
    /// A TLS option (CA, client certificate or key) cannot be used; it names the option.
    #[error(transparent)]
    Tls(#[from] herd_protocol::tls::TlsError),
    /// The broker could not be reached in time at startup.
    #[error(
        "cannot connect to the MQTT broker at {broker} (gave up after {seconds} s): {message}"
    )]
    Connect {
        /// Where the agent tried to connect.
        broker: String,
        /// How long it kept retrying.
        seconds: u64,
        /// The last connection error.
        message: String,
    },
    /// The MQTT session ended before the agent was done with it.
    #[error("the MQTT session ended unexpectedly: {0}")]
    Session(String),
    /// Messages the broker never acknowledged before the agent had to give up.
    #[error("the broker did not acknowledge {pending} message(s) within {seconds} s")]
    Unacknowledged {
        /// How many messages were still waiting for their acknowledgement.
        pending: usize,
        /// How long the agent waited.
        seconds: u64,
    },
    /// The plan in the start command is invalid.
    #[error("the plan in the start command is invalid:\n{0}")]
    Plan(#[from] PlanErrors),
    /// The plan cannot be turned into HTTP requests (bad URL or header).
    #[error("cannot build the request of step {step:?}: {reason}")]
    Request {
        /// The step's label.
        step: String,
        /// What is wrong.
        reason: String,
    },
    /// No start command came within the agent's start wait.
    #[error("{0}")]
    NoStart(String),
    /// A data feeder has nothing for this agent, or its rows (sent in chunks) did not arrive whole.
    #[error("cannot feed this agent: {0}")]
    Feeder(String),
    /// The body files sent in chunks before the start command did not arrive whole.
    #[error("cannot send the plan's body files: {0}")]
    BodyData(String),
    /// The TLS configuration for https targets could not be built.
    #[error("cannot set up TLS for https targets: {reason}")]
    TargetTls {
        /// What rustls said.
        reason: String,
    },
    /// The start command has no index for this agent.
    #[error("the start command assigns no index to agent {agent} (agents assigned: {assigned})")]
    NotAssigned {
        /// This agent.
        agent: String,
        /// The agents the command does name.
        assigned: String,
    },
    /// The start command's index for this agent is outside `0..agent_count`.
    #[error("agent {agent} has index {index}, but the run has only {count} agent(s)")]
    BadIndex {
        /// This agent.
        agent: String,
        /// Its index.
        index: u32,
        /// The number of agents.
        count: u32,
    },
    /// The plan's script file does not compile in the agent's sandbox.
    #[error("cannot load the plan's scripts: {0}")]
    Script(String),
}
