"""The demo stack the sandbox AWS starts with, mirroring the seed plan's "Sentinel" API.

Per environment (staging, production, us-east-1): an ECS cluster, a Fargate task definition (awsvpc),
a blue and a green service in private subnets behind an ALB with weighted target groups, and
CloudWatch alarms. Shared: an ECR
repository whose tags become releases (one ends in `-broken` to show an automatic rollback).
Backups: per environment an RDS PostgreSQL instance and an ElastiCache Redis cluster; one
backup bucket in us-east-1 and its DR twin in us-west-2.
DR: per environment an ECS cluster and service in us-west-2 at 0 tasks behind a DR load balancer,
and a Route53 zone whose record (and drill record) point at the primary load balancer.
Everything is created through boto3 against the sandbox endpoint, exactly as against AWS.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import boto3

REGION = "us-east-1"
REPOSITORY = "sentinel-api"
TAGS = ("v1.0.0", "v1.1.0", "v1.2.0", "v1.3.0-broken")
ENVIRONMENTS = ("staging", "production")
DR_REGION = "us-west-2"
TEST_PORT = 8443
OFFICE_CIDR = "198.51.100.0/24"  # terraform/env/*.tfvars test_listener_cidrs (a documentation range)
BACKUP_BUCKETS = {REGION: "sentinel-backups-us-east-1", DR_REGION: "sentinel-backups-us-west-2"}


@dataclass
class StackEnvironment:
    name: str
    cluster: str
    service: str
    green_service: str
    family: str
    container: str
    alarm_names: list[str]
    listener_arn: str = ""
    test_listener_arn: str = ""
    live_url: str = ""  # the listeners as the sandbox's load balancer model answers them
    test_url: str = ""
    blue_target_group_arn: str = ""
    green_target_group_arn: str = ""
    db_instance: str = ""
    redis_cluster: str = ""
    dr_cluster: str = ""
    dr_service: str = ""
    hosted_zone_id: str = ""
    record_name: str = ""
    drill_record_name: str = ""
    primary_target: str = ""
    dr_target: str = ""


@dataclass
class Stack:
    endpoint: str
    repository_uri: str
    images: dict[str, str] = field(default_factory=dict)  # tag -> digest
    environments: dict[str, StackEnvironment] = field(default_factory=dict)
    backup_buckets: dict[str, str] = field(default_factory=dict)  # region -> bucket


def clients(endpoint: str, region: str = REGION):
    def make(service: str):
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=endpoint,
            aws_access_key_id="sandbox",
            aws_secret_access_key="sandbox",
        )

    return make


def listener_url(endpoint: str, load_balancer: str, port: int, path: str = "/healthz") -> str:
    """Where the sandbox answers as the load balancer's listener on `port` (sandbox.strict.elbv2)."""
    return f"{endpoint}/moto-api/sandbox/alb/{load_balancer}/{port}{path}"


def _manifest(tag: str) -> str:
    layer = hashlib.sha256(tag.encode()).hexdigest()
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 1,
                "digest": f"sha256:{layer}",
            },
            # moto derives the image digest from the layer digests, so each tag gets its own layer.
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": 1,
                    "digest": f"sha256:{hashlib.sha256(('layer-' + tag).encode()).hexdigest()}",
                }
            ],
        }
    )


# terraform/ecs.tf: the services run on Fargate in the private subnets with the api security group,
# no public IP, and the circuit breaker on with rollback.
DEPLOYMENT_CONFIGURATION = {
    "deploymentCircuitBreaker": {"enable": True, "rollback": True},
    "maximumPercent": 200,
    "minimumHealthyPercent": 100,
}
ACCOUNT = "123456789012"


@dataclass
class Network:
    vpc: str
    public_subnets: list[str]  # the load balancer's
    private_subnets: list[str]  # the tasks'
    api_security_group: str

    @property
    def task_configuration(self) -> dict:
        return {
            "awsvpcConfiguration": {
                "subnets": self.private_subnets,
                "securityGroups": [self.api_security_group],
                "assignPublicIp": "DISABLED",
            }
        }


def create_network(ec2, region: str, prefix: str) -> Network:
    """terraform/vpc.tf in small: public subnets for the load balancer, private ones for the tasks,
    and the api security group that only the load balancer's reaches."""
    vpc = ec2.create_vpc(CidrBlock=f"{prefix}.0.0/16")["Vpc"]["VpcId"]

    def subnets(base: int) -> list[str]:
        return [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"{prefix}.{base + i}.0/24", AvailabilityZone=f"{region}{az}")[
                "Subnet"
            ]["SubnetId"]
            for i, az in ((1, "a"), (2, "b"))
        ]

    alb = ec2.create_security_group(
        GroupName="sentinel-alb", Description="Public HTTPS to the load balancer", VpcId=vpc
    )
    api = ec2.create_security_group(
        GroupName="sentinel-api", Description="API tasks: only the load balancer reaches them", VpcId=vpc
    )
    ec2.authorize_security_group_ingress(
        GroupId=api["GroupId"],
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8000, "UserIdGroupPairs": [{"GroupId": alb["GroupId"]}]}
        ],
    )
    return Network(vpc, subnets(100), subnets(0), api["GroupId"])


def fargate_task(name: str) -> dict:
    """The task definition's launch settings, as terraform/ecs.tf registers them."""
    return {
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "512",
        "executionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/sentinel-{name}-execution",
        "taskRoleArn": f"arn:aws:iam::{ACCOUNT}:role/sentinel-{name}-task",
    }


def create_stack(endpoint: str, environments: tuple[str, ...] = ENVIRONMENTS) -> Stack:
    make = clients(endpoint)
    ecr, ecs, cloudwatch, ec2, elbv2 = make("ecr"), make("ecs"), make("cloudwatch"), make("ec2"), make("elbv2")
    acm = make("acm")

    repo = ecr.create_repository(repositoryName=REPOSITORY)["repository"]
    stack = Stack(endpoint=endpoint, repository_uri=repo["repositoryUri"])
    for tag in TAGS:
        image = ecr.put_image(repositoryName=REPOSITORY, imageTag=tag, imageManifest=_manifest(tag))["image"]
        stack.images[tag] = image["imageId"]["imageDigest"]

    network = create_network(ec2, REGION, "10.0")
    vpc, subnets = network.vpc, network.public_subnets

    for name in environments:
        cluster = f"sentinel-{name}"
        family = f"sentinel-api-{name}"
        ecs.create_cluster(clusterName=cluster)
        definition = ecs.register_task_definition(
            **fargate_task(name),
            family=family,
            containerDefinitions=[
                {
                    "name": "api",
                    "image": f"{stack.repository_uri}@{stack.images[TAGS[0]]}",
                    "memory": 512,
                    "essential": True,
                    "portMappings": [{"containerPort": 8000}],
                    "secrets": [
                        {
                            "name": "DATABASE_PASSWORD",
                            "valueFrom": f"arn:aws:secretsmanager:{REGION}:123456789012:secret:sentinel-{name}-db",
                        }
                    ],
                }
            ],
        )["taskDefinition"]["taskDefinitionArn"]
        # The load balancer as terraform/alb.tf and vpc.tf make it: HTTPS for live traffic, the
        # test listener on 8443 reachable only from the office/VPN range, HTTP redirected.
        alb_group = ec2.create_security_group(
            GroupName=f"sentinel-{name}-alb", Description="Public HTTPS to the load balancer", VpcId=vpc
        )["GroupId"]
        ec2.authorize_security_group_ingress(
            GroupId=alb_group,
            IpPermissions=[
                *(
                    {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
                    for port in (80, 443)
                ),
                {
                    "IpProtocol": "tcp",
                    "FromPort": TEST_PORT,
                    "ToPort": TEST_PORT,
                    "IpRanges": [{"CidrIp": cidr} for cidr in (OFFICE_CIDR, "10.0.0.0/16")],
                },
            ],
        )
        alb = elbv2.create_load_balancer(Name=f"sentinel-{name}", Subnets=subnets, SecurityGroups=[alb_group])[
            "LoadBalancers"
        ][0]
        certificate = acm.request_certificate(DomainName=f"api.{name}.sentinel.example.com")["CertificateArn"]
        groups = {
            color: elbv2.create_target_group(
                Name=f"sentinel-{name}-{color}", Protocol="HTTP", Port=8000, VpcId=vpc, TargetType="ip"
            )["TargetGroups"][0]["TargetGroupArn"]
            for color in ("blue", "green")
        }
        elbv2.create_listener(
            LoadBalancerArn=alb["LoadBalancerArn"],
            Protocol="HTTP",
            Port=80,
            DefaultActions=[
                {"Type": "redirect", "RedirectConfig": {"Port": "443", "Protocol": "HTTPS", "StatusCode": "HTTP_301"}}
            ],
        )
        listener = elbv2.create_listener(
            LoadBalancerArn=alb["LoadBalancerArn"],
            Protocol="HTTPS",
            Port=443,
            Certificates=[{"CertificateArn": certificate}],
            DefaultActions=[
                {
                    "Type": "forward",
                    "ForwardConfig": {
                        "TargetGroups": [
                            {"TargetGroupArn": groups["blue"], "Weight": 100},
                            {"TargetGroupArn": groups["green"], "Weight": 0},
                        ]
                    },
                }
            ],
        )["Listeners"][0]["ListenerArn"]
        test_listener = elbv2.create_listener(
            LoadBalancerArn=alb["LoadBalancerArn"],
            Protocol="HTTPS",
            Port=TEST_PORT,
            Certificates=[{"CertificateArn": certificate}],
            DefaultActions=[{"Type": "forward", "TargetGroupArn": groups["green"]}],
        )["Listeners"][0]["ListenerArn"]
        services = {}
        # Green is the standby at 0 tasks (terraform/ecs.tf); a blue/green deploy scales it up.
        for color, service, count in (
            ("blue", f"sentinel-api-{name}", 2),
            ("green", f"sentinel-api-{name}-green", 0),
        ):
            ecs.create_service(
                cluster=cluster,
                serviceName=service,
                taskDefinition=definition,
                desiredCount=count,
                launchType="FARGATE",
                networkConfiguration=network.task_configuration,
                deploymentConfiguration=DEPLOYMENT_CONFIGURATION,
                loadBalancers=[{"targetGroupArn": groups[color], "containerName": "api", "containerPort": 8000}],
            )
            services[color] = service
        alarms = create_bake_alarms(cloudwatch, name, alb["LoadBalancerArn"], groups)
        stack.environments[name] = StackEnvironment(
            name=name,
            cluster=cluster,
            service=services["blue"],
            green_service=services["green"],
            family=family,
            container="api",
            alarm_names=alarms,
            listener_arn=listener,
            test_listener_arn=test_listener,
            live_url=listener_url(endpoint, f"sentinel-{name}", 443),
            test_url=listener_url(endpoint, f"sentinel-{name}", TEST_PORT),
            blue_target_group_arn=groups["blue"],
            green_target_group_arn=groups["green"],
        )
    create_backup_resources(make, stack, environments)
    create_dr_resources(stack, environments)
    return stack


def create_bake_alarms(cloudwatch, name: str, load_balancer_arn: str, groups: dict[str, str]) -> list[str]:
    """The alarms of terraform/alarms.tf, under its names: metric alarms with TreatMissingData
    notBreaching, and a composite alarm over the unhealthy-host alarms of both colours. Returns
    the names the bake watches (its alarm_names output)."""
    prefix = f"sentinel-{name}"
    balancer = {"Name": "LoadBalancer", "Value": load_balancer_arn.split(":loadbalancer/", 1)[-1]}

    def group(color: str) -> dict:
        return {"Name": "TargetGroup", "Value": groups[color].rsplit(":", 1)[-1]}

    elb = "AWS/ApplicationELB"
    metric_alarms = {
        "api-5xx": (elb, "HTTPCode_Target_5XX_Count", "Sum", 10, [balancer]),
        "api-latency-p99": (elb, "TargetResponseTime", "Maximum", 2, [balancer]),
        **{
            f"api-unhealthy-hosts-{color}": (elb, "UnHealthyHostCount", "Maximum", 0, [balancer, group(color)])
            for color in ("blue", "green")
        },
        "db-cpu": ("AWS/RDS", "CPUUtilization", "Average", 85, [{"Name": "DBInstanceIdentifier", "Value": prefix}]),
    }
    for key, (namespace, metric, statistic, threshold, dimensions) in metric_alarms.items():
        cloudwatch.put_metric_alarm(
            AlarmName=f"{prefix}-{key}",
            Namespace=namespace,
            MetricName=metric,
            Statistic=statistic,
            Dimensions=dimensions,
            Period=60,
            EvaluationPeriods=3,
            DatapointsToAlarm=2,
            Threshold=threshold,
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="notBreaching",
        )
    cloudwatch.put_composite_alarm(
        AlarmName=f"{prefix}-api-unhealthy-hosts",
        AlarmRule=" OR ".join(f'ALARM("{prefix}-api-unhealthy-hosts-{color}")' for color in ("blue", "green")),
    )
    return [f"{prefix}-api-5xx", f"{prefix}-api-latency-p99", f"{prefix}-db-cpu", f"{prefix}-api-unhealthy-hosts"]


def create_backup_resources(make, stack: Stack, environments: tuple[str, ...]) -> None:
    """What the backup policies act on: a database and a Redis per environment, and buckets."""
    rds, elasticache = make("rds"), make("elasticache")
    for name in environments:
        instance, cluster = f"sentinel-{name}", f"sentinel-{name}-redis"
        rds.create_db_instance(
            DBInstanceIdentifier=instance,
            Engine="postgres",
            DBInstanceClass="db.t3.micro",
            AllocatedStorage=20,
            MasterUsername="sentinel",
            MasterUserPassword="sandbox-only-password",
            StorageEncrypted=True,
        )
        elasticache.create_cache_cluster(
            CacheClusterId=cluster, Engine="redis", CacheNodeType="cache.t3.micro", NumCacheNodes=1
        )
        stack.environments[name].db_instance = instance
        stack.environments[name].redis_cluster = cluster
    for region, bucket in BACKUP_BUCKETS.items():
        s3 = clients(stack.endpoint, region)("s3")
        extra = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, **extra)
        stack.backup_buckets[region] = bucket


DNS_ZONE = "sentinel.example."


def create_dr_resources(stack: Stack, environments: tuple[str, ...]) -> None:
    """What a failover acts on: the DR region's cluster, service (0 tasks) and load balancer, and
    the Route53 records that point at the primary load balancer until a failover switches them."""
    make_dr, make = clients(stack.endpoint, DR_REGION), clients(stack.endpoint)
    ecs, ec2, elbv2 = make_dr("ecs"), make_dr("ec2"), make_dr("elbv2")
    route53 = make("route53")
    network = create_network(ec2, DR_REGION, "10.1")
    subnets = network.public_subnets
    zone = route53.create_hosted_zone(Name=DNS_ZONE, CallerReference="sentinel-sandbox")["HostedZone"]["Id"]
    for name in environments:
        s = stack.environments[name]
        primary = make("elbv2").describe_load_balancers(Names=[f"sentinel-{name}"])["LoadBalancers"][0]["DNSName"]
        dr_alb = elbv2.create_load_balancer(Name=f"sentinel-{name}-dr", Subnets=subnets)["LoadBalancers"][0]
        cluster, service = f"sentinel-{name}-dr", f"sentinel-api-{name}-dr"
        ecs.create_cluster(clusterName=cluster)
        definition = ecs.register_task_definition(
            **fargate_task(f"{name}-dr"),
            family=f"sentinel-api-{name}-dr",
            containerDefinitions=[
                {
                    "name": "api",
                    "image": f"{stack.repository_uri}@{stack.images[TAGS[0]]}",
                    "memory": 512,
                    "essential": True,
                    "portMappings": [{"containerPort": 8000}],
                }
            ],
        )["taskDefinition"]["taskDefinitionArn"]
        ecs.create_service(
            cluster=cluster,
            serviceName=service,
            taskDefinition=definition,
            desiredCount=0,
            launchType="FARGATE",
            networkConfiguration=network.task_configuration,
            deploymentConfiguration=DEPLOYMENT_CONFIGURATION,
        )
        record, drill = f"api-{name}.{DNS_ZONE}", f"drill.api-{name}.{DNS_ZONE}"
        route53.change_resource_record_sets(
            HostedZoneId=zone,
            ChangeBatch={
                "Changes": [
                    {
                        "Action": "UPSERT",
                        "ResourceRecordSet": {
                            "Name": record,
                            "Type": "CNAME",
                            "TTL": 60,
                            "ResourceRecords": [{"Value": primary}],
                        },
                    }
                ]
            },
        )
        s.dr_cluster, s.dr_service, s.hosted_zone_id = cluster, service, zone.rsplit("/", 1)[-1]
        s.record_name, s.drill_record_name = record, drill
        s.primary_target, s.dr_target = primary, dr_alb["DNSName"]
