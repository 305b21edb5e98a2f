//! The plan's `regions`: how many of the run's agents run in which region.
//!
//! `regions: [{region: eu-west-1, agents: 4}, {region: us-east-1, agents: 2}]` places agents
//! 0–3 in eu-west-1 and 4–5 in us-east-1: agent `agent-i` belongs to the region whose running
//! total first exceeds `i`, so the placement is a pure function of the plan, and the launcher,
//! the aggregator (per-region figures) and a resumed coordinator all derive the same one.
//!
//! With `regions`, the run's agent count *is* the sum of the regions' agents: `agents` may be
//! left out, and when it is given it must equal that sum (a plan that says both must not
//! contradict itself). Which regions exist is the launcher's business (`[[launcher.regions]]`
//! in `herd.toml`); the plan only checks the form of a region's name.

use super::cx::{join, Cx};
use super::Plan;
use crate::AgentId;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// One region's share of the run's agents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionShare {
    /// The region (an AWS region name such as `eu-west-1`, or any label for local agents).
    pub region: String,
    /// How many agents run there (≥ 1).
    pub agents: u32,
}

/// Key prefix of a region's figures among the aggregated steps (`region:eu-west-1`).
pub const REGION_KEY_PREFIX: &str = "region:";

const REGION_KEYS: &[&str] = &["region", "agents"];

impl Plan {
    /// The region agent `index` runs in, when the plan has `regions`.
    pub fn agent_region(&self, index: u32) -> Option<&str> {
        region_of(&self.regions, index)
    }

    /// Each numbered agent's region (`agent-i`, as the run names its agents); empty without
    /// `regions`.
    pub fn agent_regions(&self) -> BTreeMap<AgentId, String> {
        (0..self.agents)
            .filter_map(|i| Some((AgentId::numbered(i), self.agent_region(i)?.to_owned())))
            .collect()
    }
}

impl Plan {
    /// Why the plan cannot run on `agents` agents because of its regions (an `--agents` or
    /// `overrides.agents` that disagrees with them), if it cannot.
    pub(super) fn check_region_agents(&self, agents: u32) -> Option<super::FieldError> {
        let total: u64 = self.regions.iter().map(|r| u64::from(r.agents)).sum();
        (!self.regions.is_empty() && total != u64::from(agents)).then(|| super::FieldError {
            path: "agents".into(),
            message: format!(
                "the plan's regions place {total} agents, so the run cannot have {agents}: \
                 change regions[].agents instead"
            ),
        })
    }
}

/// The region of agent `index` under `regions` (see the module docs).
pub fn region_of(regions: &[RegionShare], index: u32) -> Option<&str> {
    let mut end = 0u64;
    for r in regions {
        end += u64::from(r.agents);
        if u64::from(index) < end {
            return Some(&r.region);
        }
    }
    None
}

/// `regions` as written in a plan.
pub fn regions_json(regions: &[RegionShare]) -> Value {
    Value::Array(
        regions
            .iter()
            .map(|r| json!({"region": r.region, "agents": r.agents}))
            .collect(),
    )
}

/// Whether `name` can be a region: 1–32 lower-case ASCII letters, digits and `-`, starting with
/// a letter (AWS's names, `eu-west-1`, and short local labels alike). The name goes into result
/// keys and ECS calls, so nothing else is accepted.
pub fn is_region_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

impl Cx {
    /// Parses `regions` and reconciles it with `agents` (`None` when `agents` was not written);
    /// returns the regions and the run's agent count.
    pub(super) fn regions(
        &mut self,
        v: &Value,
        agents: Option<Option<u32>>,
    ) -> Option<(Vec<RegionShare>, u32)> {
        let Value::Array(items) = v else {
            self.err(
                "regions",
                "must be a list like [{region: eu-west-1, agents: 4}]",
            );
            return None;
        };
        if items.is_empty() {
            self.err("regions", "must name at least one region");
            return None;
        }
        let mut out: Vec<RegionShare> = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let path = format!("regions[{i}]");
            let Some(m) = self.object(item, &path, REGION_KEYS) else {
                ok = false;
                continue;
            };
            let region = self
                .required(m, &path, "region")
                .and_then(|r| self.string(r, &join(&path, "region")));
            let region = region.filter(|name| {
                let good = is_region_name(name);
                if !good {
                    self.err(
                        &join(&path, "region"),
                        format!(
                            "{name:?} is not a region name (lower-case letters, digits and '-', \
                             like eu-west-1)"
                        ),
                    );
                } else if out.iter().any(|r| &r.region == name) {
                    self.err(
                        &join(&path, "region"),
                        format!("{name:?} is listed twice: give each region once"),
                    );
                    return false;
                }
                good
            });
            let count = self
                .required(m, &path, "agents")
                .and_then(|a| self.integer(a, &join(&path, "agents"), 1, "must be >= 1"));
            match (region, count) {
                (Some(region), Some(agents)) => out.push(RegionShare { region, agents }),
                _ => ok = false,
            }
        }
        if !ok {
            return None;
        }
        let total: u64 = out.iter().map(|r| u64::from(r.agents)).sum();
        let Ok(total) = u32::try_from(total) else {
            self.err("regions", "the regions' agents add up to too many");
            return None;
        };
        match agents {
            Some(Some(given)) if given != total => {
                self.err(
                    "agents",
                    format!(
                        "is {given} but the regions' agents add up to {total}: with regions, \
                         leave agents out (it is their sum) or make them agree"
                    ),
                );
                None
            }
            Some(None) => None,
            _ => Some((out, total)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{from_yaml_str, FieldError};
    use super::*;

    fn plan(extra: &str) -> Result<Plan, Vec<String>> {
        let text = format!(
            "version: 1\nname: r\ntarget: http://127.0.0.1:1\n{extra}\nload: {{stages: [{{duration: 1s, vus: 6}}]}}\nscenario: [{{get: /}}]\n"
        );
        from_yaml_str(&text).map_err(|e| e.0.iter().map(FieldError::to_string).collect())
    }

    #[test]
    fn regions_set_the_agent_count_and_place_agents_in_order() {
        let p = plan("regions: [{region: eu-west-1, agents: 4}, {region: us-east-1, agents: 2}]")
            .expect("valid");
        assert_eq!(p.agents, 6);
        let placed: Vec<Option<&str>> = (0..7).map(|i| p.agent_region(i)).collect();
        assert_eq!(
            placed,
            [
                Some("eu-west-1"),
                Some("eu-west-1"),
                Some("eu-west-1"),
                Some("eu-west-1"),
                Some("us-east-1"),
                Some("us-east-1"),
                None
            ]
        );
        let back = super::super::from_value(&p.to_json()).expect("round trip");
        assert_eq!(back, p);
        let agreeing = plan(
            "agents: 6\nregions: [{region: eu-west-1, agents: 4}, {region: us-east-1, agents: 2}]",
        )
        .expect("agents that agree are fine");
        assert_eq!(agreeing, p);
        assert_eq!(plan("agents: 2").expect("valid").regions, []);
        // --agents / overrides.agents cannot contradict the regions.
        assert_eq!(p.check_agents(6), []);
        assert_eq!(
            p.check_agents(3)
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [
                "agents: the plan's regions place 6 agents, so the run cannot have 3: change \
              regions[].agents instead"
            ]
        );
        assert_eq!(
            p.agent_regions()
                .into_iter()
                .map(|(a, r)| format!("{a}={r}"))
                .collect::<Vec<_>>(),
            [
                "agent-0=eu-west-1",
                "agent-1=eu-west-1",
                "agent-2=eu-west-1",
                "agent-3=eu-west-1",
                "agent-4=us-east-1",
                "agent-5=us-east-1"
            ]
        );
    }

    #[test]
    fn every_problem_with_regions_is_named() {
        let errors = plan(
            "regions: [{region: EU_west, agents: 0}, {agents: 2}, {region: b, agents: 1, zone: x}, \
             {region: b, agents: 1}, 7]",
        )
        .expect_err("invalid");
        assert_eq!(
            errors,
            [
                "regions[0].region: \"EU_west\" is not a region name (lower-case letters, digits \
                 and '-', like eu-west-1)",
                "regions[0].agents: must be >= 1",
                "regions[1].region: is required",
                "regions[2].zone: unknown field (expected one of: region, agents)",
                "regions[3].region: \"b\" is listed twice: give each region once",
                "regions[4]: must be a map, got a number",
            ]
        );
        assert_eq!(
            plan("agents: 5\nregions: [{region: a, agents: 4}, {region: b, agents: 2}]")
                .expect_err("disagrees"),
            [
                "agents: is 5 but the regions' agents add up to 6: with regions, leave agents out \
              (it is their sum) or make them agree"
            ]
        );
        assert_eq!(
            plan("regions: []").expect_err("empty"),
            ["regions: must name at least one region"]
        );
        assert_eq!(
            plan("regions: {eu-west-1: 4}").expect_err("not a list"),
            ["regions: must be a list like [{region: eu-west-1, agents: 4}]"]
        );
    }
}
