package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdaeventsources"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"

	"github.com/keyferry/keyferry/functions/awsconfig"
	"github.com/keyferry/keyferry/functions/jobqueue"
)

// workerTimeout is the worker function's timeout in seconds (jobqueue.WorkerTimeout).
var workerTimeout = jobqueue.WorkerTimeout.Seconds()

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
		MaxConcurrency:          jsii.Number(jobqueue.WorkerMaxConcurrency),
		ReportBatchItemFailures: jsii.Bool(true),
	}))
	for _, fn := range append([]string{FnDisconnect}, engineFunctions...) {
		q.GrantSendMessages(cp.Functions[fn])
		cp.Functions[fn].AddEnvironment(jsii.String(awsconfig.EnvJobQueueURL), q.QueueUrl(), nil)
	}
	return q
}
