//! `[launcher]` of `herd.toml`: local processes, or ECS tasks in one or more regions.
//!
//! The `[launcher]` table itself places agents in the coordinator's own region (`[aws] region`
//! or the SDK's chain); each `[[launcher.regions]]` table places them in another region, with
//! that region's cluster, task definition and network (a regional stack's outputs). A plan's
//! `regions:` names them; see [`EcsSettings::placement`].

use super::errors::Errors;
use super::raw;

/// Where agents run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LauncherConfig {
    /// Child processes of the coordinator.
    Local,
    /// ECS Fargate tasks.
    Ecs(EcsSettings),
}

/// `[launcher] kind = "ecs"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsSettings {
    /// Cluster name or ARN.
    pub cluster: String,
    /// Task definition (family, family:revision or ARN) whose container runs `herd agent`.
    pub task_definition: String,
    /// The container the overrides apply to (default `herd-agent`).
    pub container_name: String,
    /// awsvpc subnets.
    pub subnets: Vec<String>,
    /// awsvpc security groups.
    pub security_groups: Vec<String>,
    /// Give tasks a public IP (needed in public subnets without a NAT).
    pub assign_public_ip: bool,
    /// `[[launcher.regions]]`: other regions agents may run in, in the order written.
    pub regions: Vec<EcsRegion>,
}

/// One `[[launcher.regions]]` table: where a region's agents run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsRegion {
    /// The AWS region (`eu-west-1`): its ECS endpoint is called.
    pub region: String,
    /// Cluster name or ARN in that region.
    pub cluster: String,
    /// Task definition in that region.
    pub task_definition: String,
    /// The container the overrides apply to (default: `[launcher] container_name`).
    pub container_name: String,
    /// awsvpc subnets in that region.
    pub subnets: Vec<String>,
    /// awsvpc security groups in that region.
    pub security_groups: Vec<String>,
    /// Give tasks a public IP (default: `[launcher] assign_public_ip`).
    pub assign_public_ip: bool,
}

impl EcsSettings {
    /// Where a region's agents run: its `[[launcher.regions]]` table, or, for the coordinator's
    /// own region (`home`, when known) without one, the `[launcher]` table itself (as an
    /// [`EcsRegion`] named `home`). `None`: the region is not configured.
    pub fn placement(&self, region: &str, home: Option<&str>) -> Option<EcsRegion> {
        if let Some(r) = self.regions.iter().find(|r| r.region == region) {
            return Some(r.clone());
        }
        (home == Some(region)).then(|| self.home(region))
    }

    /// The `[launcher]` table itself as the placement of region `name` (the coordinator's own).
    pub fn home(&self, name: &str) -> EcsRegion {
        EcsRegion {
            region: name.to_owned(),
            cluster: self.cluster.clone(),
            task_definition: self.task_definition.clone(),
            container_name: self.container_name.clone(),
            subnets: self.subnets.clone(),
            security_groups: self.security_groups.clone(),
            assign_public_ip: self.assign_public_ip,
        }
    }

    /// Every region agents may run in: `home` (when known) and each `[[launcher.regions]]`.
    pub fn region_names(&self, home: Option<&str>) -> Vec<String> {
        let mut names: Vec<String> = home.map(str::to_owned).into_iter().collect();
        for r in &self.regions {
            if !names.contains(&r.region) {
                names.push(r.region.clone());
            }
        }
        names
    }
}

pub(super) fn launcher(errors: &mut Errors, raw: raw::RawLauncher) -> LauncherConfig {
    match raw.kind.as_deref() {
        None | Some("local") => {
            let ecs_only = [
                ("launcher.cluster", raw.cluster.is_some()),
                ("launcher.task_definition", raw.task_definition.is_some()),
                ("launcher.container_name", raw.container_name.is_some()),
                ("launcher.subnets", raw.subnets.is_some()),
                ("launcher.security_groups", raw.security_groups.is_some()),
                ("launcher.assign_public_ip", raw.assign_public_ip.is_some()),
                ("launcher.regions", raw.regions.is_some()),
            ];
            for (key, set) in ecs_only {
                if set {
                    errors.push(
                        key,
                        "only for kind = \"ecs\" (local agents take a plan's regions as labels)",
                    );
                }
            }
            LauncherConfig::Local
        }
        Some("ecs") => {
            let when = "when launcher.kind = \"ecs\"";
            let cluster = errors.required("launcher.cluster", raw.cluster, when);
            let task_definition =
                errors.required("launcher.task_definition", raw.task_definition, when);
            let subnets = raw.subnets.unwrap_or_default();
            if subnets.is_empty() {
                errors.push(
                    "launcher.subnets",
                    format!("at least one is required {when}"),
                );
            }
            let container_name = raw
                .container_name
                .unwrap_or_else(|| "herd-agent".to_owned());
            let assign_public_ip = raw.assign_public_ip.unwrap_or(false);
            let regions = raw
                .regions
                .unwrap_or_default()
                .into_iter()
                .enumerate()
                .map(|(i, r)| region(errors, i, r, &container_name, assign_public_ip))
                .collect::<Vec<_>>();
            for (i, r) in regions.iter().enumerate() {
                if !r.region.is_empty() && regions[..i].iter().any(|o| o.region == r.region) {
                    errors.push(
                        &format!("launcher.regions[{i}].region"),
                        format!("{:?} has a table already: give each region once", r.region),
                    );
                }
            }
            LauncherConfig::Ecs(EcsSettings {
                cluster,
                task_definition,
                container_name,
                subnets,
                security_groups: raw.security_groups.unwrap_or_default(),
                assign_public_ip,
                regions,
            })
        }
        Some(other) => {
            errors.push("launcher.kind", format!("{other:?} is not local or ecs"));
            LauncherConfig::Local
        }
    }
}

fn region(
    errors: &mut Errors,
    i: usize,
    raw: raw::RawRegion,
    container_name: &str,
    assign_public_ip: bool,
) -> EcsRegion {
    let key = |k: &str| format!("launcher.regions[{i}].{k}");
    let when = "in each [[launcher.regions]]";
    let region = errors.required(&key("region"), raw.region, when);
    if !region.is_empty() && !herd_protocol::plan::is_region_name(&region) {
        errors.push(
            &key("region"),
            format!("{region:?} is not a region name like eu-west-1"),
        );
    }
    let cluster = errors.required(&key("cluster"), raw.cluster, when);
    let task_definition = errors.required(&key("task_definition"), raw.task_definition, when);
    let subnets = raw.subnets.unwrap_or_default();
    if subnets.is_empty() {
        errors.push(&key("subnets"), format!("at least one is required {when}"));
    }
    EcsRegion {
        region,
        cluster,
        task_definition,
        container_name: raw
            .container_name
            .unwrap_or_else(|| container_name.to_owned()),
        subnets,
        security_groups: raw.security_groups.unwrap_or_default(),
        assign_public_ip: raw.assign_public_ip.unwrap_or(assign_public_ip),
    }
}
