package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdaeventsources"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"

	"github.com/keyferry/keyferry/functions/awsconfig"
)

// WorkerMaxConcurrency bounds the worker instances the job queue's event
// source mapping runs at once (the KMS quotas are paced account-wide by
// the ledger whatever this is; it bounds Lambda and DynamoDB load).
const WorkerMaxConcurrency = 20

// workerTimeout is the worker function's timeout; the queue's visibility
// timeout is six times it (AWS's guidance for SQS event sources), so a
// message of a live worker never reappears, and one of a killed worker
// comes back in at most that long.
const workerTimeout = 60.0

// newJobQueue wires the job queue: routes, triggers and the sweeper hand
// jobs on to it (functions/jobqueue); the worker function consumes it
// through an event source mapping with a maximum concurrency and partial
// batch failures. Messages that keep failing go to a dead-letter queue
// (the job itself is still failed or retried by the sweeper at its deadline).
func newJobQueue(st awscdk.Stack, cp *ControlPlane) awssqs.Queue {
	dlq := awssqs.NewQueue(st, jsii.String("JobDLQ"), &awssqs.QueueProps{
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:      jsii.Bool(true),
		RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
	})
	q := awssqs.NewQueue(st, jsii.String("JobQueue"), &awssqs.QueueProps{
		Encryption:        awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:        jsii.Bool(true),
		VisibilityTimeout: awscdk.Duration_Seconds(jsii.Number(6 * workerTimeout)),
		DeadLetterQueue:   &awssqs.DeadLetterQueue{Queue: dlq, MaxReceiveCount: jsii.Number(10)},
	})
	cp.Functions[FnWorker].AddEventSource(awslambdaeventsources.NewSqsEventSource(q, &awslambdaeventsources.SqsEventSourceProps{
		BatchSize:               jsii.Number(1),
		MaxConcurrency:          jsii.Number(WorkerMaxConcurrency),
		ReportBatchItemFailures: jsii.Bool(true),
	}))
	for _, fn := range engineFunctions {
		q.GrantSendMessages(cp.Functions[fn])
		cp.Functions[fn].AddEnvironment(jsii.String(awsconfig.EnvJobQueueURL), q.QueueUrl(), nil)
	}
	return q
}
