"""The VPC: isolated subnets reaching AWS services through endpoints, no NAT by default."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

# Services the Lambdas, the Glue job and the secret rotation call from inside the VPC.
VPC_CIDR = "10.40.0.0/16"

_INTERFACE_ENDPOINTS = {
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "Glue": ec2.InterfaceVpcEndpointAwsService.GLUE,
    "CloudWatchLogs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "CloudWatchMonitoring": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
}


class Network(Construct):
    """Two-AZ VPC for RDS, the Lambdas and the Glue job.

    With ``nat_gateways=0`` the application subnets are isolated; give it 1 or more when Core
    View is only reachable over the internet (the publish Lambda calls it).
    """

    def __init__(self, scope: Construct, construct_id: str, *, nat_gateways: int) -> None:
        super().__init__(scope, construct_id)
        self.app_subnet_type = (
            ec2.SubnetType.PRIVATE_WITH_EGRESS if nat_gateways else ec2.SubnetType.PRIVATE_ISOLATED
        )
        subnets = [ec2.SubnetConfiguration(name="app", subnet_type=self.app_subnet_type)]
        if nat_gateways:
            subnets.insert(
                0, ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC)
            )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(VPC_CIDR),
            max_azs=2,
            nat_gateways=nat_gateways,
            subnet_configuration=subnets,
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)
            },
        )
        for name, service in _INTERFACE_ENDPOINTS.items():
            endpoint = self.vpc.add_interface_endpoint(
                name, service=service, private_dns_enabled=True, open=False
            )
            # HTTPS from inside the VPC only; a literal CIDR keeps the rule checkable (EC23).
            endpoint.connections.allow_default_port_from(ec2.Peer.ipv4(VPC_CIDR), "HTTPS in VPC")
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                logs.LogGroup(
                    self,
                    "FlowLogs",
                    retention=logs.RetentionDays.THREE_MONTHS,
                    removal_policy=RemovalPolicy.DESTROY,
                )
            ),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )

    @property
    def app_subnets(self) -> ec2.SubnetSelection:
        """Where RDS, the Lambdas and the Glue connection live."""
        return ec2.SubnetSelection(subnet_type=self.app_subnet_type)
