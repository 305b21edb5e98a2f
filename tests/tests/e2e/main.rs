//! The end-to-end tests, one module per area, in one test binary: each binary links the whole
//! coordinator with the AWS SDK, and thirteen separate links cost minutes of CI on 2 cores.

mod abort;
mod api;
mod aws_agents;
mod aws_commands;
mod aws_init;
mod aws_regions;
mod aws_up;
mod broker_acl;
mod console;
mod console_report;
mod cookies;
mod demo;
mod export;
mod faults;
mod faults_target;
mod flow;
mod https;
mod import;
mod jwt;
mod logs;
mod loss;
mod many;
mod metrics;
mod mqtt_commands;
mod outputs;
mod ramp;
mod resume;
mod run;
mod scenario;
mod script;
mod security;
mod swarm;
mod up_config;
