import { AppautoscalingPolicy } from '@cdktf/provider-aws/lib/appautoscaling-policy';
import { AppautoscalingTarget } from '@cdktf/provider-aws/lib/appautoscaling-target';
import { CloudwatchLogGroup } from '@cdktf/provider-aws/lib/cloudwatch-log-group';
import { EcsService } from '@cdktf/provider-aws/lib/ecs-service';
import { EcsTaskDefinition } from '@cdktf/provider-aws/lib/ecs-task-definition';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy';
import { LbListener } from '@cdktf/provider-aws/lib/lb-listener';
import { LbListenerRule } from '@cdktf/provider-aws/lib/lb-listener-rule';
import { LbTargetGroup } from '@cdktf/provider-aws/lib/lb-target-group';
import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group';
import { Construct } from 'constructs';
import { AccountScope, ecsTasksTrustPolicy, executionPolicy, PolicyDocument } from '../iam-policies';

/** A secret injected as an environment variable; `jsonKey` picks one field of a JSON secret. */
export interface InjectedSecret {
  arn: string;
  jsonKey?: string;
}

export interface FargateServiceProps {
  /** Resource name prefix, e.g. `silo`. */
  prefix: string;
  /** Service name, e.g. `control-plane`; also the container name. */
  service: string;
  clusterArn: string;
  clusterName: string;
  scope: AccountScope;
  image: string;
  repositoryArn: string;
  command?: string[];
  /** Container port; omitted for the worker. */
  port?: number;
  cpu: number;
  memory: number;
  minTasks: number;
  maxTasks: number;
  cpuTargetPercent: number;
  /** No tasks run (first deploy, before secrets exist). */
  paused: boolean;
  environment: Record<string, string>;
  secrets: Record<string, InjectedSecret>;
  /** KMS keys the injected secrets are encrypted with (decrypt only via Secrets Manager). */
  secretsKmsKeyArns: string[];
  subnetIds: string[];
  securityGroup: SecurityGroup;
  taskPolicy: PolicyDocument;
  logRetentionDays: number;
  /** Served through the ALB: health check grace period and request-count autoscaling. */
  loadBalancer?: { targetGroup: LbTargetGroup; listenerRule: LbListenerRule; albArnSuffix: string; requestsPerTarget: number };
  /** More target groups on other container ports (e.g. the runtime's PostgreSQL front door behind an NLB); each port is mapped too. */
  additionalTargets?: { targetGroup: LbTargetGroup; containerPort: number; listener: LbListener }[];
}

/**
 * One ECS Fargate service: log group, execution and task roles (each with its own inline
 * policy), task definition, service with rolling deploys guarded by the circuit breaker, and
 * target-tracking autoscaling on CPU (and ALB requests per target when load balanced).
 */
export class FargateService extends Construct {
  readonly service: EcsService;
  readonly taskRole: IamRole;
  readonly executionRole: IamRole;
  readonly taskDefinition: EcsTaskDefinition;
  readonly logGroup: CloudwatchLogGroup;

  constructor(scope: Construct, id: string, p: FargateServiceProps) {
    super(scope, id);
    const name = `${p.prefix}-${p.service}`;

    this.logGroup = new CloudwatchLogGroup(this, 'logs', { name: `/${p.prefix}/${p.service}`, retentionInDays: p.logRetentionDays });

    const extraTargets = p.additionalTargets ?? [];
    const secretArns = [...new Set(Object.values(p.secrets).map((s) => s.arn))];
    this.executionRole = new IamRole(this, 'execution-role', {
      name: `${name}-execution`,
      assumeRolePolicy: JSON.stringify(ecsTasksTrustPolicy(p.scope)),
    });
    new IamRolePolicy(this, 'execution-policy', {
      name: 'execution',
      role: this.executionRole.id,
      policy: JSON.stringify(
        executionPolicy({
          repositoryArn: p.repositoryArn,
          logGroupArn: this.logGroup.arn,
          secretArns,
          secretKeyArns: p.secretsKmsKeyArns,
          region: p.scope.region,
        }),
      ),
    });
    this.taskRole = new IamRole(this, 'task-role', {
      name: `${name}-task`,
      assumeRolePolicy: JSON.stringify(ecsTasksTrustPolicy(p.scope)),
    });
    new IamRolePolicy(this, 'task-policy', { name: 'task', role: this.taskRole.id, policy: JSON.stringify(p.taskPolicy) });

    const container = {
      name: p.service,
      image: p.image,
      essential: true,
      ...(p.command ? { command: p.command } : {}),
      ...(p.port ? { portMappings: [p.port, ...extraTargets.map((t) => t.containerPort)].map((containerPort) => ({ containerPort, protocol: 'tcp' })) } : {}),
      environment: Object.entries(p.environment)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([name, value]) => ({ name, value })),
      secrets: Object.entries(p.secrets)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([name, s]) => ({ name, valueFrom: s.jsonKey ? `${s.arn}:${s.jsonKey}::` : s.arn })),
      logConfiguration: {
        logDriver: 'awslogs',
        options: { 'awslogs-group': this.logGroup.name, 'awslogs-region': p.scope.region, 'awslogs-stream-prefix': p.service },
      },
      ...(p.port
        ? {
            healthCheck: {
              command: ['CMD', 'node', '-e', `fetch('http://127.0.0.1:${p.port}/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))`],
              interval: 15,
              timeout: 5,
              retries: 3,
              startPeriod: 30,
            },
          }
        : {}),
      linuxParameters: { initProcessEnabled: true },
      stopTimeout: 30,
    };

    this.taskDefinition = new EcsTaskDefinition(this, 'task', {
      family: name,
      requiresCompatibilities: ['FARGATE'],
      networkMode: 'awsvpc',
      cpu: String(p.cpu),
      memory: String(p.memory),
      executionRoleArn: this.executionRole.arn,
      taskRoleArn: this.taskRole.arn,
      runtimePlatform: { operatingSystemFamily: 'LINUX', cpuArchitecture: 'X86_64' },
      containerDefinitions: JSON.stringify([container]),
    });

    const minTasks = p.paused ? 0 : p.minTasks;
    this.service = new EcsService(this, 'service', {
      name,
      cluster: p.clusterArn,
      taskDefinition: this.taskDefinition.arn,
      launchType: 'FARGATE',
      desiredCount: minTasks,
      deploymentMinimumHealthyPercent: 100,
      deploymentMaximumPercent: 200,
      deploymentCircuitBreaker: { enable: true, rollback: true },
      deploymentController: { type: 'ECS' },
      networkConfiguration: { subnets: p.subnetIds, securityGroups: [p.securityGroup.id], assignPublicIp: false },
      propagateTags: 'SERVICE',
      enableEcsManagedTags: true,
      enableExecuteCommand: false,
      ...(p.loadBalancer
        ? {
            healthCheckGracePeriodSeconds: 60,
            loadBalancer: [
              { targetGroupArn: p.loadBalancer.targetGroup.arn, containerName: p.service, containerPort: p.port! },
              ...extraTargets.map((t) => ({ targetGroupArn: t.targetGroup.arn, containerName: p.service, containerPort: t.containerPort })),
            ],
            // ECS rejects a target group that no listener uses yet.
            dependsOn: [p.loadBalancer.listenerRule, ...extraTargets.map((t) => t.listener)],
          }
        : {}),
      // Autoscaling owns the task count after creation.
      lifecycle: { ignoreChanges: ['desired_count'] },
    });

    const target = new AppautoscalingTarget(this, 'scaling-target', {
      serviceNamespace: 'ecs',
      scalableDimension: 'ecs:service:DesiredCount',
      resourceId: `service/${p.clusterName}/${this.service.name}`,
      minCapacity: minTasks,
      maxCapacity: p.maxTasks,
    });
    const scaling = { resourceId: target.resourceId, scalableDimension: target.scalableDimension, serviceNamespace: target.serviceNamespace };
    new AppautoscalingPolicy(this, 'scale-on-cpu', {
      name: `${name}-cpu`,
      policyType: 'TargetTrackingScaling',
      ...scaling,
      targetTrackingScalingPolicyConfiguration: {
        predefinedMetricSpecification: { predefinedMetricType: 'ECSServiceAverageCPUUtilization' },
        targetValue: p.cpuTargetPercent,
        scaleInCooldown: 300,
        scaleOutCooldown: 60,
      },
    });
    if (p.loadBalancer) {
      new AppautoscalingPolicy(this, 'scale-on-requests', {
        name: `${name}-requests`,
        policyType: 'TargetTrackingScaling',
        ...scaling,
        targetTrackingScalingPolicyConfiguration: {
          predefinedMetricSpecification: {
            predefinedMetricType: 'ALBRequestCountPerTarget',
            resourceLabel: `${p.loadBalancer.albArnSuffix}/${p.loadBalancer.targetGroup.arnSuffix}`,
          },
          targetValue: p.loadBalancer.requestsPerTarget,
          scaleInCooldown: 300,
          scaleOutCooldown: 60,
        },
      });
    }
  }
}
