import { Lb } from '@cdktf/provider-aws/lib/lb';
import { LbListener } from '@cdktf/provider-aws/lib/lb-listener';
import { LbTargetGroup } from '@cdktf/provider-aws/lib/lb-target-group';
import { Route53Record } from '@cdktf/provider-aws/lib/route53-record';
import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group';
import { VpcSecurityGroupIngressRule } from '@cdktf/provider-aws/lib/vpc-security-group-ingress-rule';
import { Construct } from 'constructs';

export interface PgLoadBalancerProps {
  name: string;
  vpcId: string;
  publicSubnetIds: string[];
  /** The port clients connect to. */
  listenerPort: number;
  /** The runtime's front-door port on the tasks (RUNTIME_PG_PORT). */
  targetPort: number;
  /** Health check: HTTP GET `healthCheckPath` on this task port (expects 200). */
  healthCheckPort: number;
  healthCheckPath: string;
  /** Wildcard host pointed at the NLB, e.g. `*.db.example.com`; aliased only when `hostedZoneId` is set. */
  host: string;
  hostedZoneId?: string;
  deletionProtection: boolean;
}

/**
 * Internet-facing Network Load Balancer for the runtime's PostgreSQL front door: plain TCP in and
 * out, so the client's TLS (negotiated inside the PostgreSQL protocol after SSLRequest, with SNI)
 * reaches the runtime, which terminates it and routes by server name. Its security group admits
 * `listenerPort` from anywhere; the tasks admit only this group.
 */
export class PgLoadBalancer extends Construct {
  readonly securityGroup: SecurityGroup;
  readonly nlb: Lb;
  readonly listener: LbListener;
  readonly targetGroup: LbTargetGroup;

  constructor(scope: Construct, id: string, p: PgLoadBalancerProps) {
    super(scope, id);
    const { name } = p;

    this.securityGroup = new SecurityGroup(this, 'sg', {
      name: `${name}-pg-nlb`,
      description: 'Public NLB: PostgreSQL wire protocol (TLS passed through) from anywhere',
      vpcId: p.vpcId,
      tags: { Name: `${name}-pg-nlb` },
    });
    new VpcSecurityGroupIngressRule(this, `ingress-${p.listenerPort}`, {
      securityGroupId: this.securityGroup.id,
      description: 'PostgreSQL clients from the internet',
      ipProtocol: 'tcp',
      fromPort: p.listenerPort,
      toPort: p.listenerPort,
      cidrIpv4: '0.0.0.0/0',
    });

    this.nlb = new Lb(this, 'nlb', {
      name: `${name}-pg-nlb`,
      loadBalancerType: 'network',
      internal: false,
      subnets: p.publicSubnetIds,
      // Only settable at creation: an NLB created without a group can never get one.
      securityGroups: [this.securityGroup.id],
      // Fewer tasks than AZs is the default (2 over 3): without this an AZ with no task has a node that refuses.
      enableCrossZoneLoadBalancing: true,
      enableDeletionProtection: p.deletionProtection,
    });

    this.targetGroup = new LbTargetGroup(this, 'tg', {
      name: `${name}-pg`.slice(0, 32),
      port: p.targetPort,
      protocol: 'TCP',
      targetType: 'ip',
      vpcId: p.vpcId,
      // The runtime sees the NLB's private address, not the client's: it reads no PROXY header, and
      // the tasks' group can then admit the NLB's group alone (docs/deploy.md).
      preserveClientIp: 'false',
      proxyProtocolV2: false,
      // Matches the container's stopTimeout: new connections stop, open ones get the runtime's shutdown.
      deregistrationDelay: '30',
      healthCheck: {
        enabled: true,
        protocol: 'HTTP',
        port: String(p.healthCheckPort),
        path: p.healthCheckPath,
        matcher: '200',
        interval: 15,
        timeout: 5,
        healthyThreshold: 2,
        unhealthyThreshold: 3,
      },
    });

    this.listener = new LbListener(this, 'listener', {
      loadBalancerArn: this.nlb.arn,
      port: p.listenerPort,
      protocol: 'TCP',
      defaultAction: [{ type: 'forward', targetGroupArn: this.targetGroup.arn }],
    });

    if (p.hostedZoneId) {
      new Route53Record(this, 'alias', {
        zoneId: p.hostedZoneId,
        name: p.host,
        type: 'A',
        alias: { name: this.nlb.dnsName, zoneId: this.nlb.zoneId, evaluateTargetHealth: true },
      });
    }
  }
}
