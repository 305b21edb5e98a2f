"""Rules over the parsed templates: IAM least privilege, queues with DLQs, log retention, tables
on demand with point-in-time recovery and keyed as the README says, and the contract of outputs."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import cfnlint
import pytest

import cfn

TEMPLATES = [cfn.HUB, cfn.REGION]
HUB_PARAMS = {
    "ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/herd:1.0.0",
    "IotEndpoint": "abcdefghij1234-ats.iot.us-east-1.amazonaws.com",
    "AdminEmail": "admin@example.com",
}

# Actions that may (and must) have `Resource: "*"`, and why. Each entry is checked against
# cfn-lint's IAM action table: either the action has no resource type at all, or the entry names
# the condition key that narrows it instead, which the statement must then carry.
RESOURCE_STAR_ALLOWED = {
    "ecr:GetAuthorizationToken": (
        "the registry login token is per account: the action has no resource type",
        None,
    ),
    "ecs:ListTasks": (
        "its only resource type is a container instance, which Fargate tasks do not have; the "
        "ecs:cluster condition narrows it to herd's clusters",
        "ecs:cluster",
    ),
}


def _policies_table() -> dict:
    path = Path(cfnlint.__file__).parent / "data" / "AdditionalSpecs" / "Policies.json"
    return json.loads(path.read_text())


def _statements(template, identity_only=False):
    for name, doc, identity in cfn.policy_documents(template):
        if identity_only and not identity:
            continue
        for st in cfn.as_list(doc["Statement"]):
            yield name, st, identity


@pytest.fixture(params=TEMPLATES, ids=lambda p: p.name)
def template(request):
    return cfn.load(request.param)


# ---------------------------------------------------------------- size and syntax


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_template_fits_in_a_create_stack_call(path: Path):
    # TemplateBody takes at most 51,200 bytes; above that the template must go through S3.
    assert path.stat().st_size < 51_200


def test_loader_reads_short_forms(hub):
    rule = hub["Resources"]["FramesTopicRule"]["Properties"]["TopicRulePayload"]
    assert rule["Actions"][0]["Sqs"]["QueueUrl"] == {"Ref": "FramesQueue"}
    assert rule["Actions"][0]["Sqs"]["RoleArn"] == {"Fn::GetAtt": ["TopicRuleRole", "Arn"]}
    assert "Fn::If" in hub["Outputs"]["ConsoleUrl"]["Value"]


# ---------------------------------------------------------------- IAM


def test_no_wildcard_actions(template):
    for name, st, _ in _statements(template):
        assert "NotAction" not in st and "NotResource" not in st, name
        if st["Effect"] != "Allow":
            continue  # a Deny may be broad (the queues' TLS-only rule denies sqs:*)
        for action in cfn.as_list(st["Action"]):
            assert action != "*", f"{name}: Action '*'"
            assert "*" not in action, f"{name}: wildcard action {action}"


def test_every_action_exists(template):
    table = _policies_table()
    for name, st, _ in _statements(template):
        for action in cfn.as_list(st["Action"]):
            if "*" in action:
                continue
            service, _, verb = action.partition(":")
            assert verb.lower() in table[service]["Actions"], f"{name}: unknown action {action}"


def test_resource_star_only_where_aws_requires_it(template):
    table = _policies_table()
    for action, (reason, condition) in RESOURCE_STAR_ALLOWED.items():
        service, _, verb = action.partition(":")
        kinds = table[service]["Actions"][verb.lower()].get("Resources", [])
        assert not kinds or condition, f"{action} has resource types {kinds}: grant them instead"
    for name, st, _ in _statements(template, identity_only=True):
        if st["Effect"] != "Allow" or "*" not in cfn.as_list(st["Resource"]):
            continue
        for action in cfn.as_list(st["Action"]):
            assert action in RESOURCE_STAR_ALLOWED, f"{name}: {action} on Resource '*'"
            condition = RESOURCE_STAR_ALLOWED[action][1]
            if condition:
                keys = {k for c in st.get("Condition", {}).values() for k in c}
                assert condition in keys, f"{name}: {action} on '*' without {condition}"


def test_resource_policies_grant_services_under_conditions(template):
    for name, st, identity in _statements(template):
        if identity or st["Effect"] != "Allow":
            continue
        assert set(st["Principal"]) == {"Service"}, f"{name}: {st['Principal']}"
        assert st.get("Condition"), f"{name}: a service principal needs a source condition"


def _role_statements(template, role):
    props = template["Resources"][role]["Properties"]
    return [st for p in props["Policies"] for st in p["PolicyDocument"]["Statement"]]


def _grants(template, role):
    """{action: [resource, ...]} of a role, resources as the evaluated strings."""
    ev = cfn.Evaluator(template, "us-east-1", {**HUB_PARAMS, "HubRegion": "us-east-1"},
                       refs={n: n for n in template["Resources"]})
    out: dict[str, list] = {}
    for st in _role_statements(template, role):
        assert st["Effect"] == "Allow"
        for action in cfn.as_list(st["Action"]):
            out.setdefault(action, []).extend(cfn.as_list(ev.eval(st["Resource"])))
    return out


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_agent_task_role_may_only_use_its_run_topics(path):
    template = cfn.load(path)
    iot = "arn:aws:iot:us-east-1:123456789012:"
    assert _grants(template, "AgentTaskRole") == {
        "iot:Connect": [iot + "client/herd-*"],
        "iot:Subscribe": [iot + "topicfilter/herd/runs/*/cmd"],
        "iot:Receive": [iot + "topic/herd/runs/*/cmd"],
        "iot:Publish": [iot + "topic/herd/runs/*/agents/*"],
    }


def test_regional_agents_use_the_hubs_iot_endpoint(region_template):
    ev = cfn.Evaluator(region_template, "eu-west-1",
                       {"HubRegion": "us-east-1", "ImageUri": "x"},
                       refs={n: n for n in region_template["Resources"]})
    for st in _role_statements(region_template, "AgentTaskRole"):
        assert ev.eval(st["Resource"]).startswith("arn:aws:iot:us-east-1:")


def test_coordinator_task_role(hub):
    statements = _role_statements(hub, "CoordinatorTaskRole")
    by_action = {a: st for st in statements for a in cfn.as_list(st["Action"])}
    cluster = {"ArnLike": {"ecs:cluster": {"Fn::Sub": "arn:${AWS::Partition}:ecs:*:${AWS::AccountId}:cluster/${NamePrefix}"}}}
    for action in ("ecs:RunTask", "ecs:StopTask", "ecs:DescribeTasks", "ecs:ListTasks"):
        assert by_action[action]["Condition"] == cluster, action
    assert by_action["ecs:RunTask"]["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:ecs:*:${AWS::AccountId}:task-definition/${NamePrefix}-agent:*"}
    assert by_action["ecs:TagResource"]["Condition"] == {"StringEquals": {"ecs:CreateAction": "RunTask"}}
    assert by_action["iam:PassRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    assert by_action["iam:PassRole"]["Resource"]["Fn::Sub"].endswith(":role${IamPath}agent/*")
    grants = _grants(hub, "CoordinatorTaskRole")
    iot = ["arn:aws:iot:us-east-1:123456789012:topic/herd/runs/*"]
    assert grants["iot:Publish"] == iot and grants["iot:RetainPublish"] == iot
    assert grants["sns:Publish"] == ["EventsTopic"]
    assert sorted(grants["sqs:ReceiveMessage"]) == ["CommandsQueue.Arn", "FramesQueue.Arn"]
    assert sorted(grants["dynamodb:Query"]) == sorted([
        "RunsTable.Arn", "RunsTable.Arn/index/*", "ResultsTable.Arn", "TestsTable.Arn",
        "CommandsTable.Arn", "TokensTable.Arn"])
    assert not {"dynamodb:CreateTable", "dynamodb:DeleteTable", "dynamodb:UpdateTimeToLive"} & set(grants)
    # The agents' roles carry the path the coordinator may pass; its own roles do not.
    assert hub["Resources"]["AgentTaskRole"]["Properties"]["Path"] == {"Fn::Sub": "${IamPath}agent/"}
    assert hub["Resources"]["AgentExecutionRole"]["Properties"]["Path"] == {"Fn::Sub": "${IamPath}agent/"}
    assert hub["Resources"]["CoordinatorTaskRole"]["Properties"]["Path"] == {"Ref": "IamPath"}


def test_one_role_per_job(hub):
    uses: dict[str, list[str]] = {}

    def scan(owner, node):
        if isinstance(node, dict):
            if list(node) == ["Fn::GetAtt"] and node["Fn::GetAtt"][1] == "Arn":
                target = node["Fn::GetAtt"][0]
                if hub["Resources"].get(target, {}).get("Type") == "AWS::IAM::Role":
                    uses.setdefault(target, []).append(owner)
            for v in node.values():
                scan(owner, v)
        elif isinstance(node, list):
            for v in node:
                scan(owner, v)

    for name, r in hub["Resources"].items():
        scan(name, r.get("Properties", {}))
    assert {role: sorted(set(owners)) for role, owners in uses.items()} == {
        "AgentTaskRole": ["AgentTaskDefinition"],
        "AgentExecutionRole": ["AgentTaskDefinition"],
        "CoordinatorTaskRole": ["CoordinatorTaskDefinition"],
        "CoordinatorExecutionRole": ["CoordinatorTaskDefinition"],
        "TopicRuleRole": ["FramesTopicRule"],
    }


def test_topic_rule_role_may_only_feed_the_frames_queue(hub):
    grants = _grants(hub, "TopicRuleRole")
    assert sorted(grants["sqs:SendMessage"]) == ["FramesDeadLetterQueue.Arn", "FramesQueue.Arn"]
    assert set(grants) == {"sqs:SendMessage", "logs:CreateLogStream", "logs:PutLogEvents",
                           "logs:DescribeLogStreams"}
    assert set(grants["logs:PutLogEvents"]) == {"TopicRuleErrorLogGroup.Arn"}


# ---------------------------------------------------------------- queues, logs, tables


def test_every_queue_has_a_dead_letter_queue(template):
    queues = cfn.resources(template, "AWS::SQS::Queue")
    dlqs = set()
    for props in (q.get("Properties", {}) for q in queues.values()):
        if "RedrivePolicy" in props:
            target = props["RedrivePolicy"]["deadLetterTargetArn"]
            assert target["Fn::GetAtt"][1] == "Arn"
            dlqs.add(target["Fn::GetAtt"][0])
            assert 1 <= props["RedrivePolicy"]["maxReceiveCount"] <= 10
    assert dlqs <= set(queues)
    for name, q in queues.items():
        props = q.get("Properties", {})
        if name in dlqs:
            assert "RedrivePolicy" not in props, f"{name} is a DLQ with a DLQ"
            assert props.get("MessageRetentionPeriod") == 1_209_600, f"{name}: keep 14 days"
        else:
            assert "RedrivePolicy" in props, f"{name} has no dead-letter queue"
        # The IoT rule's SQS action does not take FIFO queues.
        assert not props.get("FifoQueue"), name


def test_every_log_group_has_a_retention(template):
    groups = cfn.resources(template, "AWS::Logs::LogGroup")
    assert groups
    retention = template["Parameters"]["LogRetentionDays"]
    assert max(retention["AllowedValues"]) <= 365 and retention["Default"] <= 90
    for name, g in groups.items():
        assert g["Properties"].get("RetentionInDays") == {"Ref": "LogRetentionDays"}, name


def test_every_table_is_on_demand_with_point_in_time_recovery(hub):
    tables = cfn.resources(hub, "AWS::DynamoDB::Table")
    assert len(tables) == 5
    for name, t in tables.items():
        props = t["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST", name
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, name
        assert t.get("DeletionPolicy") == "Retain", name
    assert tables["CommandsTable"]["Properties"]["TimeToLiveSpecification"] == {
        "AttributeName": "expires_at", "Enabled": True}


def readme_tables() -> dict:
    """The README's "DynamoDB store" table: {suffix: (pk, sk, {index: (pk, sk)})}."""
    text = (cfn.REPO / "README.md").read_text()
    section = text.split("## DynamoDB store", 1)[1].split("\n## ", 1)[0]
    first = lambda cell: (re.findall(r"`([^`]+)`", cell) or [None])[0]  # noqa: E731
    tables: dict = {}
    last = None
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0] or set(cells[0]) <= {"-"} or cells[0] == "table":
            continue
        if cells[0].startswith("↳"):
            tables[last][2][first(cells[0])] = (first(cells[1]), first(cells[2]))
        else:
            last = first(cells[0]).removeprefix("herd-")
            tables[last] = (first(cells[1]), first(cells[2]), {})
    return tables


def test_table_keys_are_the_readmes(hub):
    expected = readme_tables()
    assert set(expected) == {"runs", "results", "tests", "commands", "tokens"}
    assert expected["runs"][2] == {"by_created": ("kind", "created"), "by_test": ("test", "created")}
    found = {}
    for t in cfn.resources(hub, "AWS::DynamoDB::Table").values():
        props = t["Properties"]
        suffix = props["TableName"]["Fn::Sub"].removeprefix("${TablePrefix}")
        types = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
        assert set(types.values()) == {"S"}, "every key attribute is a string"

        def keys(schema):
            kinds = {k["KeyType"]: k["AttributeName"] for k in schema}
            return kinds["HASH"], kinds.get("RANGE")

        indexes = {}
        for gsi in props.get("GlobalSecondaryIndexes", []):
            indexes[gsi["IndexName"]] = keys(gsi["KeySchema"])
            assert gsi["Projection"] == {"ProjectionType": "ALL"}
        found[suffix] = (*keys(props["KeySchema"]), indexes)
        used = {a for k in [found[suffix][:2], *indexes.values()] for a in k if a}
        assert used == set(types), f"{suffix}: attribute definitions must be exactly the keys"
    assert found == expected


# ---------------------------------------------------------------- IoT, ECS, ALB, Cognito


def test_frames_topic_rule(hub):
    payload = hub["Resources"]["FramesTopicRule"]["Properties"]["TopicRulePayload"]
    assert payload["Sql"] == "SELECT *, topic() AS topic FROM 'herd/runs/+/agents/#'"
    assert payload["AwsIotSqlVersion"] == "2016-03-23"
    (action,) = payload["Actions"]
    assert action["Sqs"]["QueueUrl"] == {"Ref": "FramesQueue"}
    error = payload["ErrorAction"]["CloudwatchLogs"]
    assert error["LogGroupName"] == {"Ref": "TopicRuleErrorLogGroup"}


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_agent_task_definition(path):
    template = cfn.load(path)
    props = template["Resources"]["AgentTaskDefinition"]["Properties"]
    assert props["RequiresCompatibilities"] == ["FARGATE"] and props["NetworkMode"] == "awsvpc"
    assert props["Cpu"] == {"Ref": "AgentCpu"} and props["Memory"] == {"Ref": "AgentMemory"}
    assert props["Family"] == {"Fn::Sub": "${NamePrefix}-agent"}
    (container,) = props["ContainerDefinitions"]
    assert container["Name"] == "herd-agent"
    assert container["EntryPoint"] == ["herd"] and container["Command"] == ["agent"]
    assert container["Memory"] == {"Ref": "AgentMemory"}  # moto's RunTask needs it
    assert container["User"] == "65532"
    assert container["LogConfiguration"]["Options"]["awslogs-group"] == {"Ref": "AgentLogGroup"}
    assert template["Resources"]["Cluster"]["Properties"]["ClusterName"] == {"Ref": "NamePrefix"}


HERD_TOML_KEYS = {
    "version", "aws.region", "api.listen", "api.max_agents", "commands.sqs_queue_url",
    "events.sns_topic_arn", "store.kind", "store.table_prefix", "store.create_tables",
    "broker.url", "broker.auth", "broker.commands_via", "broker.iot_endpoint_url",
    "broker.frames_via", "broker.frames_queue_url", "launcher.kind", "launcher.cluster",
    "launcher.task_definition", "launcher.container_name", "launcher.subnets",
    "launcher.security_groups", "launcher.assign_public_ip",
}


def _flatten(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _flatten(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def _coordinator_container(hub):
    (c,) = hub["Resources"]["CoordinatorTaskDefinition"]["Properties"]["ContainerDefinitions"]
    return c


@pytest.mark.parametrize("variant", [
    {}, {"NatGateway": "true"},
    {"VpcId": "vpc-0123", "SubnetIds": "subnet-a,subnet-b", "AssignPublicIp": "false",
     "ExtraConfigToml": '[[launcher.regions]]\nregion = "eu-west-1"\ncluster = "herd"\n'},
], ids=["new-vpc", "nat", "existing-vpc"])
def test_coordinator_config_is_valid_herd_toml(hub, variant):
    c = _coordinator_container(hub)
    assert c["EntryPoint"] == ["herd"] and c["Command"][0] == "up"
    env = {e["Name"]: e["Value"] for e in c["Environment"]}
    ev = cfn.Evaluator(hub, "us-east-1", {**HUB_PARAMS, **variant},
                       refs={n: f"<{n}>" for n in hub["Resources"]})
    config = tomllib.loads(ev.eval(env["HERD_CONFIG_TOML"]))
    flat = dict(_flatten(config))
    assert set(flat) - {"launcher.regions"} == HERD_TOML_KEYS
    # No coordinator session (iot-data out, SQS in), so auth = "none"; agents are told the
    # WebSocket endpoint and sign it with SigV4 (HERD_MQTT_AUTH in their task definition).
    assert flat["broker.url"] == "wss://abcdefghij1234-ats.iot.us-east-1.amazonaws.com/mqtt"
    assert flat["broker.auth"] == "none" and flat["store.create_tables"] is False
    assert (flat["broker.commands_via"], flat["broker.frames_via"]) == ("iot-data", "sqs")
    assert flat["commands.sqs_queue_url"] == "<CommandsQueue>"
    assert flat["launcher.container_name"] == "herd-agent"
    if variant.get("VpcId"):
        assert flat["launcher.subnets"] == ["subnet-a", "subnet-b"]
        assert flat["launcher.assign_public_ip"] is False
        assert config["launcher"]["regions"] == [{"region": "eu-west-1", "cluster": "herd"}]
    elif variant.get("NatGateway"):
        assert flat["launcher.subnets"] == ["<PrivateSubnet1>", "<PrivateSubnet2>"]
        assert flat["launcher.assign_public_ip"] is False
    else:
        assert flat["launcher.subnets"] == ["<PublicSubnet1>", "<PublicSubnet2>"]
        assert flat["launcher.assign_public_ip"] is True
    # The same values the outputs give `herd init aws`.
    outputs = {k: ev.eval(v["Value"]) for k, v in hub["Outputs"].items()}
    assert outputs["Subnets"].split(",") == flat["launcher.subnets"]
    assert outputs["AssignPublicIp"] == str(flat["launcher.assign_public_ip"]).lower()
    assert outputs["BrokerUrl"] == flat["broker.url"]
    assert outputs["IotEndpointUrl"] == flat["broker.iot_endpoint_url"]


def test_coordinator_service_behind_the_load_balancer(hub):
    r = hub["Resources"]
    svc = r["CoordinatorService"]["Properties"]
    assert svc["DesiredCount"] == 1 and svc["LaunchType"] == "FARGATE"
    assert svc["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    assert svc["LoadBalancers"] == [{"ContainerName": "herd-coordinator", "ContainerPort": 8787,
                                     "TargetGroupArn": {"Ref": "TargetGroup"}}]
    tg = r["TargetGroup"]["Properties"]
    assert (tg["HealthCheckPath"], tg["Port"], tg["TargetType"]) == ("/readyz", 8787, "ip")
    assert r["HttpsListener"]["Condition"] == "HasCertificate"
    assert r["HttpsListener"]["Properties"]["Certificates"] == [{"CertificateArn": {"Ref": "CertificateArn"}}]
    assert hub["Conditions"]["HasCertificate"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "CertificateArn"}, ""]}]}
    assert _coordinator_container(hub)["PortMappings"] == [{"ContainerPort": 8787, "Protocol": "tcp"}]
    # The coordinator is reachable from the load balancer only.
    (ingress,) = r["CoordinatorSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert ingress["SourceSecurityGroupId"] == {"Ref": "LoadBalancerSecurityGroup"}


def test_cognito_users(hub):
    r = hub["Resources"]
    assert r["UserPoolClient"]["Properties"]["GenerateSecret"] is False
    groups = {g["Properties"]["GroupName"] for g in cfn.resources(hub, "AWS::Cognito::UserPoolGroup").values()}
    assert groups == {"operator", "viewer"}
    assert r["AdminUser"]["Properties"]["Username"] == {"Ref": "AdminEmail"}
    assert r["AdminUserIsOperator"]["Properties"]["GroupName"] == {"Ref": "OperatorGroup"}
    cmd = _coordinator_container(hub)["Command"]
    flags = dict(zip(cmd[1::2], cmd[2::2]))
    assert flags["--jwt-audience"] == {"Ref": "UserPoolClient"}
    assert flags["--jwt-issuer"] == hub["Outputs"]["CognitoIssuer"]["Value"]
    assert flags["--jwks-url"] == hub["Outputs"]["CognitoJwksUrl"]["Value"]


# ---------------------------------------------------------------- outputs: the contract

HUB_OUTPUTS = {
    "Region", "CommandsQueueUrl", "EventsTopicArn", "TablePrefix", "BrokerUrl", "IotEndpointUrl",
    "FramesQueueUrl", "MaxAgents", "ClusterName", "AgentTaskDefinition", "AgentContainerName",
    "Subnets", "SecurityGroups", "AssignPublicIp", "CognitoIssuer", "CognitoJwksUrl",
    "CognitoClientId", "UserPoolId", "ConsoleUrl",
}
REGION_OUTPUTS = {"Region", "ClusterName", "AgentTaskDefinition", "AgentContainerName", "Subnets",
                  "SecurityGroups", "AssignPublicIp"}


def test_outputs_are_the_documented_contract(hub, region_template):
    assert HUB_OUTPUTS <= set(hub["Outputs"])
    assert REGION_OUTPUTS <= set(region_template["Outputs"])
    readme = (cfn.REPO / "infra" / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Za-z]+)` \|", readme, re.M))
    missing = (set(hub["Outputs"]) | set(region_template["Outputs"])) - documented
    assert not missing, f"outputs missing from infra/README.md's tables: {sorted(missing)}"
    for name, output in [*hub["Outputs"].items(), *region_template["Outputs"].items()]:
        assert re.fullmatch(r"[A-Z][A-Za-z]+", name) and output.get("Description"), name
