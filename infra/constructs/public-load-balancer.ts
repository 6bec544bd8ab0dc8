import { AcmCertificate } from '@cdktf/provider-aws/lib/acm-certificate';
import { AcmCertificateValidation } from '@cdktf/provider-aws/lib/acm-certificate-validation';
import { Lb } from '@cdktf/provider-aws/lib/lb';
import { LbListener } from '@cdktf/provider-aws/lib/lb-listener';
import { LbListenerRule } from '@cdktf/provider-aws/lib/lb-listener-rule';
import { LbTargetGroup } from '@cdktf/provider-aws/lib/lb-target-group';
import { Route53Record } from '@cdktf/provider-aws/lib/route53-record';
import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group';
import { VpcSecurityGroupIngressRule } from '@cdktf/provider-aws/lib/vpc-security-group-ingress-rule';
import { TerraformIterator, Token } from 'cdktf';
import { Construct } from 'constructs';

export interface PublicLoadBalancerProps {
  name: string;
  vpcId: string;
  publicSubnetIds: string[];
  /** First name is the certificate's domain, the rest its SANs (e.g. `*.tenants.example.com`, `api.example.com`). */
  certificateNames: [string, ...string[]];
  /** When set, DNS validation records and alias records for `certificateNames` are created in this zone. */
  hostedZoneId?: string;
  deletionProtection: boolean;
}

export interface HostRouteProps {
  /** Target port on the tasks. */
  port: number;
  healthCheckPath: string;
  /** Host headers routed to this target group (wildcards allowed). */
  hosts: string[];
  priority: number;
}

/**
 * Internet-facing ALB: the only thing that admits 0.0.0.0/0, and only on 80 (redirected to 443)
 * and 443 (TLS 1.2+, ACM certificate). Requests are routed by Host header; anything unmatched
 * gets a 404 from the ALB itself.
 */
export class PublicLoadBalancer extends Construct {
  readonly securityGroup: SecurityGroup;
  readonly alb: Lb;
  readonly httpsListener: LbListener;
  readonly certificate: AcmCertificate;
  private readonly props: PublicLoadBalancerProps;

  constructor(scope: Construct, id: string, props: PublicLoadBalancerProps) {
    super(scope, id);
    this.props = props;
    const { name } = props;

    this.securityGroup = new SecurityGroup(this, 'sg', {
      name: `${name}-alb`,
      description: 'Public ALB: HTTPS and HTTP (redirect) from anywhere',
      vpcId: props.vpcId,
      tags: { Name: `${name}-alb` },
    });
    for (const port of [443, 80]) {
      new VpcSecurityGroupIngressRule(this, `ingress-${port}`, {
        securityGroupId: this.securityGroup.id,
        description: port === 443 ? 'HTTPS from the internet' : 'HTTP from the internet (redirected to HTTPS)',
        ipProtocol: 'tcp',
        fromPort: port,
        toPort: port,
        cidrIpv4: '0.0.0.0/0',
      });
    }

    this.alb = new Lb(this, 'alb', {
      name: `${name}-alb`,
      loadBalancerType: 'application',
      internal: false,
      securityGroups: [this.securityGroup.id],
      subnets: props.publicSubnetIds,
      dropInvalidHeaderFields: true,
      enableDeletionProtection: props.deletionProtection,
      idleTimeout: 60,
    });

    const [domainName, ...sans] = props.certificateNames;
    this.certificate = new AcmCertificate(this, 'certificate', {
      domainName,
      subjectAlternativeNames: sans,
      validationMethod: 'DNS',
      keyAlgorithm: 'RSA_2048',
      lifecycle: { createBeforeDestroy: true },
    });

    let validationFqdns: string[] | undefined;
    if (props.hostedZoneId) {
      const options = TerraformIterator.fromComplexList(this.certificate.domainValidationOptions, 'domain_name');
      const records = new Route53Record(this, 'certificate-validation-records', {
        forEach: options,
        zoneId: props.hostedZoneId,
        name: options.getString('resource_record_name'),
        type: options.getString('resource_record_type'),
        records: [options.getString('resource_record_value')],
        ttl: 300,
        allowOverwrite: true,
      });
      validationFqdns = Token.asList(`\${[for r in ${records.fqn} : r.fqdn]}`);
      props.certificateNames.forEach((host, i) => {
        new Route53Record(this, `alias-${i}`, {
          zoneId: props.hostedZoneId!,
          name: host,
          type: 'A',
          alias: { name: this.alb.dnsName, zoneId: this.alb.zoneId, evaluateTargetHealth: true },
        });
      });
    }
    // Waits until ACM has issued the certificate: via the records above, or records added by hand.
    const validation = new AcmCertificateValidation(this, 'certificate-validation', {
      certificateArn: this.certificate.arn,
      validationRecordFqdns: validationFqdns,
      timeouts: { create: '2h' },
    });

    new LbListener(this, 'http', {
      loadBalancerArn: this.alb.arn,
      port: 80,
      protocol: 'HTTP',
      defaultAction: [{ type: 'redirect', redirect: { protocol: 'HTTPS', port: '443', statusCode: 'HTTP_301' } }],
    });
    this.httpsListener = new LbListener(this, 'https', {
      loadBalancerArn: this.alb.arn,
      port: 443,
      protocol: 'HTTPS',
      sslPolicy: 'ELBSecurityPolicy-TLS13-1-2-2021-06',
      certificateArn: validation.certificateArn,
      defaultAction: [
        { type: 'fixed-response', fixedResponse: { contentType: 'application/json', statusCode: '404', messageBody: '{"error":"NOT_FOUND"}' } },
      ],
    });
  }

  /** A target group for an ECS service on `port`, and a listener rule sending `hosts` to it. */
  route(id: string, r: HostRouteProps): { targetGroup: LbTargetGroup; rule: LbListenerRule } {
    const targetGroup = new LbTargetGroup(this, `${id}-tg`, {
      name: `${this.props.name}-${id}`.slice(0, 32),
      port: r.port,
      protocol: 'HTTP',
      targetType: 'ip',
      vpcId: this.props.vpcId,
      deregistrationDelay: '30',
      healthCheck: {
        enabled: true,
        path: r.healthCheckPath,
        matcher: '200',
        interval: 15,
        timeout: 5,
        healthyThreshold: 2,
        unhealthyThreshold: 3,
      },
    });
    const rule = new LbListenerRule(this, `${id}-rule`, {
      listenerArn: this.httpsListener.arn,
      priority: r.priority,
      action: [{ type: 'forward', targetGroupArn: targetGroup.arn }],
      condition: [{ hostHeader: { values: r.hosts } }],
    });
    return { targetGroup, rule };
  }
}
