//! `herd init aws --stack NAME`: `herd.toml` from a deployed hub stack's outputs.
//!
//! The outputs are read with CloudFormation's `DescribeStacks` (the SDK's usual credentials,
//! `--region` or the usual region chain, `AWS_ENDPOINT_URL` for an emulator), rendered by
//! [`herd::stack::render`], validated by the same parser `herd up` uses, and only then written.
//! Missing outputs are all named (exit 2), as is a stack that does not exist or is not finished;
//! CloudFormation unreachable or refusing is exit 4. An existing file is kept unless `--force`.
//!
//! Each `--regional-stack REGION=NAME` (infra/cloudformation/herd-region.yaml, or a StackSet's
//! instance) is read in its region and adds one `[[launcher.regions]]` table
//! ([`herd::regional_stack`]); regional stacks are named, not discovered (see there why).

#[cfg(feature = "aws")]
use super::config::{self as service_config, Source};
use super::exit::Code;
#[cfg(feature = "aws")]
use anyhow::Context as _;
#[cfg(feature = "aws")]
use herd::regional_stack::render_region;
use herd::regional_stack::RegionalStack;
#[cfg(feature = "aws")]
use herd::stack::{describe_outputs, render, DescribeError};
use std::path::PathBuf;

/// Arguments of `herd init aws`.
#[derive(Debug, clap::Args)]
pub struct InitAwsArgs {
    /// The hub stack (infra/cloudformation/herd.yaml): its name or id.
    #[arg(long)]
    stack: String,
    /// The stack's region [default: the SDK's: `AWS_REGION`, the profile, …].
    #[arg(long)]
    region: Option<String>,
    /// Where to write `herd.toml` (`-` for standard output).
    #[arg(short, long, default_value = "herd.toml")]
    output: PathBuf,
    /// Replace an existing file.
    #[arg(long)]
    force: bool,
    /// A regional stack (infra/cloudformation/herd-region.yaml) as REGION=STACK: adds its
    /// `[[launcher.regions]]` table. Repeat for each region.
    #[arg(long = "regional-stack", value_name = "REGION=STACK")]
    regional_stacks: Vec<RegionalStack>,
}

/// `herd init aws`.
#[cfg(feature = "aws")]
pub fn aws(args: InitAwsArgs) -> anyhow::Result<Code> {
    let to_stdout = args.output.as_os_str() == "-";
    if !to_stdout && !args.force && args.output.exists() {
        eprintln!(
            "herd init aws: {} exists; choose another --output, or --force to replace it",
            args.output.display()
        );
        return Ok(Code::Invalid);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a runtime")?;
    let settings = herd_coordinator::config::AwsSettings {
        region: args.region.clone(),
        endpoint_url: None,
    };
    let described = runtime.block_on(async {
        let sdk = herd_coordinator::aws::sdk_config(&settings).await;
        let hub = describe_outputs(&sdk, &args.stack).await?;
        let mut regional = Vec::new();
        for r in &args.regional_stacks {
            let settings = herd_coordinator::config::AwsSettings {
                region: Some(r.region.clone()),
                endpoint_url: None,
            };
            let sdk = herd_coordinator::aws::sdk_config(&settings).await;
            regional.push(describe_outputs(&sdk, &r.stack).await?);
        }
        Ok::<_, DescribeError>((hub, regional))
    });
    let (outputs, regional) = match described {
        Ok(outputs) => outputs,
        Err(e) => {
            eprintln!("herd init aws: {e}");
            return Ok(match e {
                DescribeError::NotFound { .. } | DescribeError::NotReady { .. } => Code::Invalid,
                DescribeError::Call { .. } => Code::Internal,
            });
        }
    };
    let mut rendered = match render(&args.stack, &outputs) {
        Ok(rendered) => rendered,
        Err(e) => {
            eprintln!("herd init aws: stack {}: {e}", args.stack);
            return Ok(Code::Invalid);
        }
    };
    for (r, outputs) in args.regional_stacks.iter().zip(&regional) {
        match render_region(&r.region, outputs) {
            Ok(table) => rendered.toml.push_str(&table),
            Err(e) => {
                eprintln!(
                    "herd init aws: regional stack {} in {}: {e}",
                    r.stack, r.region
                );
                return Ok(Code::Invalid);
            }
        }
    }
    // The parser `herd up` uses has the last word: nothing it refuses is written.
    if let Err(code) = service_config::parse(&Source::Stack(args.stack.clone()), &rendered.toml) {
        return Ok(code);
    }
    if to_stdout {
        print!("{}", rendered.toml);
    } else {
        std::fs::write(&args.output, &rendered.toml)
            .with_context(|| format!("cannot write {}", args.output.display()))?;
        eprintln!(
            "herd init aws: wrote {} from stack {}",
            args.output.display(),
            args.stack
        );
    }
    match &rendered.jwt_flags {
        Some(flags) => eprintln!(
            "herd init aws: to accept the console's users, start the coordinator with: herd up --config {} {flags}",
            args.output.display()
        ),
        None => eprintln!(
            "herd init aws: the stack has no Cognito outputs (CognitoJwksUrl, CognitoIssuer, CognitoClientId): API tokens only (herd token create)"
        ),
    }
    Ok(Code::Passed)
}

/// `herd init aws` in a build without the `aws` feature: refused, naming the feature.
#[cfg(not(feature = "aws"))]
pub fn aws(args: InitAwsArgs) -> anyhow::Result<Code> {
    let _ = (
        args.stack,
        args.region,
        args.output,
        args.force,
        args.regional_stacks,
    );
    eprintln!(
        "herd init aws: this herd was built without the `aws` feature (rebuild with `--features aws`, the default)"
    );
    Ok(Code::Invalid)
}
