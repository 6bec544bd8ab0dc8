import { DefaultSecurityGroup } from '@cdktf/provider-aws/lib/default-security-group';
import { Eip } from '@cdktf/provider-aws/lib/eip';
import { InternetGateway } from '@cdktf/provider-aws/lib/internet-gateway';
import { NatGateway } from '@cdktf/provider-aws/lib/nat-gateway';
import { Route } from '@cdktf/provider-aws/lib/route';
import { RouteTable } from '@cdktf/provider-aws/lib/route-table';
import { RouteTableAssociation } from '@cdktf/provider-aws/lib/route-table-association';
import { Subnet } from '@cdktf/provider-aws/lib/subnet';
import { Vpc } from '@cdktf/provider-aws/lib/vpc';
import { Construct } from 'constructs';
import { subnetCidr } from '../cidr';

export interface NetworkProps {
  name: string;
  cidr: string;
  availabilityZones: readonly string[];
  /** 1: one shared NAT gateway; otherwise one per AZ. */
  natGateways: number;
}

/**
 * VPC with a public and a private /20 per AZ. Public subnets hold only the ALB and NAT
 * gateways; everything else runs in private subnets and reaches out through NAT.
 */
export class Network extends Construct {
  readonly vpc: Vpc;
  readonly publicSubnets: Subnet[];
  readonly privateSubnets: Subnet[];

  constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, id);
    const { name } = props;
    this.vpc = new Vpc(this, 'vpc', {
      cidrBlock: props.cidr,
      enableDnsHostnames: true,
      enableDnsSupport: true,
      tags: { Name: name },
    });

    // The default group admits traffic between its members; strip it so nothing relies on it.
    new DefaultSecurityGroup(this, 'default-sg', { vpcId: this.vpc.id, ingress: [], egress: [], tags: { Name: `${name}-default-unused` } });

    const igw = new InternetGateway(this, 'igw', { vpcId: this.vpc.id, tags: { Name: name } });
    const publicRt = new RouteTable(this, 'public-rt', { vpcId: this.vpc.id, tags: { Name: `${name}-public` } });
    new Route(this, 'public-default', { routeTableId: publicRt.id, destinationCidrBlock: '0.0.0.0/0', gatewayId: igw.id });

    this.publicSubnets = props.availabilityZones.map((az, i) => {
      const subnet = new Subnet(this, `public-${i}`, {
        vpcId: this.vpc.id,
        availabilityZone: az,
        cidrBlock: subnetCidr(props.cidr, 20, i),
        mapPublicIpOnLaunch: false,
        tags: { Name: `${name}-public-${az}`, tier: 'public' },
      });
      new RouteTableAssociation(this, `public-${i}-rt`, { subnetId: subnet.id, routeTableId: publicRt.id });
      return subnet;
    });

    const nats = this.publicSubnets.slice(0, Math.max(1, Math.min(props.natGateways, this.publicSubnets.length))).map((subnet, i) => {
      const eip = new Eip(this, `nat-eip-${i}`, { domain: 'vpc', tags: { Name: `${name}-nat-${i}` } });
      return new NatGateway(this, `nat-${i}`, {
        allocationId: eip.allocationId,
        subnetId: subnet.id,
        tags: { Name: `${name}-nat-${i}` },
        dependsOn: [igw],
      });
    });

    this.privateSubnets = props.availabilityZones.map((az, i) => {
      // Private subnets start after the first eight /20s, leaving room for more public ones.
      const subnet = new Subnet(this, `private-${i}`, {
        vpcId: this.vpc.id,
        availabilityZone: az,
        cidrBlock: subnetCidr(props.cidr, 20, 8 + i),
        mapPublicIpOnLaunch: false,
        tags: { Name: `${name}-private-${az}`, tier: 'private' },
      });
      const rt = new RouteTable(this, `private-${i}-rt-table`, { vpcId: this.vpc.id, tags: { Name: `${name}-private-${az}` } });
      new Route(this, `private-${i}-default`, {
        routeTableId: rt.id,
        destinationCidrBlock: '0.0.0.0/0',
        natGatewayId: nats[i % nats.length].id,
      });
      new RouteTableAssociation(this, `private-${i}-rt`, { subnetId: subnet.id, routeTableId: rt.id });
      return subnet;
    });
  }
}
