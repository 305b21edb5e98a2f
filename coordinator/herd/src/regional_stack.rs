//! `herd init aws --regional-stack REGION=NAME`: a regional stack's outputs
//! (infra/cloudformation/herd-region.yaml) become one `[[launcher.regions]]` table.
//!
//! Regional stacks are named on the command line rather than discovered: they live in other
//! regions (discovery would mean listing stacks in every region), and a StackSet names its
//! instances `StackSet-NAME-<id>`, so only the user knows which ones belong to this hub. Each
//! is read in its own region, and its `Region` output must be that region (a stack named for
//! the wrong region is refused rather than written under the wrong name).

use crate::stack::{list, present, quoted, require, RenderError};
use std::collections::BTreeMap;

/// The outputs a `[[launcher.regions]]` table needs, in the table's order.
pub const REGIONAL_OUTPUTS: [&str; 7] = [
    "Region",
    "ClusterName",
    "AgentTaskDefinition",
    "AgentContainerName",
    "Subnets",
    "SecurityGroups",
    "AssignPublicIp",
];

/// A `--regional-stack` argument: `REGION=NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionalStack {
    /// The region the stack is deployed in.
    pub region: String,
    /// The stack's name or id.
    pub stack: String,
}

impl std::str::FromStr for RegionalStack {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('=') {
            Some((region, stack)) if !region.trim().is_empty() && !stack.trim().is_empty() => {
                Ok(Self {
                    region: region.trim().to_owned(),
                    stack: stack.trim().to_owned(),
                })
            }
            _ => Err(format!(
                "{s:?} is not REGION=STACK (for example eu-west-1=herd-agents)"
            )),
        }
    }
}

/// The `[[launcher.regions]]` table of a regional stack deployed in `region`.
pub fn render_region(
    region: &str,
    outputs: &BTreeMap<String, String>,
) -> Result<String, RenderError> {
    require(outputs, &REGIONAL_OUTPUTS)?;
    let o = |name: &str| present(outputs, name).unwrap_or_default();
    if o("Region") != region {
        return Err(RenderError::Malformed {
            output: "Region",
            value: o("Region").to_owned(),
            problem: "not the region the stack was named for",
        });
    }
    let public_ip = match o("AssignPublicIp") {
        "true" => "true",
        "false" => "false",
        other => {
            return Err(RenderError::Malformed {
                output: "AssignPublicIp",
                value: other.to_owned(),
                problem: "not true or false",
            })
        }
    };
    Ok(format!(
        "\n[[launcher.regions]]\nregion = {}\ncluster = {}\ntask_definition = {}\n\
         container_name = {}\nsubnets = {}\nsecurity_groups = {}\nassign_public_ip = {public_ip}\n",
        quoted(o("Region")),
        quoted(o("ClusterName")),
        quoted(o("AgentTaskDefinition")),
        quoted(o("AgentContainerName")),
        list(o("Subnets")),
        list(o("SecurityGroups")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use herd_coordinator::config::{LauncherConfig, ServiceConfig};

    fn outputs() -> BTreeMap<String, String> {
        [
            ("Region", "eu-west-1"),
            ("ClusterName", "herd"),
            (
                "AgentTaskDefinition",
                "arn:aws:ecs:eu-west-1:123456789012:task-definition/herd-agent:2",
            ),
            ("AgentContainerName", "herd-agent"),
            ("Subnets", "subnet-e1, subnet-e2"),
            ("SecurityGroups", "sg-e"),
            ("AssignPublicIp", "false"),
            ("AgentLogGroup", "/ecs/herd-agent"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn a_regional_stacks_outputs_become_a_launcher_regions_table_the_parser_accepts() {
        let table = render_region("eu-west-1", &outputs()).expect("renders");
        let text = format!(
            "[launcher]\nkind = \"ecs\"\ncluster = \"herd\"\ntask_definition = \"t\"\n\
             subnets = [\"s\"]\n{table}"
        );
        let c = ServiceConfig::from_toml(&text).expect("the parser accepts it");
        let LauncherConfig::Ecs(ecs) = c.launcher else {
            panic!("ecs launcher expected");
        };
        let r = &ecs.regions[0];
        assert_eq!(r.region, "eu-west-1");
        assert_eq!(r.subnets, ["subnet-e1", "subnet-e2"]);
        assert_eq!(r.security_groups, ["sg-e"]);
        assert!(!r.assign_public_ip);
        assert!(r.task_definition.ends_with("herd-agent:2"));
    }

    #[test]
    fn missing_outputs_and_the_wrong_region_are_refused() {
        let mut partial = outputs();
        partial.remove("Subnets");
        partial.remove("ClusterName");
        assert_eq!(
            render_region("eu-west-1", &partial),
            Err(RenderError::Missing(vec![
                "ClusterName".into(),
                "Subnets".into()
            ]))
        );
        assert_eq!(
            render_region("us-west-2", &outputs())
                .expect_err("named for another region")
                .to_string(),
            "output Region = \"eu-west-1\": not the region the stack was named for"
        );
        assert_eq!(
            "eu-west-1=herd-agents".parse(),
            Ok(RegionalStack {
                region: "eu-west-1".into(),
                stack: "herd-agents".into()
            })
        );
        assert!("herd-agents".parse::<RegionalStack>().is_err());
    }
}
