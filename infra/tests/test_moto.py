"""The templates deployed into moto's CloudFormation (a moto server on loopback, see conftest).

moto 5.2 creates the VPC, subnets, security groups, queues (with redrive), topics, tables, log
groups, IAM roles, ECS cluster, task definitions and service, and the load balancer. It skips,
with only a warning, a few resource types (MOTO_SKIPS below), and outputs that refer to them
vanish. The tests assert that exactly those are skipped, and then create each skipped resource
through moto's own APIs from the template's own properties, so those properties are exercised
too.

moto also ignores some properties of resources it does create (MOTO_IGNORES below): the tests
apply those through the APIs as well, from the template's values, and check the result.
"""

from __future__ import annotations

import fnmatch
import json
import time
import tomllib
import urllib.request

import pytest

import cfn

ACCOUNT = "123456789012"
HUB_REGION = "us-east-1"
HUB_PARAMS = {
    "ImageUri": f"{ACCOUNT}.dkr.ecr.{HUB_REGION}.amazonaws.com/herd:1.0.0",
    "IotEndpoint": "abcdefghij1234-ats.iot.us-east-1.amazonaws.com",
    "AdminEmail": "admin@example.com",
}
MOTO_SKIPS = {
    "AWS::IoT::TopicRule",
    "AWS::Cognito::UserPool",
    "AWS::Cognito::UserPoolClient",
    "AWS::Cognito::UserPoolGroup",
    "AWS::Cognito::UserPoolUser",
    "AWS::Cognito::UserPoolUserToGroupAttachment",
    "AWS::SQS::QueuePolicy",
    "AWS::SNS::Subscription",
    "AWS::EC2::SecurityGroupEgress",
}

# Properties moto's CloudFormation drops from resources it creates (moto 5.2.6).
MOTO_IGNORES = {
    "AWS::DynamoDB::Table": ["PointInTimeRecoverySpecification", "TimeToLiveSpecification"],
    "AWS::ECS::TaskDefinition": ["NetworkMode", "RequiresCompatibilities", "Cpu", "RuntimePlatform",
                                 "TaskRoleArn", "ExecutionRoleArn"],
    "AWS::ECS::Service": ["LaunchType", "NetworkConfiguration", "LoadBalancers",
                          "DeploymentConfiguration", "HealthCheckGracePeriodSeconds", "Tags"],
    "AWS::EC2::SubnetRouteTableAssociation": ["SubnetId"],  # the route table shows no association
    # Fn::GetAZs "" always yields us-east-1's zone names, whatever the stack's region.
}


class Stack:
    """A created stack: its outputs, resources, and an evaluator of its template's functions
    that resolves Ref and GetAtt to what moto created."""

    def __init__(self, aws, region, name, path, params):
        self.aws, self.region, self.name = aws, region, name
        self.template = cfn.load(path)
        cf = aws("cloudformation", region)
        cf.create_stack(
            StackName=name,
            TemplateBody=path.read_text(),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
            Capabilities=["CAPABILITY_IAM"],
        )
        self.status = wait_for_stack(cf, name)
        desc = cf.describe_stacks(StackName=name)["Stacks"][0]
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in desc.get("Outputs", [])}
        # moto lists each skipped resource as an entry with empty ids: leave those out.
        summaries = [r for r in cf.list_stack_resources(StackName=name)["StackResourceSummaries"]
                     if r["LogicalResourceId"]]
        self.physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in summaries}
        self.types = {r["LogicalResourceId"]: r["ResourceType"] for r in summaries}
        self.eval = cfn.Evaluator(self.template, region, params, refs=dict(self.physical), getatt=self.getatt)

    def getatt(self, logical, attribute):
        kind = self.template["Resources"][logical]["Type"]
        phys = self.physical[logical]
        if (kind, attribute) == ("AWS::SQS::Queue", "Arn"):
            sqs = self.aws("sqs", self.region)
            return sqs.get_queue_attributes(QueueUrl=phys, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        if (kind, attribute) == ("AWS::IAM::Role", "Arn"):
            return self.aws("iam", self.region).get_role(RoleName=phys)["Role"]["Arn"]
        if (kind, attribute) == ("AWS::Logs::LogGroup", "Arn"):
            return f"arn:aws:logs:{self.region}:{ACCOUNT}:log-group:{phys}:*"
        raise NotImplementedError(f"GetAtt {logical}.{attribute}")

    def active_resources(self) -> dict[str, str]:
        """{logical id: type} of what CloudFormation would create with these parameters."""
        return {n: r["Type"] for n, r in self.template["Resources"].items() if self.eval.active(r)}

    def props(self, logical):
        return self.eval.eval(self.template["Resources"][logical]["Properties"])


def wait_for_stack(cf, name, limit=60):
    deadline = time.monotonic() + limit
    while True:
        stack = cf.describe_stacks(StackName=name)["Stacks"][0]
        if not stack["StackStatus"].endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if stack["StackStatus"] != "CREATE_COMPLETE":
        events = cf.describe_stack_events(StackName=name)["StackEvents"]
        failed = [(e["LogicalResourceId"], e.get("ResourceStatusReason")) for e in events if "FAILED" in e["ResourceStatus"]]
        pytest.fail(f"{name}: {stack['StackStatus']} {stack.get('StackStatusReason')} {failed}")
    return stack["StackStatus"]


@pytest.fixture(scope="module")
def hub_stack(aws) -> Stack:
    # The new-VPC variant: VpcId empty, two public subnets, no NAT, HTTP listener.
    return Stack(aws, HUB_REGION, "herd", cfn.HUB, HUB_PARAMS)


def camel(node):
    """CloudFormation property names as the service APIs spell them (QueueUrl -> queueUrl)."""
    if isinstance(node, dict):
        return {k[0].lower() + k[1:]: camel(v) for k, v in node.items()}
    if isinstance(node, list):
        return [camel(v) for v in node]
    return node


# ---------------------------------------------------------------- the hub


def test_hub_stack_creates_and_only_moto_gaps_are_skipped(hub_stack):
    assert hub_stack.status == "CREATE_COMPLETE"
    active = hub_stack.active_resources()
    skipped = {n: t for n, t in active.items() if n not in hub_stack.physical}
    # Exactly the known gaps: a new one would otherwise go unnoticed.
    assert set(skipped.values()) == MOTO_SKIPS, skipped
    assert set(hub_stack.physical) <= set(active)
    # Every skipped type is really in the template (they are created below through the APIs).
    for kind in MOTO_SKIPS:
        assert cfn.resources(hub_stack.template, kind), kind
    # Outputs that refer to a skipped resource vanish; every other one is there.
    vanished = set(hub_stack.template["Outputs"]) - set(hub_stack.outputs)
    assert vanished == {"CognitoClientId", "UserPoolId"}


def test_queues_redrive_to_their_dead_letter_queues(hub_stack, aws):
    sqs = aws("sqs")
    o = hub_stack.outputs
    for queue, dlq, count in [("CommandsQueue", "CommandsDeadLetterQueue", 5), ("FramesQueue", "FramesDeadLetterQueue", 10)]:
        url = hub_stack.physical[queue]
        assert url in (o["CommandsQueueUrl"], o["FramesQueueUrl"])
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        redrive = json.loads(attrs["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"] == hub_stack.getatt(dlq, "Arn")
        assert int(redrive["maxReceiveCount"]) == count
        assert "FifoQueue" not in attrs or attrs["FifoQueue"] == "false"
        dlq_attrs = sqs.get_queue_attributes(QueueUrl=hub_stack.physical[dlq], AttributeNames=["All"])["Attributes"]
        assert dlq_attrs["MessageRetentionPeriod"] == "1209600"
    # A command that keeps failing ends in the DLQ after maxReceiveCount receives.
    url = o["CommandsQueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="not a command")
    for _ in range(5):
        got = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0, WaitTimeSeconds=1)
        assert got.get("Messages")
    assert not sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages")
    dead = sqs.receive_message(QueueUrl=hub_stack.physical["CommandsDeadLetterQueue"], WaitTimeSeconds=1)
    assert dead["Messages"][0]["Body"] == "not a command"


def test_tables_are_the_readmes(hub_stack, aws):
    from test_templates import readme_tables

    ddb = aws("dynamodb")
    for suffix, (pk, sk, indexes) in readme_tables().items():
        table = ddb.describe_table(TableName=f"herd-{suffix}")["Table"]
        assert table["TableStatus"] == "ACTIVE"
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        keys = {k["KeyType"]: k["AttributeName"] for k in table["KeySchema"]}
        assert (keys["HASH"], keys.get("RANGE")) == (pk, sk)
        found = {
            g["IndexName"]: tuple({k["KeyType"]: k["AttributeName"] for k in g["KeySchema"]}.get(t) for t in ("HASH", "RANGE"))
            for g in table.get("GlobalSecondaryIndexes", [])
        }
        assert found == indexes
        assert {a["AttributeType"] for a in table["AttributeDefinitions"]} == {"S"}
    # moto ignores PointInTimeRecoverySpecification and TimeToLiveSpecification (MOTO_IGNORES):
    # apply the template's through the APIs.
    for logical, kind in hub_stack.types.items():
        if kind != "AWS::DynamoDB::Table":
            continue
        props = hub_stack.props(logical)
        ddb.update_continuous_backups(TableName=props["TableName"],
                                      PointInTimeRecoverySpecification=props["PointInTimeRecoverySpecification"])
        backups = ddb.describe_continuous_backups(TableName=props["TableName"])["ContinuousBackupsDescription"]
        assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    ttl = hub_stack.props("CommandsTable")["TimeToLiveSpecification"]
    ddb.update_time_to_live(TableName="herd-commands", TimeToLiveSpecification=ttl)
    got = ddb.describe_time_to_live(TableName="herd-commands")["TimeToLiveDescription"]
    assert (got["TimeToLiveStatus"], got["AttributeName"]) == ("ENABLED", "expires_at")


def test_log_groups_keep_30_days(hub_stack, aws):
    groups = aws("logs").describe_log_groups()["logGroups"]
    mine = {g["logGroupName"]: g.get("retentionInDays") for g in groups}
    for logical, kind in hub_stack.types.items():
        if kind == "AWS::Logs::LogGroup":
            assert mine[hub_stack.physical[logical]] == 30


def test_ecs_cluster_task_definitions_and_service(hub_stack, aws):
    ecs = aws("ecs")
    o = hub_stack.outputs
    (cluster,) = ecs.describe_clusters(clusters=[o["ClusterName"]])["clusters"]
    assert cluster["status"] == "ACTIVE" and cluster["clusterName"] == "herd"

    agent = ecs.describe_task_definition(taskDefinition=o["AgentTaskDefinition"])["taskDefinition"]
    assert agent["family"] == "herd-agent"
    (c,) = agent["containerDefinitions"]
    assert c["name"] == o["AgentContainerName"] == "herd-agent"
    assert (c["entryPoint"], c["command"], c["memory"], c["image"]) == (["herd"], ["agent"], 2048, HUB_PARAMS["ImageUri"])
    assert c["logConfiguration"]["options"]["awslogs-group"] == "/ecs/herd-agent"
    # moto registers only the family, containers and memory (MOTO_IGNORES): register the whole
    # definition as CloudFormation would, and check what ECS then holds.
    agent = register_task_definition(hub_stack, "AgentTaskDefinition")
    assert (agent["networkMode"], agent["requiresCompatibilities"]) == ("awsvpc", ["FARGATE"])
    assert (agent["cpu"], agent["memory"]) == ("1024", "2048")
    iam = aws("iam")
    for key in ("taskRoleArn", "executionRoleArn"):
        role = iam.get_role(RoleName=agent[key].rsplit("/", 1)[1])["Role"]
        assert role["Path"] == "/herd/agent/"

    coord = ecs.describe_task_definition(taskDefinition=hub_stack.physical["CoordinatorTaskDefinition"])["taskDefinition"]
    (c,) = coord["containerDefinitions"]
    assert c["command"][0] == "up" and c["portMappings"][0]["containerPort"] == 8787
    env = {e["name"]: e["value"] for e in c["environment"]}
    config = tomllib.loads(env["HERD_CONFIG_TOML"])
    # The coordinator's own herd.toml and the outputs `herd init aws` reads agree.
    assert config["commands"]["sqs_queue_url"] == o["CommandsQueueUrl"]
    assert config["events"]["sns_topic_arn"] == o["EventsTopicArn"]
    assert config["store"]["table_prefix"] == o["TablePrefix"]
    assert config["broker"]["url"] == o["BrokerUrl"]
    assert config["broker"]["frames_queue_url"] == o["FramesQueueUrl"]
    assert config["launcher"]["cluster"] == o["ClusterName"]
    assert config["launcher"]["task_definition"] == o["AgentTaskDefinition"]
    assert config["launcher"]["subnets"] == o["Subnets"].split(",")
    assert config["launcher"]["security_groups"] == o["SecurityGroups"].split(",")
    assert str(config["launcher"]["assign_public_ip"]).lower() == o["AssignPublicIp"] == "true"
    assert config["api"]["max_agents"] == int(o["MaxAgents"])

    (svc,) = ecs.describe_services(cluster="herd", services=["herd-coordinator"])["services"]
    # moto keeps the service's cluster, count and task definition only (MOTO_IGNORES); the rest
    # is checked on the template (test_templates.py).
    assert svc["desiredCount"] == 1
    assert svc["taskDefinition"] == coord["taskDefinitionArn"]


def register_task_definition(stack, logical):
    """RegisterTaskDefinition with every property of the template's task definition."""
    p = stack.props(logical)
    containers = camel(p["ContainerDefinitions"])
    for c in containers:
        c["memory"] = int(c["memory"])
        c["logConfiguration"]["options"] = p["ContainerDefinitions"][0]["LogConfiguration"]["Options"]
    ecs = stack.aws("ecs", stack.region)
    return ecs.register_task_definition(
        family=p["Family"], containerDefinitions=containers, networkMode=p["NetworkMode"],
        requiresCompatibilities=p["RequiresCompatibilities"], cpu=str(p["Cpu"]), memory=str(p["Memory"]),
        taskRoleArn=p["TaskRoleArn"], executionRoleArn=p["ExecutionRoleArn"],
        runtimePlatform=camel(p["RuntimePlatform"]),
    )["taskDefinition"]


def test_outputs_launch_an_agent_like_the_ecs_launcher(hub_stack, aws):
    """RunTask as the launcher calls it, with nothing but the outputs (herd.toml's [launcher])."""
    o = hub_stack.outputs
    ecs = aws("ecs")
    run = "r-outputs"
    task = ecs.run_task(
        cluster=o["ClusterName"],
        taskDefinition=o["AgentTaskDefinition"],
        launchType="FARGATE",
        count=1,
        startedBy=run,
        group=f"herd:{run}",
        tags=[{"key": "herd:run", "value": run}, {"key": "herd:agent", "value": "agent-1"}],
        networkConfiguration={"awsvpcConfiguration": {
            "subnets": o["Subnets"].split(","),
            "securityGroups": o["SecurityGroups"].split(","),
            "assignPublicIp": "ENABLED" if o["AssignPublicIp"] == "true" else "DISABLED",
        }},
        overrides={"containerOverrides": [{
            "name": o["AgentContainerName"],
            "command": ["agent", "--broker", o["BrokerUrl"], "--run", run, "--agent", "agent-1"],
        }]},
    )
    assert not task["failures"], task["failures"]
    arn = task["tasks"][0]["taskArn"]
    listed = ecs.list_tasks(cluster=o["ClusterName"], startedBy=run)["taskArns"]
    assert listed == [arn]
    (described,) = ecs.describe_tasks(cluster=o["ClusterName"], tasks=[arn])["tasks"]
    assert described["overrides"]["containerOverrides"][0]["command"][-1] == "agent-1"
    ecs.stop_task(cluster=o["ClusterName"], task=arn, reason="test")


def test_load_balancer_checks_readyz(hub_stack, aws):
    elb = aws("elbv2")
    (tg,) = elb.describe_target_groups(TargetGroupArns=[hub_stack.physical["TargetGroup"]])["TargetGroups"]
    assert (tg["HealthCheckPath"], tg["Port"], tg["TargetType"]) == ("/readyz", 8787, "ip")
    listeners = elb.describe_listeners(LoadBalancerArn=hub_stack.physical["LoadBalancer"])["Listeners"]
    assert [(x["Port"], x["Protocol"], x["DefaultActions"][0]["Type"]) for x in listeners] == [(80, "HTTP", "forward")]
    (lb,) = elb.describe_load_balancers(LoadBalancerArns=[hub_stack.physical["LoadBalancer"]])["LoadBalancers"]
    assert hub_stack.outputs["ConsoleUrl"] == f"http://{lb['DNSName']}"


def test_skipped_resources_created_through_the_apis(hub_stack, aws, moto):
    """moto's CloudFormation skips these types; each is created here, from the template's own
    (evaluated) properties, through the service API CloudFormation would call."""
    s = hub_stack

    # AWS::IoT::TopicRule: the frames rule.
    iot = aws("iot")
    payload = camel(s.props("FramesTopicRule")["TopicRulePayload"])
    iot.create_topic_rule(ruleName="herd_frames", topicRulePayload=payload)
    rule = iot.get_topic_rule(ruleName="herd_frames")["rule"]
    assert rule["sql"] == "SELECT *, topic() AS topic FROM 'herd/runs/+/agents/#'"
    assert rule["actions"][0]["sqs"]["queueUrl"] == s.outputs["FramesQueueUrl"]
    assert rule["actions"][0]["sqs"]["roleArn"] == s.getatt("TopicRuleRole", "Arn")
    assert rule["errorAction"]["cloudwatchLogs"]["logGroupName"] == "/aws/iot/herd-frames-rule-errors"

    # AWS::Cognito::*: the pool, its client (no secret), the groups, the admin in `operator`.
    idp = aws("cognito-idp")
    pool_props = s.props("UserPool")
    pool = idp.create_user_pool(
        PoolName=pool_props["UserPoolName"],
        UsernameAttributes=pool_props["UsernameAttributes"],
        AutoVerifiedAttributes=pool_props["AutoVerifiedAttributes"],
        AdminCreateUserConfig=pool_props["AdminCreateUserConfig"],
        AccountRecoverySetting=pool_props["AccountRecoverySetting"],
        Policies=pool_props["Policies"],
    )["UserPool"]
    s.eval.values["UserPool"] = pool["Id"]
    client_props = s.props("UserPoolClient")
    client = idp.create_user_pool_client(
        UserPoolId=pool["Id"],
        ClientName=client_props["ClientName"],
        GenerateSecret=client_props["GenerateSecret"],
        ExplicitAuthFlows=client_props["ExplicitAuthFlows"],
        PreventUserExistenceErrors=client_props["PreventUserExistenceErrors"],
    )["UserPoolClient"]
    assert "ClientSecret" not in client
    s.eval.values["UserPoolClient"] = client["ClientId"]
    for group in ("OperatorGroup", "ViewerGroup"):
        g = s.props(group)
        idp.create_group(UserPoolId=g["UserPoolId"], GroupName=g["GroupName"],
                         Description=g["Description"], Precedence=g["Precedence"])
        s.eval.values[group] = g["GroupName"]
    user = s.props("AdminUser")
    idp.admin_create_user(UserPoolId=user["UserPoolId"], Username=user["Username"],
                          UserAttributes=user["UserAttributes"],
                          DesiredDeliveryMediums=user["DesiredDeliveryMediums"])
    s.eval.values["AdminUser"] = user["Username"]
    attach = s.props("AdminUserIsOperator")
    idp.admin_add_user_to_group(**attach)
    members = idp.list_users_in_group(UserPoolId=pool["Id"], GroupName="operator")["Users"]
    assert [a["Value"] for a in members[0]["Attributes"] if a["Name"] == "email"] == ["admin@example.com"]
    groups = {g["GroupName"] for g in idp.list_groups(UserPoolId=pool["Id"])["Groups"]}
    assert groups == {"operator", "viewer"}
    # With the pool in place, the outputs and the coordinator's flags name it.
    issuer = s.eval.eval(s.template["Outputs"]["CognitoIssuer"]["Value"])
    assert issuer == f"https://cognito-idp.us-east-1.amazonaws.com/{pool['Id']}"
    jwks = s.eval.eval(s.template["Outputs"]["CognitoJwksUrl"]["Value"])
    assert jwks == issuer + "/.well-known/jwks.json"
    # moto serves the pool's JWKS under the same path as Cognito does.
    with urllib.request.urlopen(f"{moto}/{pool['Id']}/.well-known/jwks.json", timeout=5) as r:
        assert json.load(r)["keys"]
    # ... and the coordinator's task definition, registered whole, passes them to `herd up`.
    coord = register_task_definition(s, "CoordinatorTaskDefinition")
    assert coord["networkMode"] == "awsvpc" and coord["taskRoleArn"] == s.getatt("CoordinatorTaskRole", "Arn")
    command = coord["containerDefinitions"][0]["command"]
    assert command == ["up", "--jwks-url", jwks, "--jwt-issuer", issuer, "--jwt-audience", client["ClientId"]]

    # AWS::SQS::QueuePolicy: TLS only, and the commands topic may deliver to the commands queue.
    sqs = aws("sqs")
    qp = s.props("QueuePolicy")
    for url in qp["Queues"]:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(qp["PolicyDocument"])})
    policy = json.loads(sqs.get_queue_attributes(QueueUrl=s.outputs["CommandsQueueUrl"], AttributeNames=["Policy"])["Attributes"]["Policy"])
    assert {st["Sid"] for st in policy["Statement"]} == {"CommandsTopicDelivers", "TlsOnly"}

    # AWS::SNS::Subscription: a command published to the commands topic reaches the queue,
    # inside an SNS envelope (herd reads both forms).
    sns = aws("sns")
    sub = s.props("CommandsSubscription")
    sns.subscribe(TopicArn=sub["TopicArn"], Protocol=sub["Protocol"], Endpoint=sub["Endpoint"],
                  Attributes={"RawMessageDelivery": str(sub["RawMessageDelivery"]).lower()})
    sns.publish(TopicArn=s.outputs["CommandsTopicArn"], Message="run smoke agents=2")
    got = sqs.receive_message(QueueUrl=s.outputs["CommandsQueueUrl"], WaitTimeSeconds=2)["Messages"]
    assert json.loads(got[0]["Body"])["Message"] == "run smoke agents=2"

    # AWS::EC2::SecurityGroupEgress: the load balancer may reach the coordinator only.
    ec2 = aws("ec2")
    egress = s.props("LoadBalancerEgress")
    ec2.authorize_security_group_egress(GroupId=egress["GroupId"], IpPermissions=[{
        "IpProtocol": egress["IpProtocol"], "FromPort": egress["FromPort"], "ToPort": egress["ToPort"],
        "UserIdGroupPairs": [{"GroupId": egress["DestinationSecurityGroupId"], "Description": egress["Description"]}],
    }])
    (sg,) = ec2.describe_security_groups(GroupIds=[egress["GroupId"]])["SecurityGroups"]
    pairs = [p["GroupId"] for perm in sg["IpPermissionsEgress"] for p in perm.get("UserIdGroupPairs", [])]
    assert s.physical["CoordinatorSecurityGroup"] in pairs


def test_hub_in_an_existing_vpc_with_https(hub_stack, aws):
    """The other network variant: an existing VPC and subnets, and a certificate (HTTPS)."""
    ec2 = aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.50.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.50.{i}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
               for i, z in ((1, "a"), (2, "b"))]
    cert = aws("acm").request_certificate(DomainName="herd.example.com")["CertificateArn"]
    stack = Stack(aws, HUB_REGION, "herd-existing", cfn.HUB, {
        **HUB_PARAMS, "NamePrefix": "herd2", "TablePrefix": "herd2-", "VpcId": vpc,
        "SubnetIds": ",".join(subnets), "AssignPublicIp": "false", "CertificateArn": cert,
    })
    assert not any(t in ("AWS::EC2::VPC", "AWS::EC2::Subnet") for t in stack.types.values())
    o = stack.outputs
    assert o["Subnets"] == ",".join(subnets) and o["AssignPublicIp"] == "false"
    assert o["ConsoleUrl"].startswith("https://")
    elb = aws("elbv2")
    listeners = elb.describe_listeners(LoadBalancerArn=stack.physical["LoadBalancer"])["Listeners"]
    kinds = sorted((x["Port"], x["Protocol"], x["DefaultActions"][0]["Type"]) for x in listeners)
    assert kinds == [(80, "HTTP", "redirect"), (443, "HTTPS", "forward")]
    (svc,) = aws("ecs").describe_services(cluster="herd2", services=["herd2-coordinator"])["services"]
    assert svc["desiredCount"] == 1
    # moto drops the service's network configuration (MOTO_IGNORES): check the evaluated one.
    net = stack.props("CoordinatorService")["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert net["Subnets"] == subnets and net["AssignPublicIp"] == "DISABLED"


def test_hub_with_a_nat_gateway(hub_stack, aws):
    """NatGateway=true: tasks in private subnets that leave through one NAT gateway (one IP)."""
    stack = Stack(aws, HUB_REGION, "herd-nat", cfn.HUB,
                  {**HUB_PARAMS, "NamePrefix": "herd3", "TablePrefix": "herd3-", "NatGateway": "true"})
    o = stack.outputs
    private = [stack.physical["PrivateSubnet1"], stack.physical["PrivateSubnet2"]]
    assert o["Subnets"].split(",") == private and o["AssignPublicIp"] == "false"
    ec2 = aws("ec2")
    (nat,) = ec2.describe_nat_gateways(NatGatewayIds=[stack.physical["Nat"]])["NatGateways"]
    assert nat["SubnetId"] == stack.physical["PublicSubnet1"]
    (table,) = ec2.describe_route_tables(RouteTableIds=[stack.physical["PrivateRouteTable"]])["RouteTables"]
    # (moto records no association for AWS::EC2::SubnetRouteTableAssociation: MOTO_IGNORES.)
    assert [r for r in table["Routes"] if r["DestinationCidrBlock"] == "0.0.0.0/0"][0]["NatGatewayId"] == nat["NatGatewayId"], table
    env = {e["name"]: e["value"] for e in aws("ecs").describe_task_definition(
        taskDefinition=stack.physical["CoordinatorTaskDefinition"])["taskDefinition"]["containerDefinitions"][0]["environment"]}
    launcher = tomllib.loads(env["HERD_CONFIG_TOML"])["launcher"]
    assert launcher["subnets"] == private and launcher["assign_public_ip"] is False


# ---------------------------------------------------------------- more regions

REGION_PARAMS = {"HubRegion": HUB_REGION, "ImageUri": HUB_PARAMS["ImageUri"]}


def _coordinator_may_launch(hub_stack, region, stack_outputs, role_arns):
    """The hub's coordinator role covers a regional stack's cluster, family and agent roles."""
    ev = cfn.Evaluator(hub_stack.template, HUB_REGION, HUB_PARAMS, refs=dict(hub_stack.physical))
    statements = {a: st for p in hub_stack.template["Resources"]["CoordinatorTaskRole"]["Properties"]["Policies"]
                  for st in p["PolicyDocument"]["Statement"] for a in cfn.as_list(st["Action"])}
    run_task = ev.eval(statements["ecs:RunTask"])
    task_def = stack_outputs["AgentTaskDefinition"]
    assert fnmatch.fnmatchcase(task_def, run_task["Resource"]), (task_def, run_task["Resource"])
    cluster_arn = f"arn:aws:ecs:{region}:{ACCOUNT}:cluster/{stack_outputs['ClusterName']}"
    assert fnmatch.fnmatchcase(cluster_arn, run_task["Condition"]["ArnLike"]["ecs:cluster"])
    pass_role = ev.eval(statements["iam:PassRole"])["Resource"]
    assert len(role_arns) == 2
    for arn in role_arns:
        assert fnmatch.fnmatchcase(arn, pass_role), (arn, pass_role)


def test_regional_stack(hub_stack, aws):
    region = "eu-west-1"
    stack = Stack(aws, region, "herd-agents", cfn.REGION, REGION_PARAMS)
    o = stack.outputs
    assert set(o) >= {"Region", "ClusterName", "AgentTaskDefinition", "Subnets", "SecurityGroups"}
    assert o["Region"] == region and o["ClusterName"] == "herd"
    assert o["AgentTaskDefinition"].startswith(f"arn:aws:ecs:{region}:")
    ecs = aws("ecs", region)
    assert ecs.describe_clusters(clusters=["herd"])["clusters"][0]["status"] == "ACTIVE"
    # The subnets are in this region's VPC (moto names their zones after us-east-1: MOTO_IGNORES).
    subnets = aws("ec2", region).describe_subnets(SubnetIds=o["Subnets"].split(","))["Subnets"]
    assert {s["VpcId"] for s in subnets} == {stack.physical["Vpc"]}
    groups = aws("logs", region).describe_log_groups(logGroupNamePrefix="/ecs/herd-agent")["logGroups"]
    assert [g["retentionInDays"] for g in groups] == [30]
    task = ecs.run_task(cluster=o["ClusterName"], taskDefinition=o["AgentTaskDefinition"], launchType="FARGATE",
                        networkConfiguration={"awsvpcConfiguration": {"subnets": o["Subnets"].split(","),
                                                                      "securityGroups": [o["SecurityGroups"]],
                                                                      "assignPublicIp": "ENABLED"}})
    assert not task["failures"] and task["tasks"]
    roles = [stack.getatt(r, "Arn") for r in ("AgentTaskRole", "AgentExecutionRole")]
    _coordinator_may_launch(hub_stack, region, o, roles)


def test_stackset_in_two_regions(hub_stack, aws):
    cf = aws("cloudformation")
    regions = ["eu-central-1", "ap-southeast-2"]
    cf.create_stack_set(
        StackSetName="herd-agents",
        TemplateBody=cfn.REGION.read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in REGION_PARAMS.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    op = cf.create_stack_instances(StackSetName="herd-agents", Accounts=[ACCOUNT], Regions=regions)
    deadline = time.monotonic() + 60
    while True:
        status = cf.describe_stack_set_operation(StackSetName="herd-agents", OperationId=op["OperationId"])["StackSetOperation"]["Status"]
        if status not in ("RUNNING", "QUEUED") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == "SUCCEEDED"
    instances = cf.list_stack_instances(StackSetName="herd-agents")["Summaries"]
    assert sorted(i["Region"] for i in instances) == sorted(regions)
    for region in regions:
        ecs = aws("ecs", region)
        assert ecs.describe_clusters(clusters=["herd"])["clusters"][0]["status"] == "ACTIVE"
        td = ecs.describe_task_definition(taskDefinition="herd-agent")["taskDefinition"]
        assert td["containerDefinitions"][0]["name"] == "herd-agent"
        # moto's instance StackId names no stack; its stack is "StackSet:<set name>".
        regional_cf = aws("cloudformation", region)
        (stack,) = [x for x in regional_cf.describe_stacks()["Stacks"] if x["StackName"] == "StackSet:herd-agents"]
        assert stack["StackStatus"] == "CREATE_COMPLETE"
        outputs = {x["OutputKey"]: x["OutputValue"] for x in stack["Outputs"]}
        assert outputs["Region"] == region and outputs["AgentTaskDefinition"] == td["taskDefinitionArn"]
        resources = regional_cf.describe_stack_resources(StackName=stack["StackId"])["StackResources"]
        iam = aws("iam", region)
        roles = [iam.get_role(RoleName=r["PhysicalResourceId"])["Role"]["Arn"]
                 for r in resources if r.get("ResourceType") == "AWS::IAM::Role"]
        _coordinator_may_launch(hub_stack, region, {"AgentTaskDefinition": td["taskDefinitionArn"], "ClusterName": "herd"}, roles)
