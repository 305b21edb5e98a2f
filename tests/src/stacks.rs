//! Deployed stacks for end-to-end tests: CloudFormation templates into moto, `herd` run with
//! moto's environment, and the one-line changes a rendered `herd.toml` needs where moto cannot
//! play (see `aws_init.rs` and `aws_regions.rs`).

use crate::aws::Moto;
use crate::Herd;
use aws_sdk_cloudformation::types::{Capability, Parameter, StackStatus};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// `herd ARGS` with moto's environment; (exit code, stdout, stderr).
pub fn herd(moto: &Moto, args: &[&str], dir: &Path) -> (i32, String, String) {
    let mut cmd = Herd::new(args, dir);
    for (k, v) in moto.env() {
        cmd = cmd.env(k, &v);
    }
    let out = cmd.run(Duration::from_secs(60));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Deploys `template` as `name` and waits for `CREATE_COMPLETE`; the stack's outputs.
pub async fn deploy(
    cfn: &aws_sdk_cloudformation::Client,
    name: &str,
    template: &str,
    parameters: &[(&str, &str)],
) -> BTreeMap<String, String> {
    cfn.create_stack()
        .stack_name(name)
        .template_body(template)
        .capabilities(Capability::CapabilityIam)
        .set_parameters(Some(
            parameters
                .iter()
                .map(|(k, v)| {
                    Parameter::builder()
                        .parameter_key(*k)
                        .parameter_value(*v)
                        .build()
                })
                .collect(),
        ))
        .send()
        .await
        .expect("CreateStack");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let described = cfn
            .describe_stacks()
            .stack_name(name)
            .send()
            .await
            .expect("DescribeStacks");
        let stack = described.stacks().first().expect("the stack");
        match stack.stack_status() {
            Some(StackStatus::CreateComplete) => {
                return stack
                    .outputs()
                    .iter()
                    .filter_map(|o| {
                        Some((o.output_key()?.to_owned(), o.output_value()?.to_owned()))
                    })
                    .collect()
            }
            Some(StackStatus::CreateInProgress) => {}
            other => panic!("stack {name}: {other:?} {:?}", stack.stack_status_reason()),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stack {name} not created in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `text` with the line `key = …` replaced by `key = "value"`; the old value must be `was`.
pub fn replace_value(text: &str, key: &str, was: &str, value: &str) -> String {
    let old = format!("{key} = {}", json!(was));
    assert_eq!(
        text.lines().filter(|l| *l == old).count(),
        1,
        "{old} in:\n{text}"
    );
    text.replace(&old, &format!("{key} = {}", json!(value)))
}
