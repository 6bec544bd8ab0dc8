import { CloudwatchLogMetricFilter } from '@cdktf/provider-aws/lib/cloudwatch-log-metric-filter';
import { CloudwatchMetricAlarm } from '@cdktf/provider-aws/lib/cloudwatch-metric-alarm';
import { SnsTopic } from '@cdktf/provider-aws/lib/sns-topic';
import { SnsTopicSubscription } from '@cdktf/provider-aws/lib/sns-topic-subscription';
import { Construct } from 'constructs';

/** Custom metric fed by the worker log metric filter; named like the Prometheus counter. */
export const JOBS_FAILED_METRIC = { namespace: 'Silo', name: 'silo_jobs_failed_total' } as const;

export interface PlatformAlarmsProps {
  name: string;
  kmsKeyArn: string;
  email?: string;
  albArnSuffix: string;
  runtimeTargetGroupArnSuffix: string;
  workerLogGroupName: string;
  alb5xxPercent: number;
  runtimeP99Seconds: number;
  jobFailures: number;
  jobFailedLogPattern: string;
}

/**
 * Alarms to an SNS topic: ALB 5xx rate, tenant-runtime p99 latency, and failed jobs.
 *
 * Failed jobs are counted by a CloudWatch Logs metric filter on the worker's JSON log lines
 * (default pattern `{ $.event = "job.failed" }`), published as `Silo/silo_jobs_failed_total`.
 * A filter needs no code or network path from the worker to CloudWatch beyond the log driver,
 * unlike pushing the prom-client counter as a custom metric.
 */
export class PlatformAlarms extends Construct {
  readonly topic: SnsTopic;

  constructor(scope: Construct, id: string, p: PlatformAlarmsProps) {
    super(scope, id);
    this.topic = new SnsTopic(this, 'topic', { name: `${p.name}-alarms`, kmsMasterKeyId: p.kmsKeyArn });
    if (p.email) new SnsTopicSubscription(this, 'email', { topicArn: this.topic.arn, protocol: 'email', endpoint: p.email });
    const actions = { alarmActions: [this.topic.arn], okActions: [this.topic.arn] };

    const albMetric = (id: string, metricName: string) => ({
      id,
      metric: { namespace: 'AWS/ApplicationELB', metricName, stat: 'Sum', period: 60, dimensions: { LoadBalancer: p.albArnSuffix } },
      returnData: false,
    });
    new CloudwatchMetricAlarm(this, 'alb-5xx-rate', {
      alarmName: `${p.name}-alb-5xx-rate`,
      alarmDescription: `More than ${p.alb5xxPercent}% of ALB requests answered 5xx (ELB + targets) in 3 of 5 minutes`,
      comparisonOperator: 'GreaterThanThreshold',
      threshold: p.alb5xxPercent,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
      treatMissingData: 'notBreaching',
      metricQuery: [
        albMetric('elb5xx', 'HTTPCode_ELB_5XX_Count'),
        albMetric('target5xx', 'HTTPCode_Target_5XX_Count'),
        albMetric('requests', 'RequestCount'),
        {
          id: 'rate',
          expression: '100 * (FILL(elb5xx, 0) + FILL(target5xx, 0)) / requests',
          label: '5xx %',
          returnData: true,
        },
      ],
      ...actions,
    });

    new CloudwatchMetricAlarm(this, 'runtime-p99-latency', {
      alarmName: `${p.name}-runtime-p99-latency`,
      alarmDescription: `Tenant runtime p99 TargetResponseTime above ${p.runtimeP99Seconds}s in 3 of 5 minutes`,
      namespace: 'AWS/ApplicationELB',
      metricName: 'TargetResponseTime',
      dimensions: { LoadBalancer: p.albArnSuffix, TargetGroup: p.runtimeTargetGroupArnSuffix },
      extendedStatistic: 'p99',
      period: 60,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
      comparisonOperator: 'GreaterThanThreshold',
      threshold: p.runtimeP99Seconds,
      treatMissingData: 'notBreaching',
      ...actions,
    });

    new CloudwatchLogMetricFilter(this, 'jobs-failed-filter', {
      name: `${p.name}-jobs-failed`,
      logGroupName: p.workerLogGroupName,
      pattern: p.jobFailedLogPattern,
      metricTransformation: { namespace: JOBS_FAILED_METRIC.namespace, name: JOBS_FAILED_METRIC.name, value: '1', defaultValue: '0' },
    });
    new CloudwatchMetricAlarm(this, 'jobs-failed', {
      alarmName: `${p.name}-jobs-failed`,
      alarmDescription: `${p.jobFailures}+ failed jobs in 5 minutes (metric filter on the worker log group)`,
      namespace: JOBS_FAILED_METRIC.namespace,
      metricName: JOBS_FAILED_METRIC.name,
      statistic: 'Sum',
      period: 300,
      evaluationPeriods: 1,
      comparisonOperator: 'GreaterThanOrEqualToThreshold',
      threshold: p.jobFailures,
      treatMissingData: 'notBreaching',
      ...actions,
    });
  }
}
